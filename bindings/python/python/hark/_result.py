"""`hark.Result`, the rows of a statement, and the psycopg cursor's way of reading them.

The native session gives each value as PostgreSQL's text output and each column's type name
(``typname``). A `Result` keeps the text; its ``fetch*()`` methods, and `hark.Cursor`, give the
values psycopg 3 gives by default for those types:

================================  ==========================================
``int2``, ``int4``, ``int8``,     ``int``
``oid``
``float4``, ``float8``            ``float``
``numeric``                       ``decimal.Decimal``
``bool``                          ``bool``
``json``, ``jsonb``               parsed (``set_json_loads``; ``json.loads``)
anything else (``text``,          ``str`` as it is
``void``: ``""``, …)
SQL NULL                          ``None``
================================  ==========================================
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Callable, NamedTuple

from .errors import ProgrammingError
from .types import json as _json

Row = tuple[Any, ...]

# typname -> (OID, typlen) from PostgreSQL's pg_type catalogue (typlen: bytes, -1 for varlena,
# -2 for a C string); the same table as the Node binding's lib/types.js.
_TYPES: dict[str, tuple[int, int]] = {
    "bool": (16, 1),
    "name": (19, 64),
    "int8": (20, 8),
    "int2": (21, 2),
    "int4": (23, 4),
    "text": (25, -1),
    "oid": (26, 4),
    "json": (114, -1),
    "float4": (700, 4),
    "float8": (701, 8),
    "unknown": (705, -2),
    "varchar": (1043, -1),
    "numeric": (1700, -1),
    "void": (2278, 4),
    "jsonb": (3802, -1),
}

_LOADERS: dict[str, Callable[[str], Any]] = {
    "bool": lambda v: v == "t",
    "int2": int,
    "int4": int,
    "int8": int,
    "oid": int,
    "float4": float,
    "float8": float,
    "numeric": Decimal,
    "json": _json.loads,
    "jsonb": _json.loads,
}


class Column(NamedTuple):
    """One item of ``cursor.description``: DB-API's seven fields, as psycopg fills them."""

    name: str
    type_code: int
    """The type's OID (``23`` for ``int4``, ``25`` for ``text``); 0 for a type hark does not
    know the OID of."""
    display_size: int | None = None
    internal_size: int | None = None
    """The type's size in bytes, ``None`` for a variable-length type."""
    precision: int | None = None
    scale: int | None = None
    null_ok: bool | None = None


def _column(name: str, typname: str) -> Column:
    oid, size = _TYPES.get(typname, (0, -1))
    return Column(name, oid, internal_size=size if size > 0 else None)


class Result(list[tuple[str | None, ...]]):
    """The rows of the last statement run by ``execute()`` (empty for a command), as tuples of
    text values (``None`` is SQL NULL), with the statement's command ``tag`` (``"SELECT 1"``,
    ``"NOTIFY"``), the ``columns`` names of a ``SELECT`` and their PostgreSQL ``types``
    (``"int4"``, ``"text"``).

    It is also read as psycopg's cursor reads what ``conn.execute()`` returned:
    ``fetchone()``, ``fetchmany()``, ``fetchall()`` (values of Python types, see the module's
    table), ``description``, ``rowcount`` and ``statusmessage``.
    """

    tag: str
    columns: list[str]
    types: list[str]
    arraysize: int

    def __init__(
        self, tag: str, columns: list[str], rows: list[tuple[str | None, ...]], types: list[str] | None = None
    ) -> None:
        super().__init__(rows)
        self.tag = tag
        self.columns = columns
        self.types = types if types is not None else ["text"] * len(columns)
        self.arraysize = 1
        self._pos = 0

    def __repr__(self) -> str:
        return f"Result(tag={self.tag!r}, columns={self.columns!r}, rows={list(self)!r})"

    # ----- psycopg's cursor --------------------------------------------------------------------

    @property
    def description(self) -> list[Column] | None:
        """A `Column` per column of a ``SELECT``; ``None`` for a command, as psycopg."""
        if not self._has_rows():
            return None
        return [_column(name, typ) for name, typ in zip(self.columns, self.types)]

    @property
    def rowcount(self) -> int:
        """The number of rows of a ``SELECT``; for a command, the count its tag ends with, or
        ``-1`` when it has none (``NOTIFY``, ``LISTEN``), as psycopg."""
        if self._has_rows():
            return len(self)
        last = self.tag.rpartition(" ")[2]
        return int(last) if last.isdigit() else -1

    @property
    def statusmessage(self) -> str | None:
        """The command tag; ``None`` for an empty query."""
        return self.tag or None

    def fetchone(self) -> Row | None:
        """The next row, or ``None`` after the last."""
        rows = self._fetch(1)
        return rows[0] if rows else None

    def fetchmany(self, size: int = 0) -> list[Row]:
        """The next `size` rows (``arraysize`` when 0), fewer at the end."""
        return self._fetch(size or self.arraysize)

    def fetchall(self) -> list[Row]:
        """The rows not yet fetched."""
        return self._fetch(len(self))

    def _fetch(self, n: int) -> list[Row]:
        if not self._has_rows():
            raise ProgrammingError("the last operation didn't produce a result")
        start = self._pos
        self._pos = min(len(self), start + n)
        loaders = [_LOADERS.get(t) for t in self.types]
        return [
            tuple(v if v is None or load is None else load(v) for v, load in zip(row, loaders))
            for row in self[start : self._pos]
        ]

    def _fetched_iter(self) -> Iterator[Row]:
        while (row := self.fetchone()) is not None:
            yield row

    def _has_rows(self) -> bool:
        return self.tag.startswith("SELECT")
