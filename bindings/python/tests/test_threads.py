"""Threads: waits release the GIL, and one connection can be shared between threads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import hark
from conftest import park_a_writer_inside_its_append, python_child, read_line


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


# The children below run in their own process: a freeze there fails the test (no output within
# the timeout) instead of hanging the suite.

ERRORS_AND_SUCCESSES = r"""
import sys, threading, hark
# Switch threads as often as possible, so that a switch lands at every point of a call.
sys.setswitchinterval(1e-6)
conn = hark.connect(sys.argv[1])
rounds = int(sys.argv[2])
failures = []

def failing() -> None:
    for i in range(rounds):
        for bad in (lambda: conn.execute("SELEC 1"), lambda: conn.notify("", "empty channel"),
                    lambda: conn._native.release("no_such_savepoint")):
            try:
                bad()
            except hark.Error:
                pass
            else:
                failures.append(f"no error in round {i}")

def succeeding() -> None:
    for i in range(rounds):
        if list(conn.execute("SELECT 1")) != [("1",)]:
            failures.append(f"wrong result in round {i}")
        conn.notify("ch", str(i))
        conn.transaction_status, conn.closed, conn._native.pending

threads = [threading.Thread(target=f) for f in (failing, succeeding, failing, succeeding)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("DONE", len(failures), failures[:3], flush=True)
"""


def test_one_connection_raising_in_one_thread_and_succeeding_in_another_does_not_freeze(qdir: Path) -> None:
    child = python_child(ERRORS_AND_SUCCESSES, str(qdir), "3000")
    try:
        assert read_line(child, timeout=120) == "DONE 0 []"
        assert child.wait(10) == 0
    finally:
        child.kill()
        child.wait()


NOTIFY_WHILE_ANOTHER_PROCESS_HOLDS_THE_WRITER_LOCK = r"""
import sys, threading, time, hark
conn = hark.connect(sys.argv[1])
conn.listen("ch")
# This commit waits for the writer lock, which the parked peer holds until it is killed.
sender = threading.Thread(target=lambda: conn.notify("ch", "after the writer died"))
sender.start()
time.sleep(0.5)
# Pure-Python work in this thread progresses while the other one waits.
spins, t0 = 0, time.monotonic()
while time.monotonic() - t0 < 0.5:
    spins += 1
# A wait for notifications on the same connection waits for the sender's call, within its timeout.
got = list(conn.notifies(timeout=0.5))
print("RAN", spins, len(got), sender.is_alive(), flush=True)
sender.join(60)
print("SENT", sender.is_alive(), flush=True)
print(*(n.payload for n in conn.notifies(timeout=10, stop_after=1)), sep="|", flush=True)
"""


def test_a_commit_waiting_for_the_writer_lock_lets_other_threads_run(qdir: Path, peer: Path, tmp_path: Path) -> None:
    parked = park_a_writer_inside_its_append(peer, qdir, tmp_path / "parked")
    try:
        child = python_child(NOTIFY_WHILE_ANOTHER_PROCESS_HOLDS_THE_WRITER_LOCK, str(qdir))
        try:
            ran = read_line(child, timeout=30).split()
            assert ran[0] == "RAN" and int(ran[1]) > 10_000 and ran[2] == "0"
            # The sender was still waiting for the lock while this thread ran and waited.
            assert ran[3] == "True"
            # The writer dies holding the lock; the lock is recovered and the commit goes through.
            parked.kill()
            assert read_line(child, timeout=30) == "SENT False"
            assert read_line(child, timeout=30) == "after the writer died"
            assert child.wait(10) == 0
        finally:
            child.kill()
            child.wait()
    finally:
        parked.kill()
        parked.wait()

