"""Delivery between processes: Python to Python, the Rust peer to Python, and Python to the
Rust peer (core/examples/peer.rs)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import hark
from conftest import python_child, read_line

LISTENER = r"""
import sys, hark
conn = hark.connect(sys.argv[1])
conn.listen(sys.argv[2])
print("READY", conn.pid, flush=True)
count = int(sys.argv[3])
for n in conn.notifies(stop_after=count, timeout=30):
    print(n.channel, n.payload, n.pid, sep="\t", flush=True)
"""

NOTIFIER = r"""
import sys, hark
with hark.connect(sys.argv[1]) as conn:
    with conn.transaction():
        conn.notify(sys.argv[2], "first")
        conn.notify(sys.argv[2], "first")   # folded within the transaction
        conn.notify(sys.argv[2], "second")
    with conn.transaction(force_rollback=True):
        conn.notify(sys.argv[2], "rolled back")
    conn.notify(sys.argv[2], "last")
    print("SENT", conn.pid, flush=True)
"""


def test_python_process_to_python_process(qdir: Path) -> None:
    listener = python_child(LISTENER, str(qdir), "orders", "3")
    try:
        ready = read_line(listener)
        assert ready.startswith("READY ")
        notifier = python_child(NOTIFIER, str(qdir), "orders")
        out, err = notifier.communicate(timeout=30)
        assert notifier.returncode == 0, err
        sender_pid = int(out.split()[1])
        lines = [read_line(listener) for _ in range(3)]
        assert lines == [f"orders\t{p}\t{sender_pid}" for p in ("first", "second", "last")]
        assert listener.wait(10) == 0
    finally:
        listener.kill()
        listener.wait()


def test_rust_notifier_to_python_listener(qdir: Path, peer: Path) -> None:
    count = 2000
    with hark.connect(qdir) as conn:
        conn.listen("from-rust")
        proc = subprocess.run([str(peer), "notify", str(qdir), "from-rust", "r", str(count), "10"],
                              capture_output=True, text=True, timeout=60, check=True)
        word, sent, pid = proc.stdout.split()
        assert (word, int(sent)) == ("SENT", count)
        got = list(conn.notifies(stop_after=count, timeout=30))
    assert [n.payload for n in got] == [f"r-{i}" for i in range(count)]
    assert {n.pid for n in got} == {int(pid)}
    assert {n.channel for n in got} == {"from-rust"}


def test_python_notifier_to_rust_listener(qdir: Path, peer: Path) -> None:
    listener = subprocess.Popen([str(peer), "listen", str(qdir), "from-python", "4", "20"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        word, _ = read_line(listener).split()
        assert word == "READY"
        with hark.connect(qdir) as conn:
            conn.notify("from-python", "a")
            with conn.transaction():
                conn.notify("from-python", "b")
                conn.notify("other-channel", "not listened to")
                conn.notify("from-python", "c")
            conn.execute("NOTIFY \"from-python\", 'via SQL'")
            pid = conn.pid
        lines = [read_line(listener) for _ in range(4)]
        assert lines == [f"from-python\t{p}\t{pid}" for p in ("a", "b", "c", "via SQL")]
        assert listener.wait(10) == 0
    finally:
        listener.kill()
        listener.wait()


def test_python_listener_throughput_from_rust_notifier(qdir: Path, peer: Path) -> None:
    """A Python listener keeps up with the Rust notifier sending one notification per commit
    (run with -s to see the rate)."""
    count = 100_000
    with hark.connect(qdir) as conn:
        conn.listen("bench")
        notifier = subprocess.Popen([str(peer), "notify", str(qdir), "bench", "b", str(count), "1"],
                                    stdout=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        received = 0
        last = -1
        for n in conn.notifies(stop_after=count, timeout=60):
            i = int(n.payload[2:])
            assert i == last + 1
            last = i
            received += 1
        elapsed = time.monotonic() - t0
        assert notifier.wait(30) == 0
    assert received == count
    rate = count / elapsed
    print(f"\nlive: a Python listener received {count} notifications (one per commit) from the Rust peer "
          f"in {elapsed:.2f}s, {rate:,.0f}/s")
    assert rate > 1000  # a loose floor: the measured figure is far above it
