"""JSON payloads, with psycopg 3's names (``psycopg.types.json``).

A notification's payload is text. To send a Python value as JSON, wrap it, as psycopg wraps a
query parameter::

    from hark.types.json import Json     # or hark.Json

    conn.notify("events", Json({"id": 42, "action": "paid"}))

Any other non-string payload is a ``TypeError``: hark never sends ``str(value)`` for you. On the
receiving side, ``notify.json()`` parses the payload with the same `loads` function.
"""

from __future__ import annotations

import json
from typing import Any, Callable

__all__ = ["Json", "Jsonb", "JsonDumpsFunction", "JsonLoadsFunction", "set_json_dumps", "set_json_loads"]

JsonDumpsFunction = Callable[[Any], "str | bytes"]
JsonLoadsFunction = Callable[["str | bytes"], Any]

_dumps: JsonDumpsFunction = json.dumps
_loads: JsonLoadsFunction = json.loads


def set_json_dumps(dumps: JsonDumpsFunction) -> None:
    """Set the function that turns `Json` and `Jsonb` objects into text (default
    ``json.dumps``, as psycopg). It may return ``str`` or UTF-8 ``bytes``. Unlike psycopg's, it is
    process-wide: hark has no per-connection adaptation context."""
    global _dumps
    _dumps = dumps


def set_json_loads(loads: JsonLoadsFunction) -> None:
    """Set the function that parses JSON text: ``Notify.json()`` and the ``json`` columns a
    cursor fetches (default ``json.loads``). Process-wide, as `set_json_dumps`."""
    global _loads
    _loads = loads


def loads(text: str) -> Any:
    """Parse JSON text with the function set by `set_json_loads`."""
    return _loads(text)


class _JsonWrapper:
    __slots__ = ("obj", "dumps")

    def __init__(self, obj: Any, dumps: JsonDumpsFunction | None = None) -> None:
        self.obj = obj
        self.dumps = dumps

    def __repr__(self) -> str:
        text = repr(self.obj)
        if len(text) > 40:
            text = text[:35] + " ... (" + str(len(text)) + " chars)"
        return f"{type(self).__name__}({text})"

    def text(self) -> str:
        """The JSON text this object sends: its own `dumps`, else the one set by
        `set_json_dumps`."""
        out = (self.dumps or _dumps)(self.obj)
        return out.decode() if isinstance(out, bytes) else out


class Json(_JsonWrapper):
    """A Python value to send as JSON: ``conn.notify(channel, Json(value))``."""

    __slots__ = ()


class Jsonb(_JsonWrapper):
    """The same as `Json` for a payload (text either way); psycopg's name for ``jsonb``
    parameters, accepted so that code using it runs unchanged."""

    __slots__ = ()


def payload_text(payload: object) -> str:
    """The text of a ``notify()`` payload: a ``str`` as it is, a `Json` or `Jsonb` as its JSON
    text, anything else refused."""
    if isinstance(payload, str):
        return payload
    if isinstance(payload, _JsonWrapper):
        return payload.text()
    raise TypeError(
        f"a notification payload must be str, not {type(payload).__name__}; "
        "to send a value as JSON, wrap it: notify(channel, hark.Json(value))"
    )
