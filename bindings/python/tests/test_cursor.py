"""psycopg's cursor: conn.cursor() and the Result of conn.execute(), read with fetch*()."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import hark


def test_cursor_fetches_values_of_psycopg_s_types(conn: hark.Connection) -> None:
    cur = conn.cursor()
    assert cur.execute(
        "SELECT 1 AS i, 9999999999 AS big, 1.5::float8 AS f, 2.25::real AS r, 1.50 AS n, true AS b,"
        " 'x' AS t, NULL AS z, '{\"a\": [1, null]}'::json AS j, pg_notify('ch', 'p') AS v"
    ) is cur
    assert cur.fetchone() == (1, 9999999999, 1.5, 2.25, Decimal("1.50"), True, "x", None, {"a": [1, None]}, "")
    assert cur.fetchone() is None
    assert [(c.name, c.type_code, c.internal_size) for c in cur.description or []] == [
        ("i", 23, 4),
        ("big", 20, 8),
        ("f", 701, 8),
        ("r", 700, 4),
        ("n", 1700, None),
        ("b", 16, 1),
        ("t", 25, None),
        ("z", 25, None),
        ("j", 114, None),
        ("v", 2278, 4),
    ]
    assert cur.rowcount == 1 and cur.statusmessage == "SELECT 1"
    # Each Column is DB-API's seven-item sequence.
    assert len(cur.description[0]) == 7 and cur.description[0][:2] == ("i", 23)  # type: ignore[index]


def test_fetchmany_fetchall_and_iteration(conn: hark.Connection) -> None:
    cur = conn.cursor()
    cur.execute("SELECT pg_listening_channels()")
    assert cur.fetchall() == [] and cur.rowcount == 0
    for ch in "abcde":
        conn.listen(ch)
    cur.execute("SELECT pg_listening_channels() AS ch")
    assert cur.rowcount == 5
    assert cur.fetchmany() == [("a",)]  # arraysize, 1
    cur.arraysize = 2
    assert cur.fetchmany() == [("b",), ("c",)]
    assert next(iter(cur)) == ("d",)
    assert cur.fetchmany(5) == [("e",)]
    assert cur.fetchall() == [] and list(cur) == []
    assert list(cur.execute("SELECT pg_listening_channels()")) == [(ch,) for ch in "abcde"]


def test_commands_have_no_rows(conn: hark.Connection) -> None:
    cur = conn.cursor()
    assert cur.description is None and cur.rowcount == -1 and cur.statusmessage is None
    with pytest.raises(hark.ProgrammingError, match="no result available"):
        cur.fetchone()
    cur.execute("NOTIFY ch, 'x'")
    assert cur.description is None and cur.rowcount == -1 and cur.statusmessage == "NOTIFY"
    with pytest.raises(hark.ProgrammingError, match="the last operation didn't produce a result"):
        cur.fetchall()


def test_a_failed_statement_leaves_no_rows(conn: hark.Connection) -> None:
    cur = conn.cursor()
    cur.execute("SELECT 1")
    with pytest.raises(hark.SqlSyntaxError):
        cur.execute("SELEC 1")
    assert cur.description is None and cur.rowcount == -1
    with pytest.raises(hark.ProgrammingError, match="no result available"):
        cur.fetchone()


def test_result_of_connection_execute_reads_as_a_cursor(conn: hark.Connection) -> None:
    r = conn.execute("SELECT 1 AS one, 'x' AS t")
    assert r == [("1", "x")] and r.types == ["int4", "text"]  # the list keeps the text
    assert r.fetchone() == (1, "x") and r.fetchone() is None  # fetch*() gives psycopg's values
    assert r.description is not None and [c.type_code for c in r.description] == [23, 25]


def test_closed_cursor(conn: hark.Connection) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
    assert cur.closed and not conn.closed
    with pytest.raises(hark.InterfaceError, match="the cursor is closed"):
        cur.fetchone()
    with pytest.raises(hark.InterfaceError, match="the cursor is closed"):
        cur.execute("SELECT 1")


def test_execute_passes_params_on_to_the_connection(conn: hark.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    real = hark.Connection.execute

    def execute(self: hark.Connection, *args: Any) -> hark.Result:
        calls.append(args)
        return real(self, "SELECT 1")

    monkeypatch.setattr(hark.Connection, "execute", execute)
    cur = conn.cursor()
    cur.execute("SELECT %s", ["x"])
    cur.execute("SELECT 1")
    assert calls == [("SELECT %s", ["x"]), ("SELECT 1",)]


def test_async_cursor(qdir: Path) -> None:
    async def main() -> None:
        async with await hark.connect_async(qdir) as conn:
            async with conn.cursor() as cur:
                await cur.execute("SELECT 7 AS n, false AS b")
                assert await cur.fetchone() == (7, False)
                assert cur.description is not None and cur.description[0].type_code == 23
                await cur.execute("SELECT 1")
                assert [row async for row in cur] == [(1,)]
                assert await cur.fetchmany(3) == [] and await cur.fetchall() == []
            assert cur.closed

    asyncio.run(main())
