"""execute(query, params): psycopg's placeholders and rules; the values are bound by the core as
values, never pasted into the SQL, whatever they hold."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from pathlib import Path

import pytest

import hark

HOSTILE = [
    "'", "''", "it's", "\\", "\\'", "E'x'", "e'\\''", "$$", "$$; NOTIFY evil, 'x'; $$", "$tag$", "$1",
    "%s", "%%", "%(x)s", "--", "-- NOTIFY evil", "/*", "*/", "/* /*", ";", "'); NOTIFY evil, 'pwned'; --",
    '"; LISTEN evil; "', "\\x00", "é ✓ 😀", "",
]


def drain(conn: hark.Connection) -> list[tuple[str, str]]:
    return [(n.channel, n.payload) for n in conn.notifies(timeout=0)]


def test_hostile_values_arrive_exactly_and_nothing_else(conn: hark.Connection) -> None:
    conn.execute("LISTEN events; LISTEN evil")
    for v in HOSTILE:
        rows = conn.execute("SELECT pg_notify(%s, %s), %s AS v", ["events", v, v])
        assert list(rows) == [("", v)], v
        rows = conn.execute("SELECT %(v)s || %(bang)s AS w, %(v)s AS v", {"v": v, "bang": "!"})
        assert list(rows) == [(v + "!", v)], v
    assert drain(conn) == [("events", v) for v in HOSTILE]


def test_placeholders_only_outside_quotes_and_comments(conn: hark.Connection) -> None:
    rows = conn.execute("SELECT '%s 100%%' AS a, $$%s$$ AS b, %s AS c /* %s */ -- %s", ["X"])
    assert list(rows) == [("%s 100%", "%s", "X")]
    # Without params the text is not touched, as psycopg leaves it.
    assert list(conn.execute("SELECT '100%%'")) == [("100%%",)]
    # With an empty sequence: converted, then run as a simple query (several statements allowed).
    assert list(conn.execute("SELECT '100%%'; SELECT 'b'", [])) == [("b",)]


def test_python_values_keep_their_types(conn: hark.Connection) -> None:
    r = conn.execute("SELECT %s, %s, %s, %s, %s, %s::int", [None, True, 7, 0.5, 2**70, "42"])
    assert list(r) == [(None, "t", "7", "0.5", str(2**70), "42")]
    with pytest.raises(hark.SqlSyntaxError, match=r"function pg_notify\(unknown, integer\) does not exist"):
        conn.execute("SELECT pg_notify('a', %s)", [7])
    for bad in ({"a": 1}, [1, 2], b"bytes", object()):
        with pytest.raises(TypeError, match=f"cannot adapt type '{type(bad).__qualname__}'"):
            conn.execute("SELECT %s", [bad])


def test_psycopg_errors_for_mismatches(conn: hark.Connection) -> None:
    with pytest.raises(hark.SqlSyntaxError, match="^the query has 2 placeholders but 1 parameters were passed$"):
        conn.execute("SELECT %s, %s", ["a"])
    with pytest.raises(hark.SqlSyntaxError, match="^the query has 0 placeholders but 1 parameters were passed$"):
        conn.execute("SELECT 1", ("a",))
    with pytest.raises(hark.SqlSyntaxError, match="^query parameter missing: a, c$"):
        conn.execute("SELECT %(c)s, %(a)s, %(b)s", {"b": 1})
    with pytest.raises(TypeError, match=r"^named placeholders require a mapping of parameters$"):
        conn.execute("SELECT %(a)s", ["x"])
    with pytest.raises(TypeError, match=r"^positional placeholders \(%s\) require a sequence of parameters$"):
        conn.execute("SELECT %s", {"a": "x"})
    with pytest.raises(TypeError, match="^query parameters should be a sequence or a mapping, got str$"):
        conn.execute("SELECT %s", "x")
    with pytest.raises(hark.SqlSyntaxError, match="^only '%s', '%b', '%t' are allowed as placeholders, got '%d'$"):
        conn.execute("SELECT %d", [1])
    with pytest.raises(hark.SqlSyntaxError, match="^incomplete placeholder: '%'; if you want to use '%' as an operator"):
        conn.execute("SELECT 5 % 2, %s", [1])
    with pytest.raises(hark.SqlSyntaxError, match="^positional and named placeholders cannot be mixed$"):
        conn.execute("SELECT %s, %(a)s", [1, 2])
    # A Mapping that is not a dict, and a name used twice (one $n).
    r = conn.execute("SELECT %(a)s, %(b)s, %(a)s", OrderedDict(b="B", a="A"))
    assert list(r) == [("A", "B", "A")]


def test_postgres_errors_through_the_core(conn: hark.Connection) -> None:
    with pytest.raises(hark.SqlSyntaxError) as e:
        conn.execute("SELECT %s; SELECT 2", [1])
    assert (e.value.sqlstate, e.value.message) == ("42601", "cannot insert multiple commands into a prepared statement")
    with pytest.raises(hark.InvalidArgumentError) as e2:
        conn.execute("SELECT %s", ["nul\0byte"])
    assert e2.value.sqlstate == "22021"
    with pytest.raises(hark.SqlSyntaxError) as e:
        conn.execute("SELECT $1")
    assert (e.value.sqlstate, e.value.message, e.value.position) == ("42P02", "there is no parameter $1", 8)
    with pytest.raises(hark.InvalidArgumentError, match="invalid input syntax for type integer"):
        conn.execute("SELECT %s::int", ["4x"])


def test_async_execute_takes_params(qdir: Path) -> None:
    async def main() -> list[tuple[str, str]]:
        async with await hark.connect_async(qdir) as c:
            await c.listen("events")
            for v in HOSTILE:
                await c.execute("SELECT pg_notify(%(ch)s, %(v)s)", {"ch": "events", "v": v})
            with pytest.raises(hark.SqlSyntaxError, match="the query has 1 placeholders but 2"):
                await c.execute("SELECT %s", [1, 2])
            got = []
            async for n in c.notifies(timeout=5, stop_after=len(HOSTILE)):
                got.append((n.channel, n.payload))
            return got

    assert asyncio.run(asyncio.wait_for(main(), 30)) == [("events", v) for v in HOSTILE]
