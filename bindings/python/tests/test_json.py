"""JSON payloads: hark.Json (psycopg's wrapper) to send, Notify.json() to parse."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hark
from hark.types import json as hark_json


@pytest.fixture
def restore_json_functions() -> Iterator[None]:
    yield
    hark_json.set_json_dumps(json.dumps)
    hark_json.set_json_loads(json.loads)


def test_json_payload_is_sent_as_json_dumps(conn: hark.Connection, other: hark.Connection) -> None:
    other.listen("ch")
    value = {"id": 42, "tags": ["a", "é"], "ok": True, "none": None}
    conn.notify("ch", hark.Json(value))
    conn.notify("ch", hark.types.json.Jsonb([1, 2]))
    got = list(other.notifies(timeout=0))
    # psycopg's Json dumps with json.dumps and its defaults.
    assert [n.payload for n in got] == [json.dumps(value), "[1, 2]"]
    assert got[0].json() == value and got[1].json() == [1, 2]


@pytest.mark.parametrize("payload", [{"a": 1}, [1], 3, 1.5, None, b"bytes", True])
def test_other_payload_types_are_refused(conn: hark.Connection, other: hark.Connection, payload: Any) -> None:
    other.listen("ch")
    with pytest.raises(TypeError, match=r"payload must be str, not \w+; to send a value as JSON, wrap it: notify\(channel, hark.Json\(value\)\)"):
        conn.notify("ch", payload)
    assert list(other.notifies(timeout=0)) == []


def test_json_functions_can_be_replaced(conn: hark.Connection, other: hark.Connection, restore_json_functions: None) -> None:
    other.listen("ch")
    conn.notify("ch", hark.Json({"a": 1}, dumps=lambda o: json.dumps(o, separators=(",", ":"))))
    hark_json.set_json_dumps(lambda o: json.dumps(o, sort_keys=True).encode())  # bytes are UTF-8 text
    conn.notify("ch", hark.Json({"b": 1, "a": "é"}))
    hark_json.set_json_loads(lambda s: ("parsed", json.loads(s)))
    got = list(other.notifies(timeout=0))
    assert [n.payload for n in got] == ['{"a":1}', '{"a": "\\u00e9", "b": 1}']
    assert got[0].json() == ("parsed", {"a": 1})
    # The cursor loads json columns with it too, as psycopg's set_json_loads does.
    assert conn.cursor().execute("SELECT '[1]'::json").fetchone() == (("parsed", [1]),)


def test_a_payload_that_is_not_json(conn: hark.Connection, other: hark.Connection) -> None:
    other.listen("ch")
    conn.notify("ch", "not json")
    (n,) = other.notifies(timeout=0)
    with pytest.raises(ValueError):
        n.json()


def test_async_json_payload(qdir: Path, other: hark.Connection) -> None:
    other.listen("ch")

    async def main() -> None:
        async with await hark.connect_async(qdir) as conn:
            await conn.notify("ch", hark.Json({"x": 1}))
            with pytest.raises(TypeError, match="hark.Json"):
                await conn.notify("ch", {"x": 1})  # type: ignore[arg-type]

    asyncio.run(main())
    assert [n.json() for n in other.notifies(timeout=0)] == [{"x": 1}]
