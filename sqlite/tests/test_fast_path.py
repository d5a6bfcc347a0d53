"""The publication's fast path: statements kept between transactions (finalized at close,
prepared again after a schema change) and a COMMIT, or a statement run in autocommit mode,
published from the rows the transaction wrote, kept in memory, without reading the outbox back;
and each place where that is not safe and the outbox is read instead."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import SCHEMA, drain, events, open_db

import hark
import hark.sqlite


def setup(dbpath: Path, qdir: Path, journal: str = "wal"):  # type: ignore[no-untyped-def]
    db = open_db(dbpath, qdir, journal)
    db.executescript(SCHEMA)
    db.execute("SELECT hark_notify_changes('orders', 'events')")
    return db


def emails(conn: hark.Connection) -> list[str]:
    return [e["data"]["email"] for e in events(conn)]  # type: ignore[index]


@pytest.mark.parametrize(
    "commit", ["COMMIT", "END", "  commit;", "END TRANSACTION", "/* a comment first */ COMMIT", "RELEASE outer"]
)
def test_work_undone_right_before_the_commit_is_not_delivered(
    dbpath: Path, qdir: Path, journal: str, listener: hark.Connection, commit: str
) -> None:
    db = setup(dbpath, qdir, journal)
    for i in range(3):
        db.execute("SAVEPOINT outer" if commit.startswith("RELEASE") else "BEGIN")
        db.execute("INSERT INTO orders (email, total) VALUES (?, 1)", (f"kept {i}",))
        db.execute("SAVEPOINT s")
        db.execute("INSERT INTO orders (email, total) VALUES ('undone by rollback to', 1)")
        db.execute("ROLLBACK TO s")
        db.execute("RELEASE s")
        # The newest row of the transaction undone by a failing statement, the last one before
        # the commit: the statement's first row notified, its second failed the CHECK.
        with pytest.raises(Exception, match="CHECK"):
            db.execute("INSERT INTO orders (email, total) VALUES ('undone by failure', 1), ('x', -1)")
        db.execute(commit)
    # And when nothing was undone, with each spelling.
    db.execute("SAVEPOINT outer" if commit.startswith("RELEASE") else "BEGIN")
    db.execute("INSERT INTO orders (email, total) VALUES ('plain', 1)")
    db.execute(commit)
    assert emails(listener) == ["kept 0", "kept 1", "kept 2", "plain"]
    assert [r[0] for r in db.execute("SELECT email FROM orders ORDER BY id")] == ["kept 0", "kept 1", "kept 2", "plain"]


def test_autocommit_statements_publish_exactly_what_they_commit(
    dbpath: Path, qdir: Path, journal: str, listener: hark.Connection
) -> None:
    # Each statement below runs in autocommit mode: its commit is at its end, and what it
    # committed is published from memory. A failure rolls the whole statement back; OR FAIL
    # keeps the rows before the failing one, and their events.
    db = setup(dbpath, qdir, journal)
    other = setup(dbpath, qdir, journal)  # a second writer between them: the outbox is read
    for i in range(3):
        db.execute("INSERT INTO orders (email, total) VALUES (?, 1)", (f"one {i}",))
        db.execute("INSERT INTO orders (email, total) VALUES (?, 1), (?, 2)", (f"two {i}a", f"two {i}b"))
        with pytest.raises(Exception, match="CHECK"):
            db.execute("INSERT INTO orders (email, total) VALUES ('undone', 1), ('x', -1)")
        with pytest.raises(Exception, match="CHECK"):
            db.execute("INSERT OR FAIL INTO orders (email, total) VALUES (?, 1), ('x', -1), ('never', 1)", (f"fail {i}",))
        db.execute("UPDATE orders SET total = total + 1 WHERE email = ?", (f"one {i}",))
        other.execute("INSERT INTO orders (email, total) VALUES (?, 1)", (f"other {i}",))
        db.execute("SELECT pg_notify('events', ?)", (json.dumps({"data": {"email": f"select {i}"}}),))
    got = [(e.get("action"), e["data"]["email"]) for e in events(listener)]  # type: ignore[index, union-attr]
    want = []
    for i in range(3):
        want += [("INSERT", f"one {i}"), ("INSERT", f"two {i}a"), ("INSERT", f"two {i}b"), ("INSERT", f"fail {i}")]
        want += [("UPDATE", f"one {i}"), ("INSERT", f"other {i}"), (None, f"select {i}")]
    assert got == want
    rows = [r[0] for r in db.execute("SELECT email FROM orders ORDER BY id")]
    assert rows == [e for a, e in want if a == "INSERT"]


def test_undone_then_written_again_before_the_commit(dbpath: Path, qdir: Path, listener: hark.Connection) -> None:
    # The rows written after an undo take the undone ids: the ones in memory are forgotten.
    db = setup(dbpath, qdir)
    db.execute("BEGIN")
    db.execute("INSERT INTO orders (email, total) VALUES ('a', 1)")
    db.execute("SAVEPOINT s")
    db.execute("INSERT INTO orders (email, total) VALUES ('undone 1', 1)")
    db.execute("INSERT INTO orders (email, total) VALUES ('undone 2', 1)")
    db.execute("ROLLBACK TO s")
    db.execute("INSERT INTO orders (email, total) VALUES ('b', 1)")
    db.execute("COMMIT")
    assert emails(listener) == ["a", "b"]


def test_a_trigger_on_the_outbox_that_notifies(dbpath: Path, qdir: Path, listener: hark.Connection) -> None:
    # A notification written inside another's outbox insert: both go out, in id order.
    db = setup(dbpath, qdir)
    db.execute("SELECT pg_notify('events', 'creates the outbox')")
    drain(listener)
    db.execute(
        "CREATE TRIGGER echo AFTER INSERT ON hark_outbox WHEN NEW.channel = 'events' "
        "BEGIN SELECT pg_notify('echo', NEW.payload); END"
    )
    with hark.connect(qdir) as echo:
        echo.listen("echo")
        db.execute("BEGIN")
        db.execute("SELECT pg_notify('events', 'one')")
        db.execute("SELECT pg_notify('events', 'two')")
        db.execute("COMMIT")
        assert drain(listener) == [("events", "one"), ("events", "two")]
        assert drain(echo) == [("echo", "one"), ("echo", "two")]
    ids = [r[0] for r in db.execute("SELECT channel FROM hark_outbox WHERE payload IN ('one', 'two') ORDER BY id")]
    assert ids == ["events", "echo", "events", "echo"]


def test_closing_leaves_no_statement_open(dbpath: Path, qdir: Path, listener: hark.Connection) -> None:
    # Python closes with sqlite3_close_v2: a statement left open would keep the connection, its
    # file and its WAL (which the last connection to close removes) for the life of the process.
    db = setup(dbpath, qdir)
    for _ in range(3):
        db.execute("BEGIN")
        db.execute("INSERT INTO orders (email, total) VALUES ('x', 1)")
        db.execute("COMMIT")
    db.execute("SELECT hark_publish()")
    db.close()
    assert len(drain(listener)) == 3
    assert not Path(f"{dbpath}-wal").exists()


def test_a_table_named_as_the_guard_keeps_no_statement(dbpath: Path, qdir: Path, listener: hark.Connection) -> None:
    # The application's own table shadows the eponymous one, whose connection never happens:
    # then nothing may be kept, or nothing would finalize it.
    plain = sqlite3.connect(dbpath)
    plain.execute("CREATE TABLE hark_statement_guard (x)")
    plain.commit()
    plain.close()
    test_closing_leaves_no_statement_open(dbpath, qdir, listener)


def test_the_sqlite3_shell_closes_cleanly(dbpath: Path, qdir: Path, listener: hark.Connection) -> None:
    # The shell closes with sqlite3_close, which refuses a connection with a statement open
    # ("unable to close due to unfinalized statements") and says so on stderr.
    script = f""".load {hark.sqlite.extension_path()}
SELECT hark_queue('{qdir}');
PRAGMA journal_mode=WAL;
CREATE TABLE orders (id INTEGER PRIMARY KEY, email TEXT, total INTEGER);
SELECT hark_notify_changes('orders', 'events');
INSERT INTO orders (email, total) VALUES ('autocommit', 1);
BEGIN;
INSERT INTO orders (email, total) VALUES ('explicit', 1);
COMMIT;
"""
    r = subprocess.run(["sqlite3", str(dbpath)], input=script, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert emails(listener) == ["autocommit", "explicit"]


def test_kept_statements_follow_schema_changes(dbpath: Path, qdir: Path, listener: hark.Connection) -> None:
    db = setup(dbpath, qdir)
    other = open_db(dbpath, qdir)
    db.execute("INSERT INTO orders (email, total) VALUES ('before', 1)")
    # Another connection changes the outbox's table and the data's, then rewrites the file.
    other.execute("ALTER TABLE hark_outbox ADD COLUMN note TEXT")
    other.execute("ALTER TABLE orders ADD COLUMN note TEXT")
    other.execute("SELECT hark_notify_changes('orders', 'events')")
    other.execute("VACUUM")
    db.execute("BEGIN")
    db.execute("INSERT INTO orders (email, total, note) VALUES ('after', 2, 'n')")
    db.execute("COMMIT")
    db.execute("INSERT INTO orders (email, total) VALUES ('autocommit after', 3)")
    got = events(listener)
    assert [e["data"]["email"] for e in got] == ["before", "after", "autocommit after"]  # type: ignore[index]
    assert got[1]["data"] == {"id": 2, "email": "after", "total": 2, "note": "n"}


def test_two_connections_of_one_process_take_turns(dbpath: Path, qdir: Path, listener: hark.Connection) -> None:
    a, b = setup(dbpath, qdir), setup(dbpath, qdir)
    want = []
    for i in range(20):
        db = (a, b)[i % 3 == 0]
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO orders (email, total) VALUES (?, ?)", (f"t{i}", i))
        if i % 5 == 0:
            db.execute("SELECT pg_notify('events', '{}')")
        db.execute("COMMIT")
        want.append(f"t{i}")
        if i == 10:
            a.close()  # its kept statements go with it; b goes on
            a = b
    got = [e["data"]["email"] for e in events(listener) if e]  # type: ignore[index]
    assert got == want


def test_a_program_that_replaces_the_trace_callback_loses_nothing(
    dbpath: Path, qdir: Path, journal: str, listener: hark.Connection
) -> None:
    # Python's set_trace_callback replaces the extension's: no statement end is seen, so each
    # commit is published later (by the next notification, hark_publish() or the live peer),
    # and a new transaction must not fold its notifications into the committed ones.
    db = setup(dbpath, qdir, journal)
    db.set_trace_callback(lambda sql: None)
    for i in range(3):
        db.execute("BEGIN")
        db.execute("SELECT pg_notify('events', 'same')")
        db.execute("INSERT INTO orders (email, total) VALUES (?, 1)", (f"t{i}",))
        db.execute("COMMIT")
    db.execute("SELECT hark_publish()")
    got = [p if p == "same" else json.loads(p)["data"]["email"] for _, p in drain(listener)]
    assert got == ["same", "t0", "same", "t1", "same", "t2"]  # all, once, in commit order

