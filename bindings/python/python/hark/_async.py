"""`hark.AsyncConnection`: the connection for asyncio.

Waiting is driven by the connection's descriptor through ``loop.add_reader``: no thread per
wait and no polling. The other operations never wait on anything but a short lock held by
another process's commit, so they run directly on the event loop; they are coroutines to keep
psycopg's ``AsyncConnection`` shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING

from ._base import BaseConnection, Notify, StrPath, open_session
from ._result import Result
from ._cursor import AsyncCursor
from ._params import Params
from ._transaction import AsyncTransaction
from .types.json import Json, Jsonb, payload_text

if TYPE_CHECKING:
    from typing_extensions import Self

    from . import _hark


class AsyncConnection(BaseConnection):
    """A session on a queue directory for asyncio programs: the same operations as
    `hark.Connection`, with ``async for n in conn.notifies()``."""

    def __init__(self, session: _hark.Session, autocommit: bool = True) -> None:
        super().__init__(session, autocommit)
        # The descriptor stays open until the session object is freed, even after close(), so
        # this number stays valid for removing the reader.
        self._fd = session.fileno()
        # Futures of the coroutines waiting for the descriptor; one reader serves them all.
        self._waiters: set[asyncio.Future[None]] = set()
        self._reader_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    async def connect(
        cls,
        dir: StrPath | None = None,
        *,
        max_queue_size: int | None = None,
        max_payload: int | None = None,
        segment_size: int | None = None,
        group_shared: bool = False,
        autocommit: bool = True,
        create: bool = True,
        cut_laggards: bool | None = None,
        listener_max_lag_bytes: int | None = None,
        listener_max_lag_age: float | None = None,
    ) -> Self:
        """Open a connection; see `hark.connect`."""
        return cls(
            open_session(
                dir,
                max_queue_size,
                max_payload,
                segment_size,
                group_shared,
                create,
                (cut_laggards, listener_max_lag_bytes, listener_max_lag_age),
            ),
            autocommit,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.closed:
            return
        try:
            self._end_open_block(exc)
        finally:
            await self.close()

    async def close(self) -> None:
        """End the session (see `hark.Connection.close`). Coroutines waiting in
        ``notifies()`` raise `ClosedError`."""
        self._native.close()
        self._wake_waiters()

    async def execute(self, sql: str, params: Params | None = None) -> Result:
        """Run SQL text and return the rows of its last statement; `params` as psycopg's (see
        `hark.Connection.execute`)."""
        return self._statement(lambda: self._execute(sql, params))

    async def listen(self, channel: str) -> None:
        """``LISTEN`` on `channel`, taken verbatim."""
        self._statement(lambda: self._native.listen(channel))

    async def unlisten(self, channel: str | None = None) -> None:
        """``UNLISTEN channel``, or ``UNLISTEN *`` when `channel` is None."""
        self._statement(lambda: self._unlisten(channel))

    async def notify(self, channel: str, payload: str | Json | Jsonb = "") -> None:
        """``pg_notify(channel, payload)``, sent when the transaction commits."""
        text = payload if isinstance(payload, str) else payload_text(payload)
        self._statement(lambda: self._native.notify(channel, text))

    async def subscribe(
        self,
        name: str,
        channels: str | Sequence[str],
        *,
        ack: str = "explicit",
        create: bool = True,
        wait: float | None = None,
        max_lag_bytes: int | None = None,
        max_lag_age: float | None = None,
    ) -> None:
        """``Connection.subscribe``; a `wait` for another connection to let go runs in a
        thread, so the event loop goes on meanwhile."""
        args = (name, channels, ack, create, wait, max_lag_bytes, max_lag_age)
        if wait:
            await asyncio.get_running_loop().run_in_executor(None, lambda: self._subscribe(*args))
        else:
            self._subscribe(*args)

    async def ack(self, notify: Notify | int) -> None:
        """``Connection.ack``."""
        self._ack(notify)

    async def detach(self) -> None:
        """``Connection.detach``."""
        self._native.detach()

    async def unsubscribe(self, name: str) -> None:
        """``Connection.unsubscribe``."""
        self._native.unsubscribe(name)

    def cursor(self) -> AsyncCursor:
        """A psycopg ``AsyncCursor``: ``await cur.execute(sql)``, then ``await cur.fetchone()``,
        ``fetchmany()``, ``fetchall()`` or ``async for``."""
        return AsyncCursor(self)

    async def set_autocommit(self, value: bool) -> None:
        """Change `autocommit` (read-only on an async connection, as psycopg's); only while no
        block is open."""
        self._set_autocommit(value)

    def transaction(self, savepoint_name: str | None = None, force_rollback: bool = False) -> AsyncTransaction:
        """A block to use with ``async with``: a transaction, or a savepoint inside one."""
        return AsyncTransaction(self, savepoint_name, force_rollback)

    async def commit(self) -> None:
        """Commit a block opened with ``execute("BEGIN")``; see `hark.Connection.commit`."""
        self._end_block(commit=True)

    async def rollback(self) -> None:
        """Roll back a block opened with ``execute("BEGIN")``; see `hark.Connection.rollback`."""
        self._end_block(commit=False)

    async def notifies(self, *, timeout: float | None = None, stop_after: int | None = None) -> AsyncGenerator[Notify, None]:
        """Yield notifications as they arrive, with the meaning of `timeout` and `stop_after`
        of `hark.Connection.notifies` (psycopg 3.2's)."""
        native = self._native
        deadline = None if timeout is None else monotonic() + timeout
        received = 0
        try:
            while True:
                # The core's wait protocol, with the event loop as the sleeper: while this
                # consumer keeps up, its notifiers make no system call to wake it.
                ready = native.prepare_to_sleep()
                if not ready:
                    left = None if deadline is None else deadline - monotonic()
                    if left is None or left > 0:
                        slept = monotonic()
                        await self._readable(left)
                        native.woke(True, monotonic() - slept)
                        ready = native.prepare_to_sleep()
                for n in self._take(ready):
                    yield n
                    received += 1
                if self._notifies_over(received, stop_after, deadline):
                    return
        finally:
            native.settle()

    async def _readable(self, timeout: float | None) -> None:
        """Return when the descriptor is readable, the connection closes, or `timeout` passes."""
        loop = asyncio.get_running_loop()
        self._native.fileno()  # raises ClosedError once closed
        fut: asyncio.Future[None] = loop.create_future()
        if self._reader_loop is None:
            loop.add_reader(self._fd, self._wake_waiters)
            self._reader_loop = loop
        self._waiters.add(fut)
        timer = None if timeout is None else loop.call_later(timeout, _resolve, fut)
        try:
            await fut
        finally:
            if timer is not None:
                timer.cancel()
            self._waiters.discard(fut)
            if not self._waiters:
                self._remove_reader()

    def _wake_waiters(self) -> None:
        for fut in list(self._waiters):
            _resolve(fut)
        # Readiness is level-triggered: stop watching until someone waits again, or the loop
        # would call us back until the descriptor is drained.
        self._remove_reader()

    def _remove_reader(self) -> None:
        loop, self._reader_loop = self._reader_loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._fd)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def connect_async(
    dir: StrPath | None = None,
    *,
    max_queue_size: int | None = None,
    max_payload: int | None = None,
    segment_size: int | None = None,
    group_shared: bool = False,
    autocommit: bool = True,
    create: bool = True,
    cut_laggards: bool | None = None,
    listener_max_lag_bytes: int | None = None,
    listener_max_lag_age: float | None = None,
) -> AsyncConnection:
    """Open an `AsyncConnection`; the arguments are those of `hark.connect`."""
    return await AsyncConnection.connect(
        dir,
        max_queue_size=max_queue_size,
        max_payload=max_payload,
        segment_size=segment_size,
        group_shared=group_shared,
        autocommit=autocommit,
        create=create,
        cut_laggards=cut_laggards,
        listener_max_lag_bytes=listener_max_lag_bytes,
        listener_max_lag_age=listener_max_lag_age,
    )
