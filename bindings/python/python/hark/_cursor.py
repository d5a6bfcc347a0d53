"""psycopg 3's cursors over hark's connections: ``conn.cursor()``.

A cursor runs a statement with ``execute()`` and reads its rows with ``fetchone()``,
``fetchmany()``, ``fetchall()`` or iteration, the values loaded into Python types as psycopg's
are (see `hark._result`). It holds nothing of its own on the queue: it is the connection's
``execute()`` plus a read position, so any number may be open on a connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar, cast

from ._result import Column, Result, Row
from .errors import InterfaceError, ProgrammingError

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._async import AsyncConnection
    from ._connection import Connection

C = TypeVar("C", "Connection", "AsyncConnection")


class BaseCursor(Generic[C]):
    def __init__(self, connection: C) -> None:
        self._conn: C = connection
        self._result: Result | None = None
        self._closed = False
        self.arraysize = 1
        """How many rows ``fetchmany()`` returns by default."""

    @property
    def connection(self) -> C:
        """The connection the cursor runs its statements on."""
        return self._conn

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    @property
    def description(self) -> list[Column] | None:
        """A `hark.Column` (``name``, ``type_code``: the type's OID, …) per column of the last
        ``SELECT``; ``None`` before any statement and after a command."""
        return None if self._result is None else self._result.description

    @property
    def rowcount(self) -> int:
        """Rows of the last ``SELECT``, the count of a command's tag, else ``-1``."""
        return -1 if self._result is None else self._result.rowcount

    @property
    def statusmessage(self) -> str | None:
        """The command tag of the last statement (``"SELECT 1"``, ``"NOTIFY"``)."""
        return None if self._result is None else self._result.statusmessage

    def _args(self, query: str, params: Any) -> tuple[Any, ...]:
        if self._closed:
            raise InterfaceError("the cursor is closed")
        return (query,) if params is None else (query, params)

    def _rows(self) -> Result:
        if self._closed:
            raise InterfaceError("the cursor is closed")
        if self._result is None:
            raise ProgrammingError("no result available")
        return self._result

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.statusmessage or "no result"
        return f"<hark.{type(self).__qualname__} ({state}) on {self._conn!r}>"


class Cursor(BaseCursor["Connection"]):
    """A cursor of a `hark.Connection` (psycopg's ``Cursor``)."""

    def execute(self, query: str, params: Any = None) -> Self:
        """Run `query` with the connection's ``execute()`` (passing `params` on when given) and
        make its rows the ones to fetch."""
        args = self._args(query, params)
        self._result = None  # a statement that fails leaves no rows to fetch, as psycopg's
        run = cast(Callable[..., Result], self._conn.execute)
        self._result = run(*args)
        return self

    def fetchone(self) -> Row | None:
        """The next row, or ``None`` after the last."""
        return self._rows().fetchone()

    def fetchmany(self, size: int = 0) -> list[Row]:
        """The next `size` rows (``arraysize`` when 0)."""
        return self._rows().fetchmany(size or self.arraysize)

    def fetchall(self) -> list[Row]:
        """The rows not yet fetched."""
        return self._rows().fetchall()

    def __iter__(self) -> Iterator[Row]:
        return self._rows()._fetched_iter()

    def close(self) -> None:
        """Forget the result; later calls raise `hark.InterfaceError`. The connection stays open."""
        self._closed = True
        self._result = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncCursor(BaseCursor["AsyncConnection"]):
    """A cursor of a `hark.AsyncConnection` (psycopg's ``AsyncCursor``): the same, with
    ``await``."""

    async def execute(self, query: str, params: Any = None) -> Self:
        """Run `query` with the connection's ``execute()``; see `Cursor.execute`."""
        args = self._args(query, params)
        self._result = None
        run = cast(Callable[..., Any], self._conn.execute)
        self._result = await run(*args)
        return self

    async def fetchone(self) -> Row | None:
        """The next row, or ``None`` after the last."""
        return self._rows().fetchone()

    async def fetchmany(self, size: int = 0) -> list[Row]:
        """The next `size` rows (``arraysize`` when 0)."""
        return self._rows().fetchmany(size or self.arraysize)

    async def fetchall(self) -> list[Row]:
        """The rows not yet fetched."""
        return self._rows().fetchall()

    async def __aiter__(self) -> AsyncIterator[Row]:
        for row in self._rows()._fetched_iter():
            yield row

    async def close(self) -> None:
        """Forget the result; see `Cursor.close`."""
        self._closed = True
        self._result = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
