"""Durable subscriptions from Python: resume across restarts, acknowledgement, patterns, the
gap as an exception with its counts, and the commit metadata on every notification."""

from __future__ import annotations

import asyncio
import copy
import datetime
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hark


def payloads(conn: hark.Connection) -> list[str]:
    return [n.payload for n in conn.notifies(timeout=0)]


def test_a_notification_keeps_its_position_and_commit_time_through_copies_and_pickling(qdir: Path) -> None:
    app = hark.connect(qdir)
    app.listen("events")
    before = datetime.datetime.now(datetime.timezone.utc)
    app.notify("events", "first")
    app.notify("events", "x")
    first, n = list(app.notifies(timeout=0))
    assert n.position > first.position and n.txn > first.txn
    assert before - datetime.timedelta(seconds=1) <= n.commit_time <= datetime.datetime.now(datetime.timezone.utc)
    for again in (pickle.loads(pickle.dumps(n)), copy.copy(n), copy.deepcopy(n)):
        assert again == n and type(again) is hark.Notify
        assert (again.position, again.txn, again.commit_time) == (n.position, n.txn, n.commit_time)
    # One made by hand, as psycopg's, has no place in a queue.
    made = hark.Notify("events", "x", app.pid)
    assert made == n
    assert (made.position, made.txn) == (0, 0)
    assert made.commit_time == datetime.datetime.fromtimestamp(0, datetime.timezone.utc)


def test_a_subscription_resumes_after_its_consumer_restarts(qdir: Path) -> None:
    app = hark.connect(qdir)
    w = hark.connect(qdir)
    w.subscribe("mailer", ["orders.*"])
    assert w.subscription == "mailer"
    app.notify("orders.paid", "1")
    app.notify("users.new", "no")
    app.notify("orders.paid", "2")
    got = list(w.notifies(timeout=0))
    assert [n.payload for n in got] == ["1", "2"]
    assert got[0] == ("orders.paid", "1", app.pid)  # still psycopg's three-field tuple
    assert got[0].position < got[1].position and got[1].txn == got[0].txn + 2
    assert abs(got[0].commit_time - datetime.datetime.now(datetime.timezone.utc)).total_seconds() < 60
    w.ack(got[0])
    w.close()
    app.notify("orders.paid", "3")
    w = hark.connect(qdir)
    w.subscribe("mailer", "orders.*", ack="auto")
    assert payloads(w) == ["2", "3"]
    w.close()
    w = hark.connect(qdir)
    w.subscribe("mailer", "orders.*")
    assert payloads(w) == ["3"]  # auto-acknowledged up to the last one taken, not past it


def test_one_connection_at_a_time_and_clear_errors(qdir: Path) -> None:
    a = hark.connect(qdir)
    a.subscribe("s", ["c"])
    b = hark.connect(qdir)
    with pytest.raises(hark.InUseError) as e:
        b.subscribe("s", ["c"])
    assert e.value.sqlstate == "55006"
    with pytest.raises(hark.InvalidArgumentError):
        b.subscribe("", ["c"])
    with pytest.raises(ValueError):
        b.subscribe("t", ["c"], ack="sometimes")
    with pytest.raises(hark.InvalidArgumentError) as missing:
        b.subscribe("nope", ["c"], create=False)
    assert missing.value.sqlstate == "42704"
    with pytest.raises(hark.TransactionStateError):
        a.listen("x")
    with pytest.raises(hark.InvalidArgumentError):
        a.ack(1 << 40)
    a.detach()
    b.subscribe("s", ["c"], wait=1.0)
    with pytest.raises(hark.InUseError):
        a.unsubscribe("s")
    b.unsubscribe("s")
    with pytest.raises(hark.InvalidArgumentError):
        b.unsubscribe("s")


def test_a_gap_is_raised_once_with_its_counts_then_the_rest(qdir: Path) -> None:
    app = hark.connect(qdir, segment_size=64 << 10, max_queue_size=4 << 20)
    w = hark.connect(qdir)
    w.subscribe("g", ["c"], max_lag_bytes=50_000)
    w.detach()
    total = 1000
    for i in range(total):
        app.notify("c", f"{i} " + "x" * 200)
    w.subscribe("g", ["c"], max_lag_bytes=50_000)
    with pytest.raises(hark.GapError) as gap:
        list(w.notifies(timeout=0))
    assert gap.value.sqlstate == "HK001" and gap.value.skipped is not None
    assert gap.value.first_txn is not None and gap.value.last_txn is not None
    assert gap.value.last_txn >= gap.value.first_txn
    rest = [int(p.split()[0]) for p in payloads(w)]
    assert gap.value.skipped + len(rest) == total
    assert rest == list(range(gap.value.skipped, total))


def test_the_cut_policy_keeps_notifiers_going_past_a_listener_that_does_not_read(qdir: Path) -> None:
    app = hark.connect(qdir, segment_size=64 << 10, max_queue_size=512 << 10, cut_laggards=True)
    idle = hark.connect(qdir)
    idle.listen("c")
    for i in range(3000):
        app.notify("c", f"{i} " + "x" * 500)  # three queue sizes: never QueueFullError
    with pytest.raises(hark.GapError) as gap:
        list(idle.notifies(timeout=0))
    rest = payloads(idle)
    assert gap.value.skipped is not None and gap.value.skipped + len(rest) == 3000


def test_a_subscriber_killed_mid_stream_loses_nothing(qdir: Path) -> None:
    """A consumer process acknowledging each notification is SIGKILLed; the next one resumes
    after the last acknowledged notification."""
    app = hark.connect(qdir)
    setup = hark.connect(qdir)
    setup.subscribe("k", ["work"])
    setup.close()
    for i in range(200):
        app.notify("work", str(i))
    script = textwrap.dedent(
        f"""
        import os, signal, sys, hark
        c = hark.connect({str(qdir)!r})
        c.subscribe("k", ["work"], wait=5)
        for n in c.notifies(timeout=0):
            print(n.payload, flush=True)
            if n.payload == "99":
                os.kill(os.getpid(), signal.SIGKILL)  # before acknowledging 99
            c.ack(n)
        """
    )
    first = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert first.returncode == -9
    second = subprocess.run([sys.executable, "-c", script.replace('== "99"', '== "never"')], capture_output=True, text=True, timeout=60)
    assert second.returncode == 0, second.stderr
    assert first.stdout.split() == [str(i) for i in range(100)]
    assert second.stdout.split() == [str(i) for i in range(99, 200)]  # 99 again, nothing lost


def test_async_subscribe(qdir: Path) -> None:
    async def main() -> list[str]:
        app = await hark.AsyncConnection.connect(qdir)
        w = await hark.AsyncConnection.connect(qdir)
        await w.subscribe("a", ["c"], ack="auto")
        await app.notify("c", "x")
        got = [n.payload async for n in w.notifies(timeout=1, stop_after=1)]
        await w.detach()
        await w.unsubscribe("a")
        await app.close()
        await w.close()
        return got

    assert asyncio.run(main()) == ["x"]


def test_stats_report_each_receiver_with_its_lag(qdir: Path) -> None:
    app = hark.connect(qdir)
    listener = hark.connect(qdir)
    listener.execute("LISTEN plain")
    w = hark.connect(qdir)
    w.subscribe("mailer", ["orders.*", "exact"], max_lag_bytes=1_000_000, max_lag_age=60)
    w.detach()
    for _ in range(3):
        app.notify("orders.paid", "x")
    app.notify("plain", "y")
    st = app.stats()
    assert isinstance(st, hark.QueueStats)
    assert st.head > st.tail and 0.0 <= st.usage <= 1.0 and st.max_payload == 7999
    assert len(st.segment_files) >= 1 and len(st.receivers) == 2
    plain = next(r for r in st.receivers if r.subscription is None)
    assert (plain.backend_pid, plain.alive, plain.channels) == (listener.pid, True, ["plain"])
    assert plain.lag_notifications == 1 and plain.lag_bytes > 0
    assert plain.lag_age is not None and datetime.timedelta(0) <= plain.lag_age < datetime.timedelta(minutes=1)
    sub = next(r for r in st.receivers if r.subscription == "mailer")
    assert (sub.backend_pid, sub.alive, sub.channels) == (0, False, ["orders.*", "exact"])
    assert (sub.lag_notifications, sub.max_lag_bytes, sub.gap_pending) == (3, 1_000_000, 0)
    assert sub.max_lag_age == datetime.timedelta(seconds=60)
    assert st.subscriptions == [sub]
    assert [(s.subscription, s.lag_notifications) for s in app.subscriptions()] == [("mailer", 3)]
    app.close()
    with pytest.raises(hark.ClosedError):
        app.stats()


def test_stats_from_an_async_connection(qdir: Path) -> None:
    async def main() -> list[str | None]:
        conn = await hark.AsyncConnection.connect(qdir)
        await conn.subscribe("s", ["c"])
        names = [r.subscription for r in conn.stats().receivers]
        await conn.close()
        return names

    assert asyncio.run(main()) == ["s"]
