"""notifies(): psycopg 3.2's meaning of timeout and stop_after, nothing lost between runs,
and notify handlers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import hark


@pytest.fixture
def listener(conn: hark.Connection) -> hark.Connection:
    conn.listen("ch")
    return conn


def payloads(ns: Iterator[hark.Notify]) -> list[str]:
    return [n.payload for n in ns]


def send_later(qdir: Path, delays_and_payloads: list[tuple[float, str]]) -> threading.Thread:
    """Notify from another connection, in another thread, at the given offsets (seconds)."""

    def run() -> None:
        with hark.connect(qdir) as c:
            start = time.monotonic()
            for at, payload in delays_and_payloads:
                time.sleep(max(0.0, start + at - time.monotonic()))
                c.notify("ch", payload)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_timeout_zero_takes_what_is_there_and_stops(listener: hark.Connection, other: hark.Connection) -> None:
    t0 = time.monotonic()
    assert list(listener.notifies(timeout=0)) == []
    other.notify("ch", "a")
    other.notify("ch", "b")
    assert payloads(listener.notifies(timeout=0)) == ["a", "b"]
    assert time.monotonic() - t0 < 5  # no wait at all; only a gross hang fails this


def test_timeout_is_the_total_running_time_not_an_idle_gap(listener: hark.Connection, qdir: Path) -> None:
    # A steady stream, one every 20 ms until the generator is over; a 0.5 s timeout must end it
    # although it never goes 0.5 s without a notification.
    stop = threading.Event()
    sent: list[str] = []

    def stream() -> None:
        with hark.connect(qdir) as c:
            deadline = time.monotonic() + 20
            while not stop.is_set() and time.monotonic() < deadline:
                c.notify("ch", str(len(sent)))
                sent.append(str(len(sent)))
                time.sleep(0.02)

    sender = threading.Thread(target=stream)
    sender.start()
    try:
        t0 = time.monotonic()
        got = payloads(listener.notifies(timeout=0.5))
        elapsed = time.monotonic() - t0
    finally:
        stop.set()
        sender.join()
    assert elapsed >= 0.5
    assert elapsed < 10  # far below the 20 s the stream would have lasted
    assert len(got) >= 3
    assert got == sent[: len(got)]


def test_timeout_without_notifications_waits_that_long(listener: hark.Connection) -> None:
    t0 = time.monotonic()
    assert list(listener.notifies(timeout=0.3)) == []
    assert time.monotonic() - t0 >= 0.3


def test_stop_after_stops_once_enough_were_yielded(listener: hark.Connection, qdir: Path) -> None:
    sender = send_later(qdir, [(0.1, "1"), (0.2, "2"), (0.3, "3"), (0.4, "4")])
    try:
        assert payloads(listener.notifies(stop_after=2, timeout=10)) == ["1", "2"]
    finally:
        sender.join()
    # The rest were not lost.
    assert payloads(listener.notifies(stop_after=2, timeout=10)) == ["3", "4"]


def test_stop_after_yields_a_batch_that_arrived_together_whole(listener: hark.Connection, other: hark.Connection) -> None:
    with other.transaction():
        for i in range(5):
            other.notify("ch", str(i))
    # psycopg: "You might actually receive more than this number if more than one notification
    # arrives in the same packet."
    assert payloads(listener.notifies(stop_after=2, timeout=10)) == ["0", "1", "2", "3", "4"]


def test_stop_after_without_timeout_waits_for_them(listener: hark.Connection, qdir: Path) -> None:
    sender = send_later(qdir, [(0.2, "late")])
    try:
        t0 = time.monotonic()
        assert payloads(listener.notifies(stop_after=1)) == ["late"]
        assert time.monotonic() - t0 >= 0.15
    finally:
        sender.join()


def test_notifications_arriving_between_generator_runs_are_kept(listener: hark.Connection, other: hark.Connection) -> None:
    other.notify("ch", "before any generator")
    assert payloads(listener.notifies(stop_after=1, timeout=5)) == ["before any generator"]
    other.notify("ch", "between runs 1")
    listener.execute("SELECT 1")  # reading the queue for another statement does not drop them
    other.notify("ch", "between runs 2")
    assert payloads(listener.notifies(timeout=0)) == ["between runs 1", "between runs 2"]


def test_breaking_out_of_the_loop_loses_nothing(listener: hark.Connection, other: hark.Connection) -> None:
    with other.transaction():
        for i in range(10):
            other.notify("ch", str(i))
    first = []
    for n in listener.notifies(timeout=5):
        first.append(n.payload)
        if len(first) == 3:
            break
    assert first == ["0", "1", "2"]
    assert payloads(listener.notifies(timeout=0)) == [str(i) for i in range(3, 10)]


def test_notifications_wait_for_the_end_of_the_listeners_own_block(listener: hark.Connection, other: hark.Connection) -> None:
    listener.execute("BEGIN")
    other.notify("ch", "after the block")
    assert list(listener.notifies(timeout=0.1)) == []  # PostgreSQL delivers only between transactions
    listener.commit()
    assert payloads(listener.notifies(timeout=0)) == ["after the block"]


def test_handlers_receive_notifications_as_statements_run(listener: hark.Connection, other: hark.Connection) -> None:
    got: list[hark.Notify] = []
    listener.add_notify_handler(got.append)
    other.notify("ch", "one")
    other.notify("ch", "two")
    assert got == []  # handlers run when the connection reads its input
    listener.execute("SELECT 1")
    assert payloads(iter(got)) == ["one", "two"]
    assert all(n.pid == other.pid for n in got)
    # Taken by the handlers, so not kept for the generator as well (psycopg's rule).
    assert list(listener.notifies(timeout=0)) == []
    listener.remove_notify_handler(got.append)
    other.notify("ch", "three")
    listener.execute("SELECT 1")
    assert len(got) == 2
    assert payloads(listener.notifies(timeout=0)) == ["three"]


def test_handlers_also_see_what_the_generator_yields(listener: hark.Connection, other: hark.Connection) -> None:
    seen: list[str] = []
    listener.add_notify_handler(lambda n: seen.append(n.payload))
    other.notify("ch", "x")
    other.notify("ch", "y")
    assert payloads(listener.notifies(stop_after=2, timeout=5)) == ["x", "y"]
    assert seen == ["x", "y"]


def test_a_failing_handler_does_not_stop_the_others(listener: hark.Connection, other: hark.Connection,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    got: list[str] = []

    def broken(n: hark.Notify) -> None:
        raise ValueError("handler bug")

    listener.add_notify_handler(broken)
    listener.add_notify_handler(lambda n: got.append(n.payload))
    other.notify("ch", "z")
    listener.execute("SELECT 1")
    assert got == ["z"]
    assert "handler bug" in caplog.text


def test_more_than_one_read_batch(listener: hark.Connection, other: hark.Connection) -> None:
    # The core copies at most 4096 notifications per read; the generator must go on past that.
    n = 10000
    with other.transaction():
        for i in range(n):
            other.notify("ch", str(i))
    got = payloads(listener.notifies(timeout=5, stop_after=n))
    assert got == [str(i) for i in range(n)]
