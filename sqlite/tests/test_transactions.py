"""Delivered if and only if the SQLite transaction commits, in commit order, duplicates folded:
one process, both journal modes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import SCHEMA, drain, events, open_db

import hark
import hark.sqlite


def setup(dbpath: Path, qdir: Path, journal: str) -> sqlite3.Connection:
    db = open_db(dbpath, qdir, journal)
    db.executescript(SCHEMA)
    db.execute("SELECT hark_notify_changes('orders', 'events')")
    return db


def test_a_committed_change_sends_the_seeds_event(dbpath: Path, qdir: Path, journal: str, listener: hark.Connection) -> None:
    db = setup(dbpath, qdir, journal)
    db.execute("INSERT INTO orders (email, total) VALUES ('a@example.com', 4200)")
    db.execute("UPDATE orders SET total = 5000 WHERE id = 1")
    db.execute("DELETE FROM orders WHERE id = 1")
    got = drain(listener)
    # json_build_object's text around row_to_json's, as PostgreSQL prints them.
    assert got == [
        ("events", '{"table" : "orders", "action" : "INSERT", "data" : {"id":1,"email":"a@example.com","total":4200}}'),
        ("events", '{"table" : "orders", "action" : "UPDATE", "data" : {"id":1,"email":"a@example.com","total":5000}}'),
        ("events", '{"table" : "orders", "action" : "DELETE", "data" : {"id":1,"email":"a@example.com","total":5000}}'),
    ]


def test_nothing_undone_is_delivered(dbpath: Path, qdir: Path, journal: str, listener: hark.Connection) -> None:
    db = setup(dbpath, qdir, journal)
    db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    db.execute("CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("CREATE TRIGGER child_notify AFTER INSERT ON child BEGIN SELECT pg_notify('events', '{\"child\": ' || NEW.id || '}'); END")
    db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON orders WHEN NEW.email = 'raise' BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    # ROLLBACK.
    db.execute("BEGIN")
    db.execute("INSERT INTO orders (email, total) VALUES ('rolled back', 1)")
    db.execute("ROLLBACK")
    # ROLLBACK TO a savepoint, then commit the rest.
    db.execute("BEGIN")
    db.execute("INSERT INTO orders (email, total) VALUES ('kept', 1)")
    db.execute("SAVEPOINT s")
    db.execute("INSERT INTO orders (email, total) VALUES ('undone by rollback to', 2)")
    db.execute("ROLLBACK TO s")
    db.execute("COMMIT")
    # A two-row INSERT whose second row fails its CHECK: SQLite undoes the first row too.
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO orders (email, total) VALUES ('first of two', 1), ('second of two', -1)")
    # A trigger that RAISEs after an earlier row of the same statement notified.
    with pytest.raises(sqlite3.IntegrityError, match="refused"):
        db.execute("INSERT INTO orders (email, total) VALUES ('before raise', 1), ('raise', 1)")
    # A failing statement inside an explicit transaction: the transaction goes on without it.
    db.execute("BEGIN")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO orders (email, total) VALUES ('in txn, first of two', 1), ('x', -1)")
    db.execute("INSERT INTO orders (email, total) VALUES ('in txn, kept', 1)")
    db.execute("COMMIT")
    # A COMMIT that fails (a deferred foreign key), then the rollback it calls for.
    db.execute("BEGIN")
    db.execute("INSERT INTO child VALUES (1, 99)")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        db.execute("COMMIT")
    db.execute("ROLLBACK")
    got = [e["data"]["email"] for e in events(listener) if "data" in e]  # type: ignore[index]
    assert got == ["kept", "in txn, kept"]
    rows = [r[0] for r in db.execute("SELECT email FROM orders ORDER BY id")]
    assert rows == got


def test_a_failed_commit_then_a_good_one_delivers_once(dbpath: Path, qdir: Path, listener: hark.Connection) -> None:
    db = setup(dbpath, qdir, "wal")
    db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    db.execute("CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("BEGIN")
    db.execute("INSERT INTO child VALUES (1, 7)")
    db.execute("SELECT pg_notify('events', 'child 1')")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("COMMIT")
    assert drain(listener) == []
    db.execute("INSERT INTO parent VALUES (7)")  # the transaction is still open: fix it
    db.execute("COMMIT")
    assert drain(listener) == [("events", "child 1")]


def test_duplicates_fold_within_a_transaction_only(dbpath: Path, qdir: Path, journal: str, listener: hark.Connection) -> None:
    db = setup(dbpath, qdir, journal)
    db.execute("BEGIN")
    for p in ["a", "b", "a", "a", "c", "b"]:
        db.execute("SELECT pg_notify('events', ?)", (p,))
    db.execute("SELECT pg_notify('other', 'a')")  # another channel is another notification
    db.execute("COMMIT")
    db.execute("SELECT pg_notify('events', 'a')")  # another transaction: not folded
    # A duplicate whose first copy was rolled back to a savepoint is not folded away.
    db.execute("BEGIN")
    db.execute("SAVEPOINT s")
    db.execute("SELECT pg_notify('events', 'again')")
    db.execute("ROLLBACK TO s")
    db.execute("SELECT pg_notify('events', 'again')")
    db.execute("COMMIT")
    assert drain(listener) == [("events", p) for p in ["a", "b", "c", "a", "again"]]


def test_commit_order_across_connections_of_one_process(dbpath: Path, qdir: Path, listener: hark.Connection) -> None:
    dbs = [setup(dbpath, qdir, "wal") for _ in range(3)]
    want = []
    for i in range(30):
        db = dbs[i * 7 % 3]
        db.execute("INSERT INTO orders (email, total) VALUES (?, ?)", (f"c{i}", i))
        want.append(f"c{i}")
    assert [e["data"]["email"] for e in events(listener)] == want  # type: ignore[index]


def test_pg_notify_checks_its_arguments_as_postgresql(dbpath: Path, qdir: Path) -> None:
    db = setup(dbpath, qdir, "wal")
    with pytest.raises(sqlite3.OperationalError, match="channel name cannot be empty"):
        db.execute("SELECT pg_notify('', 'x')")
    with pytest.raises(sqlite3.OperationalError, match="channel name cannot be empty"):
        db.execute("SELECT pg_notify(NULL, 'x')")
    with pytest.raises(sqlite3.OperationalError, match="channel name too long"):
        db.execute("SELECT pg_notify(?, 'x')", ("c" * 64,))
    with pytest.raises(sqlite3.OperationalError, match="payload string too long"):
        db.execute("SELECT pg_notify('c', ?)", ("x" * 8000,))


def test_a_connection_without_the_extension_gets_a_clear_error(dbpath: Path, qdir: Path, listener: hark.Connection) -> None:
    db = setup(dbpath, qdir, "wal")
    plain = sqlite3.connect(dbpath, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="no such function: pg_notify"):
        plain.execute("INSERT INTO orders (email, total) VALUES ('plain', 1)")
    assert plain.execute("SELECT count(*) FROM orders").fetchone() == (0,)
    db.execute("INSERT INTO orders (email, total) VALUES ('loaded', 1)")
    assert [e["data"]["email"] for e in events(listener)] == ["loaded"]  # type: ignore[index]


def test_tcn_payloads(dbpath: Path, qdir: Path, qdir_listener: None = None) -> None:
    db = open_db(dbpath, qdir)
    db.execute("CREATE TABLE tcndata (a INTEGER NOT NULL, b DATE NOT NULL, c TEXT, PRIMARY KEY (a, b))")
    db.execute("SELECT hark_notify_tcn('tcndata')")
    with hark.connect(qdir) as l:
        l.listen("tcn")
        db.execute("INSERT INTO tcndata VALUES (1, '2012-12-22', 'one'), (1, '2012-12-23', 'another')")
        db.execute("UPDATE tcndata SET c = 'uno' WHERE a = 1")
        db.execute("DELETE FROM tcndata WHERE a = 1 AND b = '2012-12-22'")
        db.execute("CREATE TABLE \"we\"\"ird\" (k TEXT PRIMARY KEY)")
        db.execute("SELECT hark_notify_tcn('we\"ird')")
        db.execute("INSERT INTO \"we\"\"ird\" VALUES ('O''Brien')")
        assert [p for _, p in drain(l)] == [
            '"tcndata",I,"a"=\'1\',"b"=\'2012-12-22\'',
            '"tcndata",I,"a"=\'1\',"b"=\'2012-12-23\'',
            '"tcndata",U,"a"=\'1\',"b"=\'2012-12-22\'',
            '"tcndata",U,"a"=\'1\',"b"=\'2012-12-23\'',
            '"tcndata",D,"a"=\'1\',"b"=\'2012-12-22\'',
            '"we""ird",I,"k"=\'O\'\'Brien\'',
        ]
    db.execute("CREATE TABLE nokey (x)")
    with pytest.raises(sqlite3.OperationalError, match="must be called on a table with a primary key"):
        db.execute("SELECT hark_notify_tcn('nokey')")
    with pytest.raises(sqlite3.OperationalError, match='relation "missing" does not exist'):
        db.execute("SELECT hark_notify_changes('missing', 'events')")


def test_every_sqlite_type_as_row_to_json_writes_it(dbpath: Path, qdir: Path, listener: hark.Connection) -> None:
    db = open_db(dbpath, qdir)
    db.execute('CREATE TABLE t ("odd ""name""" INTEGER, r REAL, s TEXT, b BLOB, n)')
    db.execute("SELECT hark_notify_changes('t', 'events')")
    db.execute("INSERT INTO t VALUES (1, 2.5, 'quote \" and \\ and é', x'00ff', NULL)")
    (_, payload), = drain(listener)
    assert json.loads(payload)["data"] == {'odd "name"': 1, "r": 2.5, "s": 'quote " and \\ and é', "b": "\\x00ff", "n": None}


def test_each_connection_chooses_its_queue(dbpath: Path, tmp_path: Path) -> None:
    qa, qb = tmp_path / "qa", tmp_path / "qb"
    a, b = open_db(dbpath, qa), open_db(tmp_path / "other.db", qb)
    assert a.execute("SELECT hark_queue()").fetchone() == (str(qa),)
    with hark.connect(qa) as la, hark.connect(qb) as lb:
        la.listen("c")
        lb.listen("c")
        a.execute("SELECT pg_notify('c', 'to a')")
        b.execute("SELECT pg_notify('c', 'to b')")
        assert drain(la) == [("c", "to a")]
        assert drain(lb) == [("c", "to b")]
    a.execute("BEGIN")
    a.execute("SELECT pg_notify('c', 'x')")
    with pytest.raises(sqlite3.OperationalError, match="inside a transaction"):
        a.execute("SELECT hark_queue(?)", (str(qb),))
    a.execute("ROLLBACK")


def test_the_sqlite3_shell_loads_it(dbpath: Path, qdir: Path, listener: hark.Connection) -> None:
    ext = hark.sqlite.extension_path()
    script = f""".load {ext}
SELECT hark_queue('{qdir}');
CREATE TABLE orders (id INTEGER PRIMARY KEY, email TEXT, total INTEGER);
SELECT hark_notify_changes('orders', 'events');
BEGIN;
INSERT INTO orders (email, total) VALUES ('from the shell', 1);
COMMIT;
"""
    r = subprocess.run(["sqlite3", str(dbpath)], input=script, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert [e["data"]["email"] for e in events(listener)] == ["from the shell"]  # type: ignore[index]


def test_published_rows_are_deleted_and_later_events_still_go_out(dbpath: Path, qdir: Path, listener: hark.Connection) -> None:
    db = setup(dbpath, qdir, "wal")
    for i in range(600):
        db.execute("INSERT INTO orders (email, total) VALUES (?, ?)", (f"o{i}", i))
    # Every event went out, and the outbox keeps only a few rows (at least the newest published).
    assert [e["data"]["email"] for e in events(listener)] == [f"o{i}" for i in range(600)]  # type: ignore[index]
    kept = db.execute("SELECT count(*), max(id) FROM hark_outbox").fetchone()
    assert 1 <= kept[0] < 300 and kept[1] == 600
    # A new connection (which starts with nothing in memory) still numbers above the mark.
    again = open_db(dbpath, qdir)
    again.execute("INSERT INTO orders (email, total) VALUES ('after cleanup', 1)")
    assert [e["data"]["email"] for e in events(listener)] == ["after cleanup"]  # type: ignore[index]


def test_pythons_own_transaction_handling(dbpath: Path, qdir: Path, listener: hark.Connection) -> None:
    # sqlite3's default: an implicit BEGIN before the INSERT, commit() and rollback() end it.
    db = hark.sqlite.connect(dbpath, queue=qdir)
    db.execute(SCHEMA)
    db.execute("SELECT hark_notify_changes('orders', 'events')")
    with db:
        db.execute("INSERT INTO orders (email, total) VALUES ('with', 1)")
    db.execute("INSERT INTO orders (email, total) VALUES ('committed', 1)")
    assert [e["data"]["email"] for e in events(listener)] == ["with"]  # type: ignore[index]
    db.commit()
    db.execute("INSERT INTO orders (email, total) VALUES ('rolled back', 1)")
    db.rollback()
    assert [e["data"]["email"] for e in events(listener)] == ["committed"]  # type: ignore[index]
