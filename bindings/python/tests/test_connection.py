"""The blocking Connection: statements, listening, notifying, information, closing."""

from __future__ import annotations

import os
import select
import selectors
from pathlib import Path

import pytest

import hark


def test_self_notify_carries_channel_payload_and_pid(conn: hark.Connection) -> None:
    conn.listen("events")
    conn.notify("events", "order 42 paid")
    conn.notify("events")
    got = list(conn.notifies(timeout=0))
    assert got == [
        hark.Notify("events", "order 42 paid", os.getpid()),
        hark.Notify("events", "", os.getpid()),
    ]
    n = got[0]
    assert (n.channel, n.payload, n.pid) == ("events", "order 42 paid", conn.pid)
    assert isinstance(n, tuple) and n._fields == ("channel", "payload", "pid")


def test_another_connection_receives_only_its_channels(conn: hark.Connection, other: hark.Connection) -> None:
    conn.listen("a")
    other.notify("b", "not for us")
    other.notify("a", "for us")
    assert [n.payload for n in conn.notifies(timeout=0)] == ["for us"]


def test_listen_takes_channel_verbatim_and_sql_folds_identifiers(conn: hark.Connection) -> None:
    conn.listen("MixedCase")
    conn.execute("LISTEN Folded")
    assert conn.listening_channels() == ["MixedCase", "folded"]
    conn.execute("NOTIFY MixedCase, 'unquoted name is folded, so nobody hears this'")
    conn.execute("""NOTIFY "MixedCase", 'heard'""")
    assert [n.payload for n in conn.notifies(timeout=0)] == ["heard"]


def test_unlisten_one_and_all(conn: hark.Connection) -> None:
    conn.listen("a")
    conn.listen("b")
    conn.listen("c")
    conn.unlisten("b")
    assert conn.listening_channels() == ["a", "c"]
    conn.unlisten()
    assert conn.listening_channels() == []
    conn.notify("a", "x")
    assert list(conn.notifies(timeout=0)) == []


def test_execute_returns_rows_tag_and_columns(conn: hark.Connection) -> None:
    conn.listen("events")
    r = conn.execute("SELECT pg_listening_channels(), pg_backend_pid(), pg_notification_queue_usage()")
    assert isinstance(r, list) and isinstance(r, hark.Result)
    assert r.tag == "SELECT 1"
    assert r.columns == ["pg_listening_channels", "pg_backend_pid", "pg_notification_queue_usage"]
    assert r == [("events", str(os.getpid()), "0")]
    assert conn.execute("SELECT 'a' || 'b' AS x, NULL AS y") == [("ab", None)]
    r = conn.execute("NOTIFY events, 'p'")
    assert (r.tag, r.columns, list(r)) == ("NOTIFY", [], [])
    assert conn.execute("SELECT pg_notify('events', 'q')") == [("",)]
    assert [n.payload for n in conn.notifies(timeout=0)] == ["p", "q"]


def test_execute_several_statements_are_one_transaction(conn: hark.Connection, other: hark.Connection) -> None:
    conn.listen("ch")
    with pytest.raises(hark.SqlSyntaxError):
        other.execute("NOTIFY ch, 'first'; NOTIFY ch, 'second'; SELECT no_such_function()")
    assert list(conn.notifies(timeout=0)) == []
    other.execute("NOTIFY ch, 'first'; NOTIFY ch, 'first'; NOTIFY ch, 'second'")
    assert [n.payload for n in conn.notifies(timeout=0)] == ["first", "second"]


def test_explicit_begin_commit_and_rollback(conn: hark.Connection, other: hark.Connection) -> None:
    conn.listen("ch")
    other.execute("BEGIN")
    assert other.transaction_status is hark.TransactionStatus.INTRANS
    other.notify("ch", "rolled back")
    other.rollback()
    other.execute("BEGIN")
    other.notify("ch", "committed")
    assert list(conn.notifies(timeout=0)) == []  # nothing before the commit
    other.commit()
    assert other.transaction_status is hark.TransactionStatus.IDLE
    assert [n.payload for n in conn.notifies(timeout=0)] == ["committed"]
    other.commit()  # nothing open: nothing happens, as in psycopg


def test_failed_block_reports_inerror(conn: hark.Connection) -> None:
    conn.execute("BEGIN")
    with pytest.raises(hark.SqlSyntaxError):
        conn.execute("SELECT nope(")
    assert conn.transaction_status is hark.TransactionStatus.INERROR
    with pytest.raises(hark.TransactionStateError) as e:
        conn.notify("ch", "x")
    assert e.value.sqlstate == "25P02"
    conn.rollback()
    assert conn.transaction_status is hark.TransactionStatus.IDLE


def test_queue_usage_is_a_fraction(qdir: Path) -> None:
    with hark.connect(qdir, max_queue_size=512 * 1024) as listener, hark.connect(qdir) as app:
        listener.listen("ch")
        assert listener.queue_usage() == 0.0
        for i in range(8):
            app.notify("ch", "x" * 7000 + str(i))
        usage = app.queue_usage()
        assert 0.0 < usage < 1.0
        assert float(app.execute("SELECT pg_notification_queue_usage()")[0][0] or "nan") == pytest.approx(usage)


def test_fileno_works_with_select_and_selectors(conn: hark.Connection, other: hark.Connection) -> None:
    conn.listen("ch")
    list(conn.notifies(timeout=0))
    assert select.select([conn], [], [], 0.05)[0] == []  # select() takes the object itself
    other.notify("ch", "wake")
    assert select.select([conn], [], [], 5)[0] == [conn]
    assert [n.payload for n in conn.notifies(timeout=0)] == ["wake"]
    with selectors.DefaultSelector() as sel:
        sel.register(conn, selectors.EVENT_READ)
        assert sel.select(0.05) == []
        other.notify("ch", "again")
        assert len(sel.select(5)) == 1
    assert [n.payload for n in conn.notifies(timeout=0)] == ["again"]


def test_context_manager_commits_open_block_then_closes(qdir: Path, other: hark.Connection) -> None:
    other.listen("ch")
    with hark.connect(qdir) as c:
        c.execute("BEGIN")
        c.notify("ch", "kept")
    assert c.closed
    with pytest.raises(RuntimeError), hark.connect(qdir) as c2:
        c2.execute("BEGIN")
        c2.notify("ch", "dropped")
        raise RuntimeError("boom")
    assert c2.closed
    assert [n.payload for n in other.notifies(timeout=0)] == ["kept"]


def test_closed_connection_raises_closed_error(conn: hark.Connection) -> None:
    conn.close()
    conn.close()  # twice is fine
    assert conn.closed
    for call in (lambda: conn.listen("a"), lambda: conn.notify("a"), lambda: conn.execute("SELECT 1"),
                 conn.fileno, conn.listening_channels, conn.queue_usage, lambda: list(conn.notifies(timeout=0))):
        with pytest.raises(hark.ClosedError) as e:
            call()
        assert e.value.sqlstate == "08003"


def test_default_directory_comes_from_hark_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARK_DIR", str(tmp_path / "env-queue"))
    assert hark.default_dir() == tmp_path / "env-queue"
    with hark.connect() as c:
        assert c.dir == tmp_path / "env-queue"
        assert (tmp_path / "env-queue").is_dir()


def test_the_default_directory_ignores_the_runtime_and_temporary_directories(monkeypatch: pytest.MonkeyPatch) -> None:
    # One rule for a login shell and a service of the same user, whatever their environment.
    monkeypatch.delenv("HARK_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/12345")
    monkeypatch.setenv("TMPDIR", "/var/tmp")
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path("/tmp")
    assert hark.default_dir() == base / f"hark-{os.geteuid()}"


def test_each_connection_has_its_own_backend_pid(conn: hark.Connection, other: hark.Connection) -> None:
    # As each psycopg connection has its own backend: "skip my own" skips only this one's.
    assert conn.pid == os.getpid() and other.pid != conn.pid and other.pid >= 2**22
    assert conn.execute("SELECT pg_backend_pid()") == [(str(conn.pid),)]
    assert other.execute("SELECT pg_backend_pid()") == [(str(other.pid),)]
    conn.listen("ch")
    other.notify("ch", "from other")
    conn.notify("ch", "from me")
    got = list(conn.notifies(timeout=0))
    assert [(n.payload, n.pid) for n in got] == [("from other", other.pid), ("from me", conn.pid)]
    assert [n.payload for n in got if n.pid != conn.pid] == ["from other"]


def test_create_false_opens_only_an_existing_queue(qdir: Path) -> None:
    with pytest.raises(hark.IoError, match="does not exist") as e:
        hark.connect(qdir, create=False)
    assert e.value.sqlstate == "3D000" and not qdir.exists()
    with hark.connect(qdir) as creator, hark.connect(qdir, create=False) as joiner:
        joiner.listen("ch")
        creator.notify("ch", "hello")
        assert [n.payload for n in joiner.notifies(timeout=0)] == ["hello"]


def test_a_queue_is_never_created_among_other_files_nor_at_a_connection_string(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(hark.PermissionDeniedError, match="exists but is not empty") as e:
        hark.connect(tmp_path)
    assert e.value.sqlstate == "55000" and e.value.hint and "missing or empty directory" in e.value.hint
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    for dsn in ("dbname=app", "host=localhost dbname=app", "postgresql://localhost/app"):
        with pytest.raises(hark.InvalidArgumentError, match="looks like") as e:
            hark.connect(dsn)
        assert e.value.hint and "queue directory" in e.value.hint


def test_options_and_pathlike(tmp_path: Path) -> None:
    with hark.connect(tmp_path / "q", max_payload=20000) as c:
        c.listen("big")
        c.notify("big", "é" * 9000)  # 18000 bytes: over PostgreSQL's 7999, under this queue's limit
        assert [len(n.payload) for n in c.notifies(timeout=0)] == [9000]
        with pytest.raises(hark.InvalidArgumentError, match="payload string too long"):
            c.notify("big", "x" * 20001)
    with pytest.raises(hark.InvalidArgumentError, match="cannot be reopened"):
        hark.connect(str(tmp_path / "q"), max_payload=100)


def test_notices_go_to_handlers_or_the_log(conn: hark.Connection, caplog: pytest.LogCaptureFixture) -> None:
    got: list[hark.Notice] = []
    conn.add_notice_handler(got.append)
    conn.execute("COMMIT")
    assert got == [hark.Notice("WARNING", "25P01", "there is no transaction in progress", None, None)]
    long_name = "x" * 70
    conn.execute(f"LISTEN {long_name}")
    assert got[1].sqlstate == "42622" and "will be truncated" in got[1].message
    assert conn.listening_channels() == ["x" * 63]
    conn.remove_notice_handler(got.append)
    with caplog.at_level("INFO", logger="hark"):
        conn.execute("COMMIT")
    assert "there is no transaction in progress" in caplog.text
    assert len(got) == 2


def test_repr_names_the_queue(conn: hark.Connection) -> None:
    assert repr(conn).startswith("<hark.Connection ")
    assert str(conn.pid) in repr(conn)


def test_a_forked_child_cannot_use_its_parents_connection(conn: hark.Connection, other: hark.Connection) -> None:
    conn.listen("ch")
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        code = 1
        try:
            conn.notify("ch", "from the child")
        except hark.ClosedError as e:
            code = 0 if "fork" in str(e) else 2
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    # The parent's session is untouched.
    other.notify("ch", "still listening")
    assert [n.payload for n in conn.notifies(timeout=1, stop_after=1)] == ["still listening"]
