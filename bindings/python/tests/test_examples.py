"""The examples in examples/python are tests: each runs its own demo and checks it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

EXAMPLES = REPO / "examples" / "python"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("orders.py", "demo: 4 events, in commit order, none from the rolled-back unit of work"),
        ("async_listener.py", "demo: 4 events; the event loop ran"),
    ],
)
def test_example_demo_passes(script: str, expected: str) -> None:
    proc = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert expected in proc.stdout


def test_orders_listener_lines_parse_back() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import orders
    finally:
        sys.path.remove(str(EXAMPLES))
    channel, event, pid = orders.parse_event_line(
        'Asynchronous notification "events" with payload "{"table":"orders","action":"INSERT",'
        '"data":{"id":1,"email":"test@example.com","total":10000}}" received from server process with PID 4791.'
    )
    assert (channel, pid) == ("events", 4791)
    assert event == orders.EXPECTED[0]
