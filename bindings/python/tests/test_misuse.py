"""Misuse from Python (issue 8): calls after close, threads sharing a connection, wrong types,
NUL and lone surrogates, os.fork(). Each case runs in a child interpreter, so that a crash of the
native module shows up as a signal in its exit status instead of taking pytest down."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PRELUDE = """
import os, sys, threading
import hark
qdir = sys.argv[1]

def refused(call, cls, sqlstate=None, message=None):
    try:
        call()
    except cls as e:
        if sqlstate is not None:
            assert e.sqlstate == sqlstate, (call, e.sqlstate)
        if message is not None:
            assert str(e) == message, (call, str(e))
        return e
    raise AssertionError(f"{call} did not raise {cls.__name__}")
"""


def run_case(tmp_path: Path, body: str, timeout: float = 60) -> str:
    """Runs PRELUDE + body in a new interpreter; it must exit 0 (not by a signal) after printing PASS."""
    script = tmp_path / "case.py"
    script.write_text(PRELUDE + textwrap.dedent(body) + "\nprint('PASS')\n")
    p = subprocess.run([sys.executable, str(script), str(tmp_path / "queue")],
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"exit status {p.returncode} (negative: killed by that signal)\n{p.stderr}"
    assert p.stdout.splitlines()[-1:] == ["PASS"], p.stdout + p.stderr
    return p.stdout


def test_every_call_after_close_raises_closed_error(tmp_path: Path) -> None:
    run_case(tmp_path, """
    c = hark.connect(qdir)
    c.listen("a")
    c.close()
    c.close()
    calls = [lambda: c.listen("a"), lambda: c.unlisten("a"), lambda: c.unlisten(), lambda: c.notify("a"),
             lambda: c.notify("a", "p"), lambda: c.execute("SELECT 1"), lambda: c.execute("BEGIN"),
             c.commit, c.rollback, c.fileno, c.listening_channels, c.queue_usage,
             lambda: list(c.notifies(timeout=0)), lambda: list(c.notifies(timeout=0.05, stop_after=1))]
    def in_transaction():
        with c.transaction():
            pass
    calls.append(in_transaction)
    for call in calls:
        e = refused(call, hark.ClosedError, "08003", "connection is closed")
        assert isinstance(e, hark.Error)
    assert c.closed

    async def async_case():
        a = await hark.AsyncConnection.connect(qdir)
        await a.close()
        for call in (lambda: a.listen("x"), lambda: a.notify("x"), a.commit, a.rollback):
            try:
                await call()
            except hark.ClosedError as e:
                assert e.sqlstate == "08003"
            else:
                raise AssertionError(call)
    import asyncio
    asyncio.run(async_case())
    """)


def test_threads_sharing_one_connection_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    run_case(tmp_path, """
    THREADS, EACH = 6, 300
    sender = hark.connect(qdir)
    listener = hark.connect(qdir)
    listener.listen("t")
    errors = []
    def send(i):
        try:
            for k in range(EACH):
                if k % 7 == 0:
                    sender.notify("t", f"{i}-{k}")  # autocommit
                else:
                    sender.execute(f"SELECT pg_notify('t', '{i}-{k}')")
        except BaseException as e:
            errors.append(e)
    got = []
    def receive():
        for n in listener.notifies(timeout=30, stop_after=THREADS * EACH):
            got.append(n.payload)
    r = threading.Thread(target=receive)
    r.start()
    ts = [threading.Thread(target=send, args=(i,)) for i in range(THREADS)]
    for t in ts: t.start()
    # meanwhile, more threads read state off the same connections
    readers = [threading.Thread(target=lambda: [listener.listening_channels() or sender.queue_usage() for _ in range(200)])
               for _ in range(2)]
    for t in readers: t.start()
    for t in ts + readers: t.join()
    r.join()
    assert errors == [], errors
    assert len(got) == THREADS * EACH, len(got)
    assert sorted(got) == sorted(f"{i}-{k}" for i in range(THREADS) for k in range(EACH))
    for i in range(THREADS):  # each sender's own order is kept
        mine = [int(p.split("-")[1]) for p in got if p.startswith(f"{i}-")]
        assert mine == list(range(EACH))
    assert list(listener.notifies(timeout=0.2)) == []

    # close() racing with calls on other threads: each call works or raises ClosedError
    c = hark.connect(qdir)
    outcomes = []
    def hammer():
        for k in range(500):
            try:
                c.notify("race", str(k))
            except hark.ClosedError as e:
                assert e.sqlstate == "08003"
                outcomes.append("closed")
                return
        outcomes.append("done")
    hs = [threading.Thread(target=hammer) for _ in range(4)]
    for t in hs: t.start()
    c.close()
    for t in hs: t.join()
    assert len(outcomes) == 4
    """)


def test_wrong_types_raise_type_error(tmp_path: Path) -> None:
    run_case(tmp_path, """
    c = hark.connect(qdir)
    for call in (lambda: c.notify(None), lambda: c.notify(123), lambda: c.notify(b"ch"),
                 lambda: c.notify("ch", None), lambda: c.notify("ch", 5), lambda: c.notify("ch", b"p"),
                 lambda: c.listen(None), lambda: c.listen(1), lambda: c.listen(b"x"),
                 lambda: c.unlisten(3), lambda: c.execute(None), lambda: c.execute(b"LISTEN x"),
                 lambda: hark.connect(42), lambda: hark.connect(b"/tmp/x"), lambda: hark.connect(qdir, "x"),
                 lambda: list(c.notifies(timeout="x")), lambda: list(c.notifies(timeout=0, stop_after="x"))):
        refused(call, TypeError)
    refused(lambda: c.notify(None), TypeError, message="'None' is not an instance of 'str'")
    refused(lambda: c.notify(123), TypeError, message="'int' object is not an instance of 'str'")
    refused(lambda: hark.connect(42), TypeError, message="expected str, bytes or os.PathLike object, not int")
    # a savepoint name of the wrong type is refused when the block starts
    def bad_savepoint():
        with c.transaction():
            with c.transaction(5):
                pass
    refused(bad_savepoint, TypeError)
    # a handler that is not callable: reported, and the connection keeps working
    c.add_notify_handler(5)
    c.listen("h")
    c.notify("h", "x")
    assert c.execute("SELECT 1") == [("1",)]
    c.remove_notify_handler(5)
    # after all of this the connection still works
    c.notify("h", "y")
    assert [n.payload for n in c.notifies(timeout=0)] == ["y"]
    c.close()
    """)


def test_nul_surrogates_and_bytes(tmp_path: Path) -> None:
    run_case(tmp_path, """
    c = hark.connect(qdir)
    c.listen("ok")
    nul = 'invalid byte sequence for encoding "UTF8": 0x00'
    for call in (lambda: c.notify("ok", "a\\0b"), lambda: c.notify("a\\0b", "p"), lambda: c.listen("a\\0"),
                 lambda: c.unlisten("\\0"), lambda: c.execute("NOTIFY ok, 'a\\0b'")):
        refused(call, hark.InvalidArgumentError, "22021", nul)
    # A lone surrogate cannot be encoded as UTF-8: Python's own UnicodeEncodeError (a ValueError).
    for call in (lambda: c.notify("ok", "\\udcff"), lambda: c.notify("\\udcff"), lambda: c.listen("\\ud800"),
                 lambda: c.execute("NOTIFY ok, '\\udcff'")):
        e = refused(call, UnicodeEncodeError)
        assert e.reason == "surrogates not allowed"
    # bytes are not str
    refused(lambda: c.notify("ok", b"\\xff"), TypeError)
    # nothing of the above was delivered, and valid text round-trips
    c.notify("ok", "é😀\\u2028")
    assert [n.payload for n in c.notifies(timeout=0)] == ["é😀\\u2028"]
    c.close()
    """)


def test_fork_child_listening_channels_is_refused(tmp_path: Path) -> None:
    run_case(tmp_path, """
    parent = hark.connect(qdir)
    parent.listen("a")
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            refused(parent.listening_channels, hark.ClosedError, "08003")
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    """)


def test_fork_child_is_refused_and_opens_its_own(tmp_path: Path) -> None:
    run_case(tmp_path, """
    parent = hark.connect(qdir)
    parent.listen("from-child")
    parent_pid = os.getpid()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for call in (lambda: parent.listen("x"), lambda: parent.notify("from-child", "via parent"),
                         lambda: parent.execute("SELECT 1"), lambda: list(parent.notifies(timeout=0)),
                         parent.queue_usage):
                refused(call, hark.ClosedError, "08003")
            e = refused(lambda: parent.notify("x"), hark.ClosedError)
            assert "fork" in str(e), str(e)
            with hark.connect(qdir) as own:
                assert own.pid == os.getpid() != parent_pid
                own.notify("from-child", "hello")
            parent.close()  # allowed; must not disturb the parent's session
            code = 0
        except BaseException:
            import traceback; traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    got = [(n.channel, n.payload, n.pid) for n in parent.notifies(timeout=5, stop_after=1)]
    assert got == [("from-child", "hello", pid)], got
    assert list(parent.notifies(timeout=0.2)) == []
    parent.notify("from-child", "parent still works")
    assert [n.payload for n in parent.notifies(timeout=0)] == ["parent still works"]
    parent.close()
    """)
