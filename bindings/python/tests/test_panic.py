"""A panic inside the native module (a bug) closes the connection instead of leaving it in a state
nobody vouches for, and freezes nothing. Uses a module built with the `fault-hooks` feature."""

from __future__ import annotations

from pathlib import Path

from conftest import python_child, read_line

PANIC = r"""
import sys, threading, hark
blocking = sys.argv[2] == "blocking"
assert hark._hark.__file__.startswith(sys.argv[3]), hark._hark.__file__
conn = hark.connect(sys.argv[1])
conn.listen("ch")
other = hark.connect(sys.argv[1])
other.listen("ch")
try:
    conn._native._panic_inside(blocking)
except hark.Error as e:
    print(type(e).__name__, e.code, e.sqlstate, "connection was closed" in str(e), flush=True)
# Another thread finds the connection closed, rather than used as if nothing had happened.
result = []
def use():
    try:
        conn.notify("ch", "from a broken connection")
    except hark.ClosedError as e:
        result.append(f"ClosedError {e.sqlstate}")
t = threading.Thread(target=use)
t.start()
t.join(30)
print(*result, conn.closed, conn.transaction_status.name, flush=True)
conn.close()  # closing again is harmless
# The rest of the process goes on: another connection sends and receives.
other.notify("ch", "still working")
print(*(n.payload for n in other.notifies(timeout=10, stop_after=1)), flush=True)
"""


def test_a_panic_while_holding_the_connection_closes_it(qdir: Path, hark_with_fault_hooks: Path) -> None:
    for mode in ["quick", "blocking"]:
        child = python_child(PANIC, str(qdir), mode, str(hark_with_fault_hooks), pythonpath=hark_with_fault_hooks)
        try:
            assert read_line(child, timeout=30) == "InternalError HARK_ERR_PANIC XX000 True"
            assert read_line(child, timeout=30) == "ClosedError 08003 True IDLE"
            assert read_line(child, timeout=30) == "still working"
            assert child.wait(10) == 0
        finally:
            child.kill()
            child.wait()
