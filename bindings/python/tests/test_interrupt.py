"""Ctrl-C ends a blocking wait with KeyboardInterrupt."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from conftest import park_a_writer_inside_its_append, python_child, read_line

# A shell starts background jobs with SIGINT ignored, and Python then leaves it ignored; install
# Python's own Ctrl-C handler so the test means the same wherever the suite is started from.
RESTORE_CTRL_C = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"

WAITER = RESTORE_CTRL_C + r"""
import sys, hark
conn = hark.connect(sys.argv[1])
conn.listen("never")
print("WAITING", flush=True)
try:
    for n in conn.notifies():
        print("unexpected", n, flush=True)
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
    # The connection is still usable after the interrupted wait.
    conn.notify("never", "after")
    print(next(conn.notifies(timeout=5)).payload, flush=True)
    sys.exit(0)
sys.exit(3)
"""


def test_sigint_interrupts_a_wait_without_timeout(qdir: Path) -> None:
    assert_ctrl_c_ends_the_wait(WAITER, qdir, then=["after"])


THREADED_WAITER = RESTORE_CTRL_C + r"""
import sys, threading, hark
conn = hark.connect(sys.argv[1])
conn.listen("never")
# Another thread is blocked in a wait too; the signal must still reach the main thread's wait.
t = threading.Thread(target=lambda: list(conn.notifies(timeout=3)), daemon=True)
t.start()
print("WAITING", flush=True)
try:
    list(conn.notifies(timeout=60))
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
    sys.exit(0)
sys.exit(3)
"""


def test_sigint_reaches_the_main_thread_while_others_wait(qdir: Path) -> None:
    assert_ctrl_c_ends_the_wait(THREADED_WAITER, qdir)


ASYNC_WAITER = RESTORE_CTRL_C + r"""
import asyncio, sys, hark

async def main() -> None:
    async with await hark.connect_async(sys.argv[1]) as conn:
        await conn.listen("never")
        print("WAITING", flush=True)
        async for n in conn.notifies():
            print("unexpected", n, flush=True)

try:
    asyncio.run(main())
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
    sys.exit(0)
sys.exit(3)
"""


def test_sigint_interrupts_an_asyncio_wait(qdir: Path) -> None:
    assert_ctrl_c_ends_the_wait(ASYNC_WAITER, qdir)


WAITER_BEHIND_A_STUCK_COMMIT = RESTORE_CTRL_C + r"""
import sys, threading, time, hark
conn = hark.connect(sys.argv[1])
conn.listen("ch")
# This commit holds the connection while it waits for the writer lock of another process.
sender = threading.Thread(target=lambda: conn.notify("ch", "after the writer died"))
sender.start()
time.sleep(0.3)
print("WAITING", flush=True)
try:
    list(conn.notifies(timeout=60))  # waits for the connection, which the sender holds
except KeyboardInterrupt:
    print("INTERRUPTED", sender.is_alive(), flush=True)
    sender.join(60)
    print(next(conn.notifies(timeout=10)).payload, flush=True)
    sys.exit(0)
sys.exit(3)
"""


def test_sigint_interrupts_a_wait_for_a_connection_another_thread_holds(qdir: Path, peer: Path, tmp_path: Path) -> None:
    parked = park_a_writer_inside_its_append(peer, qdir, tmp_path / "parked")
    try:
        child = python_child(WAITER_BEHIND_A_STUCK_COMMIT, str(qdir))
        try:
            assert read_line(child) == "WAITING"
            time.sleep(0.3)
            child.send_signal(signal.SIGINT)
            assert read_line(child, timeout=5) == "INTERRUPTED True"
            # Once the writer dies, the commit goes through and the connection works on.
            parked.kill()
            assert read_line(child, timeout=30) == "after the writer died"
            assert child.wait(10) == 0
        finally:
            child.kill()
            child.wait()
    finally:
        parked.kill()
        parked.wait()


def assert_ctrl_c_ends_the_wait(code: str, qdir: Path, then: list[str] | None = None) -> None:
    """Run a child that prints WAITING before it blocks; SIGINT must make it print INTERRUPTED,
    then the lines `then`, and exit 0."""
    child = python_child(code, str(qdir))
    try:
        assert read_line(child) == "WAITING"
        time.sleep(0.3)  # let it block in the wait
        child.send_signal(signal.SIGINT)
        # Without the 50 ms slices the wait would never return; 5 s leaves room for a busy machine.
        assert read_line(child, timeout=5) == "INTERRUPTED"
        assert [read_line(child) for _ in then or []] == (then or [])
        assert child.wait(10) == 0
    finally:
        child.kill()
        child.wait()
