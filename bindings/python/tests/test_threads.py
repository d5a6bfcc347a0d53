"""Threads: waits release the GIL, and one connection can be shared between threads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import hark


def test_a_blocked_wait_does_not_hold_the_gil(conn: hark.Connection) -> None:
    conn.listen("ch")
    done = threading.Event()

    def wait() -> None:
        list(conn.notifies(timeout=1.0))
        done.set()

    t = threading.Thread(target=wait)
    t.start()
    # Pure-Python work in this thread progresses while the other one waits.
    spins = 0
    t0 = time.monotonic()
    while not done.is_set():
        spins += 1
    t.join()
    elapsed = time.monotonic() - t0
    assert elapsed >= 0.9
    assert spins > 100_000


def test_notify_from_one_thread_wakes_a_wait_in_another_on_the_same_connection(conn: hark.Connection) -> None:
    conn.listen("ch")
    got: list[hark.Notify] = []

    def wait() -> None:
        got.extend(conn.notifies(stop_after=1, timeout=10))

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.2)
    conn.notify("ch", "from the main thread")
    t.join(10)
    assert not t.is_alive()
    assert [n.payload for n in got] == ["from the main thread"]


def test_many_threads_each_with_a_connection(qdir: Path) -> None:
    senders, per_sender = 4, 200
    with hark.connect(qdir) as listener:
        listener.listen("ch")
        ready = threading.Barrier(senders)

        def send(k: int) -> None:
            with hark.connect(qdir) as c:
                ready.wait()
                for i in range(per_sender):
                    c.notify("ch", f"{k}:{i}")

        threads = [threading.Thread(target=send, args=(k,)) for k in range(senders)]
        for t in threads:
            t.start()
        got = [n.payload for n in listener.notifies(stop_after=senders * per_sender, timeout=20)]
        for t in threads:
            t.join()
    assert len(got) == senders * per_sender
    for k in range(senders):
        # One global commit order; each sender's own commits keep their order in it.
        assert [p for p in got if p.startswith(f"{k}:")] == [f"{k}:{i}" for i in range(per_sender)]


def test_threads_sharing_one_connection_split_the_notifications(qdir: Path) -> None:
    with hark.connect(qdir) as listener, hark.connect(qdir) as app:
        listener.listen("ch")
        results: list[list[str]] = [[], [], []]

        def consume(k: int) -> None:
            results[k].extend(n.payload for n in listener.notifies(timeout=1.5))

        threads = [threading.Thread(target=consume, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for i in range(300):
            app.notify("ch", str(i))
        for t in threads:
            t.join()
    everything = [p for r in results for p in r]
    assert sorted(everything, key=int) == [str(i) for i in range(300)]  # each exactly once
