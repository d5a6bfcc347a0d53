"""The examples in examples/python: their helpers (their demos run in sqlite/tests)."""

from __future__ import annotations

import sys

from conftest import REPO

EXAMPLES = REPO / "examples" / "python"


# orders.py and async_listener.py (which runs orders.py's application) need a Python whose
# sqlite3 module loads extensions: sqlite/tests runs their demos with one.


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
