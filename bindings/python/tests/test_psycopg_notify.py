"""psycopg 3's own notification documentation and tests, run on hark with the import changed.

The examples are those of psycopg's docs/advanced/async.rst ("Asynchronous notifications"), the
tests those of its tests/test_notify.py (psycopg commit c079c37c959a), copied as they are except
for lines marked ``# hark:``, each of which is one of the differences the README lists under
"psycopg → hark". Tests that cannot hold for hark by design are listed at the end with the reason.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from pathlib import Path
from time import sleep, time
from typing import Any, Callable

import pytest

import hark as psycopg
from hark import Notify


# ----- psycopg's fixtures (tests/fix_db.py, tests/acompat.py), on a queue directory -----------


@pytest.fixture
def dsn(qdir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    # psycopg.connect("") means the default database; hark.connect("") the default queue
    # directory, $HARK_DIR, which is this test's.
    monkeypatch.setenv("HARK_DIR", str(qdir))
    return str(qdir)


@pytest.fixture
def conn_cls() -> type[psycopg.Connection]:
    return psycopg.Connection


@pytest.fixture
def conn(conn_cls: type[psycopg.Connection], dsn: str) -> Iterator[psycopg.Connection]:
    # hark: psycopg's connect() defaults to autocommit=False, hark's to True; psycopg's fixture
    # connection is asked for explicitly.
    with conn_cls.connect(dsn, autocommit=False) as c:
        yield c


class _Worker(threading.Thread):
    def __init__(self, f: Callable[[], None]) -> None:
        super().__init__(target=self._main, args=(f,), daemon=True)
        self.error: BaseException | None = None

    def _main(self, f: Callable[[], None]) -> None:
        try:
            f()
        except BaseException as e:  # handed to gather(), which raises it in the test
            self.error = e


def spawn(f: Callable[[], None]) -> _Worker:
    w = _Worker(f)
    w.start()
    return w


def gather(*workers: _Worker) -> None:
    for w in workers:
        w.join(30)
        assert not w.is_alive(), "worker still running after 30 s"
        if w.error is not None:
            raise w.error


# ----- docs/advanced/async.rst ------------------------------------------------------------------


def test_docs_notifies_generator(dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # The psql session of the example notifies once the example's LISTEN ran.
    listening = threading.Event()
    execute = psycopg.Connection.execute

    def spy(self: psycopg.Connection, sql: str) -> Any:
        r = execute(self, sql)
        if sql == "LISTEN mychan":
            listening.set()
        return r

    monkeypatch.setattr(psycopg.Connection, "execute", spy)

    def psql() -> None:
        assert listening.wait(30)
        with psycopg.connect(dsn) as psql:
            for payload in ["hello", "hey", "stop"]:
                psql.execute(f"NOTIFY mychan, '{payload}'")
            pids.append(psql.pid)

    pids: list[int] = []
    worker = spawn(psql)

    # The example, verbatim.
    conn = psycopg.connect("", autocommit=True)
    conn.execute("LISTEN mychan")
    gen = conn.notifies()
    for notify in gen:
        print(notify)
        if notify.payload == "stop":
            gen.close()
    print("there, I stopped")

    gather(worker)
    (pid,) = pids
    assert capsys.readouterr().out == (
        f"Notify(channel='mychan', payload='hello', pid={pid})\n"
        f"Notify(channel='mychan', payload='hey', pid={pid})\n"
        f"Notify(channel='mychan', payload='stop', pid={pid})\n"
        "there, I stopped\n"
    )
    conn.close()


def test_docs_notify_handler(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    conn = psycopg.connect("", autocommit=True)
    conn.execute("LISTEN mychan")

    # The example, verbatim.
    conn.add_notify_handler(lambda n: print(f"got this: {n}"))

    # meanwhile in psql...
    # =# NOTIFY mychan, 'hey';
    # NOTIFY
    with psycopg.connect(dsn) as psql:
        psql.execute("NOTIFY mychan, 'hey'")
        pid = psql.pid

    print(conn.execute("SELECT 1").fetchone())
    # got this: Notify(channel='mychan', payload='hey', pid=961823)
    # (1,)

    assert capsys.readouterr().out == f"got this: Notify(channel='mychan', payload='hey', pid={pid})\n(1,)\n"
    conn.close()


# ----- tests/test_notify.py -------------------------------------------------------------------


def test_notify_handlers(conn: psycopg.Connection) -> None:
    nots1 = []
    nots2 = []

    def cb1(n: Notify) -> None:
        nots1.append(n)

    conn.add_notify_handler(cb1)
    conn.add_notify_handler(lambda n: nots2.append(n))

    conn.set_autocommit(True)
    conn.execute("listen foo")
    conn.execute("notify foo, 'n1'")

    assert len(nots1) == 1
    n = nots1[0]
    assert n.channel == "foo"
    assert n.payload == "n1"
    assert n.pid == conn.info.backend_pid  # hark: psycopg's libpq wrapper, conn.pgconn, has no counterpart

    assert len(nots2) == 1
    assert nots2[0] == nots1[0]

    conn.remove_notify_handler(cb1)
    conn.execute("notify foo, 'n2'")

    assert len(nots1) == 1
    assert len(nots2) == 2
    n = nots2[1]
    assert isinstance(n, Notify)
    assert n.channel == "foo"
    assert n.payload == "n2"
    assert n.pid == conn.info.backend_pid  # hark: conn.pgconn
    assert hash(n)

    with pytest.raises(ValueError):
        conn.remove_notify_handler(cb1)


def test_notify(conn_cls: type[psycopg.Connection], conn: psycopg.Connection, dsn: str) -> None:
    npid = None

    def notifier() -> None:
        with conn_cls.connect(dsn, autocommit=True) as nconn:
            nonlocal npid
            npid = nconn.info.backend_pid  # hark: conn.pgconn

            sleep(0.25)
            nconn.execute("notify foo, '1'")
            sleep(0.25)
            nconn.execute("notify foo, '2'")

    def receiver() -> None:
        conn.set_autocommit(True)
        cur = conn.cursor()
        cur.execute("listen foo")
        gen = conn.notifies()
        for n in gen:
            ns.append((n, time()))
            if len(ns) >= 2:
                gen.close()

    ns: list[tuple[Notify, float]] = []
    t0 = time()
    workers = [spawn(notifier), spawn(receiver)]
    gather(*workers)
    assert len(ns) == 2

    # hark: psycopg's upper bounds on the delays (pytest.approx(0.25, abs=0.05)) are left out:
    # this suite asserts no upper bound on time. The lower bounds stay.
    n, t1 = ns[0]
    assert n.pid == npid
    assert n.channel == "foo"
    assert n.payload == "1"
    assert t1 - t0 >= 0.25

    n, t1 = ns[1]
    assert n.pid == npid
    assert n.channel == "foo"
    assert n.payload == "2"
    assert t1 - t0 >= 0.5


def test_no_notify_timeout(conn: psycopg.Connection) -> None:
    conn.set_autocommit(True)
    t0 = time()
    for n in conn.notifies(timeout=0.5):
        assert False
    dt = time() - t0
    assert 0.5 <= dt  # hark: upper bound (< 0.75) left out


def test_notify_timeout(conn_cls: type[psycopg.Connection], conn: psycopg.Connection, dsn: str) -> None:
    conn.set_autocommit(True)
    conn.execute("listen foo")

    def notifier() -> None:
        with conn_cls.connect(dsn, autocommit=True) as nconn:
            sleep(0.25)
            nconn.execute("notify foo, '1'")

    worker = spawn(notifier)
    try:
        times = [time()]
        for n in conn.notifies(timeout=0.5):
            times.append(time())
        times.append(time())
    finally:
        gather(worker)

    assert len(times) == 3
    # hark: psycopg's pytest.approx(0.25, 0.1) on both gaps, as lower bounds only.
    assert times[1] - times[0] >= 0.25
    assert times[2] - times[0] >= 0.5


def test_notify_timeout_0(conn_cls: type[psycopg.Connection], conn: psycopg.Connection, dsn: str) -> None:
    conn.set_autocommit(True)
    conn.execute("listen foo")

    ns = list(conn.notifies(timeout=0))
    assert not ns

    with conn_cls.connect(dsn, autocommit=True) as nconn:
        nconn.execute("notify foo, '1'")
        sleep(0.1)

    ns = list(conn.notifies(timeout=0))
    assert len(ns) == 1


def test_stop_after(conn_cls: type[psycopg.Connection], conn: psycopg.Connection, dsn: str) -> None:
    conn.set_autocommit(True)
    conn.execute("listen foo")

    def notifier() -> None:
        with conn_cls.connect(dsn, autocommit=True) as nconn:
            nconn.execute("notify foo, '1'")
            sleep(0.1)
            nconn.execute("notify foo, '2'")
            sleep(0.1)
            nconn.execute("notify foo, '3'")

    worker = spawn(notifier)
    try:
        ns = list(conn.notifies(timeout=1.0, stop_after=2))
        assert len(ns) == 2
        assert ns[0].payload == "1"
        assert ns[1].payload == "2"
    finally:
        gather(worker)

    ns = list(conn.notifies(timeout=0.0))
    assert len(ns) == 1
    assert ns[0].payload == "3"


def test_stop_after_batch(conn_cls: type[psycopg.Connection], conn: psycopg.Connection, dsn: str) -> None:
    conn.set_autocommit(True)
    conn.execute("listen foo")

    def notifier() -> None:
        with conn_cls.connect(dsn, autocommit=True) as nconn:
            with nconn.transaction():
                nconn.execute("notify foo, '1'")
                nconn.execute("notify foo, '2'")

    worker = spawn(notifier)
    try:
        ns = list(conn.notifies(timeout=1.0, stop_after=1))
        assert len(ns) == 2
        assert ns[0].payload == "1"
        assert ns[1].payload == "2"
    finally:
        gather(worker)


@pytest.mark.parametrize("query_between", [True, False])
def test_first_notify_not_lost(
    conn: psycopg.Connection, conn_cls: type[psycopg.Connection], dsn: str, query_between: bool
) -> None:
    conn.set_autocommit(True)
    conn.execute("listen foo")

    with conn_cls.connect(dsn, autocommit=True) as conn2:
        conn2.execute("notify foo, 'hi'")

    if query_between:
        conn.execute("select 1")

    n = None
    for n in conn.notifies(timeout=1, stop_after=1):
        pass
    assert n


def _execute_takes_params() -> bool:
    return "params" in inspect.signature(psycopg.Connection.execute).parameters


@pytest.mark.skipif(not _execute_takes_params(), reason="skipped: this hark has no execute(query, params)")
@pytest.mark.parametrize("listen_by", ["callback", "generator"])
def test_notify_query_notify(conn_cls: type[psycopg.Connection], dsn: str, listen_by: str) -> None:
    # hark: psycopg's sleep_on="server" case sleeps with pg_sleep(), a function hark's dialect
    # does not have; the "client" case is kept.
    e = threading.Event()
    notifies: list[int] = []
    workers = []

    def notifier() -> None:
        with conn_cls.connect(dsn, autocommit=True) as conn:
            sleep(0.1)
            for i in range(3):
                conn.execute("select pg_notify('counter', %s)", (str(i),))  # type: ignore[call-arg,unused-ignore]
                sleep(0.2)

    def nap(conn: psycopg.Connection) -> None:
        sleep(0.2)

    if listen_by == "callback":

        def listener() -> None:
            with conn_cls.connect(dsn, autocommit=True) as conn:
                conn.add_notify_handler(lambda n: notifies.append(int(n.payload)))

                conn.execute("listen counter")
                e.set()

                nap(conn)
                conn.execute("")
                nap(conn)
                conn.execute("")
                nap(conn)
                conn.execute("")

    else:

        def listener() -> None:
            with conn_cls.connect(dsn, autocommit=True) as conn:
                conn.execute("listen counter")
                e.set()
                for n in conn.notifies(timeout=0.2):
                    notifies.append(int(n.payload))

                nap(conn)

                for n in conn.notifies(timeout=0.2):
                    notifies.append(int(n.payload))

    workers.append(spawn(listener))
    e.wait()
    workers.append(spawn(notifier))
    gather(*workers)

    assert notifies == list(range(3))


# Not run, by design (README, "psycopg → hark"):
# - test_notifies_blocking: psycopg's notifies() holds the connection's lock, so another
#   thread's execute() waits for it to end; a hark thread asleep in notifies() does not hold the
#   connection, and the other thread's statement runs at once.
# - test_generator_and_handler: psycopg 3.2.10 deprecates handlers and the generator together
#   with a RuntimeWarning; hark supports both at once (handlers see what the generator yields).
