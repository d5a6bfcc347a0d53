"""What the blocking and the asyncio connections share: the value types and the bookkeeping
around the native session (handlers, notices, the transaction-block stack)."""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from time import monotonic
from typing import Callable, NamedTuple, TypeVar

from . import _hark
from .errors import ClosedError, TransactionStateError

logger = logging.getLogger("hark")
T = TypeVar("T")


class Notify(NamedTuple):
    """A notification as a listener receives it: PostgreSQL's three fields."""

    channel: str
    """The channel it was sent on (libpq's ``relname``)."""
    payload: str
    """The payload, ``""`` when none was given (libpq's ``extra``)."""
    pid: int
    """The backend PID of the connection that sent it (libpq's ``be_pid``); compare with
    ``conn.pid`` to recognise your own notifications (each connection has its own)."""


class Notice(NamedTuple):
    """A message that is not an error: identifier truncation, the half-full queue warning,
    ``there is no transaction in progress``."""

    severity: str
    """``"NOTICE"`` or ``"WARNING"``."""
    sqlstate: str
    message: str
    detail: str | None
    hint: str | None

    def __str__(self) -> str:
        text = f"{self.severity}:  {self.message}"
        if self.detail:
            text += f"\nDETAIL:  {self.detail}"
        if self.hint:
            text += f"\nHINT:  {self.hint}"
        return text


NotifyHandler = Callable[[Notify], None]
NoticeHandler = Callable[[Notice], None]


class TransactionStatus(enum.Enum):
    """Where a connection stands with respect to transactions (libpq's names)."""

    IDLE = "idle"
    """Not in a transaction block: every statement commits on its own."""
    INTRANS = "intrans"
    """Inside a transaction block."""
    INERROR = "inerror"
    """Inside a block that failed; only a rollback ends it."""


class Result(list[tuple[str | None, ...]]):
    """The rows of the last statement run by ``execute()`` (empty for a command), as tuples of
    text values (``None`` is SQL NULL), with the statement's command ``tag`` (``"SELECT 1"``,
    ``"NOTIFY"``) and the ``columns`` names of a ``SELECT``."""

    tag: str
    columns: list[str]

    def __init__(self, tag: str, columns: list[str], rows: list[tuple[str | None, ...]]) -> None:
        super().__init__(rows)
        self.tag = tag
        self.columns = columns

    def __repr__(self) -> str:
        return f"Result(tag={self.tag!r}, columns={self.columns!r}, rows={list(self)!r})"


StrPath = str | os.PathLike[str]


def open_session(
    dir: StrPath | None,
    max_queue_size: int | None,
    max_payload: int | None,
    segment_size: int | None,
    group_shared: bool,
    create: bool,
) -> _hark.Session:
    return _hark.Session(
        None if dir is None else os.fspath(dir),
        max_queue_size=max_queue_size,
        max_payload=max_payload,
        segment_size=segment_size,
        group_shared=group_shared,
        create=create,
    )


class BaseConnection:
    """State common to `hark.Connection` and `hark.AsyncConnection`."""

    def __init__(self, session: _hark.Session) -> None:
        self._native = session
        self._notify_handlers: list[NotifyHandler] = []
        self._notice_handlers: list[NoticeHandler] = []
        # Number of transaction() blocks currently entered.
        self._num_transactions = 0

    # ----- information, all constant-time --------------------------------------------------------

    @property
    def pid(self) -> int:
        """This connection's backend PID (``pg_backend_pid()``): what listeners see as the
        sender of its notifications. Unique among the live connections of the queue, as a
        PostgreSQL backend's: the process's id for its first connection, another (2^22 or more,
        above any Linux process id) for the others."""
        return self._native.pid

    @property
    def dir(self) -> Path:
        """The queue directory this connection is on."""
        return self._native.path

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._native.closed

    @property
    def transaction_status(self) -> TransactionStatus:
        """Whether the connection is in a transaction block, and whether that block failed."""
        return TransactionStatus(self._native.transaction_status)

    def fileno(self) -> int:
        """A descriptor that becomes readable when notifications may be waiting (libpq's
        ``PQsocket``), for ``select``, ``selectors`` or ``loop.add_reader``. After it turns
        readable, take what arrived with ``notifies(timeout=0)``."""
        return self._native.fileno()

    def listening_channels(self) -> list[str]:
        """The channels this connection listens on after its last committed change
        (``pg_listening_channels()``), in LISTEN order."""
        if self._native.closed:
            raise ClosedError("connection is closed", sqlstate="08003")
        return self._native.listening_channels()

    def queue_usage(self) -> float:
        """The fraction of the queue's maximum size in use (``pg_notification_queue_usage()``)."""
        return self._native.queue_usage()

    # ----- handlers ------------------------------------------------------------------------------

    def add_notify_handler(self, callback: NotifyHandler) -> None:
        """Call ``callback(notify)`` for every notification this connection receives.

        As in psycopg, handlers run when the connection reads its input: after each operation
        (``execute``, ``notify``, a commit, …) and while ``notifies()`` runs. Notifications
        given to handlers outside ``notifies()`` are not also kept for it.
        """
        self._notify_handlers.append(callback)

    def remove_notify_handler(self, callback: NotifyHandler) -> None:
        """Stop calling a handler added with ``add_notify_handler``."""
        self._notify_handlers.remove(callback)

    def add_notice_handler(self, callback: NoticeHandler) -> None:
        """Call ``callback(notice)`` for every `Notice`. Without handlers, notices are logged
        on the ``hark`` logger."""
        self._notice_handlers.append(callback)

    def remove_notice_handler(self, callback: NoticeHandler) -> None:
        """Stop calling a handler added with ``add_notice_handler``."""
        self._notice_handlers.remove(callback)

    # ----- internals -------------------------------------------------------------------------------

    def _run(self, op: Callable[[], T]) -> T:
        """Run one operation on the session, then hand out what it produced."""
        try:
            return op()
        finally:
            self._after()

    def _after(self) -> None:
        """Hand out what an operation produced: notices, and notifications to handlers."""
        native = self._native
        if native.has_notices:
            self._dispatch_notices()
        if self._notify_handlers and not native.closed:
            while (t := native.next_notify()) is not None:
                self._call_notify_handlers(Notify._make(t))

    def _end_block(self, commit: bool) -> None:
        """commit() and rollback(): end a block begun with execute("BEGIN"), if one is open."""
        if self._num_transactions:
            action = "commit" if commit else "rollback"
            raise TransactionStateError(
                f"explicit {action}() forbidden within a transaction() block", sqlstate="25000"
            )
        # On a closed connection the native call raises ClosedError rather than doing nothing.
        if self._native.closed or self._native.transaction_status != "idle":
            self._run(self._native.commit if commit else self._native.rollback)

    def _end_open_block(self, exc: BaseException | None) -> None:
        """Leaving the connection's context: commit a block left open, or roll it back when an
        exception is leaving."""
        if self._native.transaction_status != "idle":
            self._run(self._native.commit if exc is None else self._native.rollback)

    def _take(self, ready: int) -> Iterator[Notify]:
        """Up to `ready` notifications, taken one at a time, so that a consumer that stops
        early leaves the rest with the connection."""
        native = self._native
        for _ in range(ready):
            t = native.next_notify()
            if t is None:  # another thread or task took it
                return
            n = Notify._make(t)
            if self._notify_handlers:
                self._call_notify_handlers(n)
            yield n

    def _call_notify_handlers(self, n: Notify) -> None:
        for cb in list(self._notify_handlers):
            try:
                cb(n)
            except Exception:
                logger.exception("error in notify handler %r", cb)

    def _dispatch_notices(self) -> None:
        for t in self._native.take_notices():
            notice = Notice._make(t)
            if not self._notice_handlers:
                level = logging.WARNING if notice.severity == "WARNING" else logging.INFO
                logger.log(level, "%s", notice)
                continue
            for cb in list(self._notice_handlers):
                try:
                    cb(notice)
                except Exception:
                    logger.exception("error in notice handler %r", cb)

    def _unlisten(self, channel: str | None) -> None:
        if channel is None:
            self._native.unlisten_all()
        else:
            self._native.unlisten(channel)

    def _execute(self, sql: str) -> Result:
        tag, columns, rows = self._native.execute(sql)
        return Result(tag, columns, rows)

    @staticmethod
    def _notifies_over(received: int, stop_after: int | None, deadline: float | None) -> bool:
        """psycopg 3.2's end of notifies(), checked after each batch (so that timeout=0 still
        looks once, and a batch is yielded whole)."""
        if stop_after is not None and received >= stop_after:
            return True
        return deadline is not None and monotonic() >= deadline

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.transaction_status.value
        return f"<{type(self).__module__}.{type(self).__qualname__} {str(self.dir)!r} pid={self.pid} ({state})>"
