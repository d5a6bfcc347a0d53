"""What the blocking and the asyncio connections share: the value types and the bookkeeping
around the native session (handlers, notices, the transaction-block stack)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from time import monotonic
from typing import Any, Callable, NamedTuple, TypeVar

from . import _hark, _params
from ._info import ConnectionInfo
from ._result import Result
from ._stats import QueueStats, ReceiverStat, from_native
from .errors import ClosedError, ProgrammingError, TransactionStateError
from .pq import TransactionStatus
from .types import json as _json

logger = logging.getLogger("hark")
T = TypeVar("T")


class _NotifyFields(NamedTuple):
    """A notification as a listener receives it: PostgreSQL's three fields (psycopg's
    ``Notify``)."""

    channel: str
    """The channel it was sent on (libpq's ``relname``)."""
    payload: str
    """The payload, ``""`` when none was given (libpq's ``extra``)."""
    pid: int
    """The backend PID of the connection that sent it (libpq's ``be_pid``); compare with
    ``conn.pid`` to recognise your own notifications (each connection has its own)."""

    def json(self) -> Any:
        """The payload parsed as JSON (with ``hark.types.json.set_json_loads``'s function,
        ``json.loads`` by default); a payload that is not JSON raises ``ValueError``
        (``json.JSONDecodeError``)."""
        return _json.loads(self.payload)


class Notify(_NotifyFields):
    """A notification as a listener receives it: PostgreSQL's three fields, as psycopg's
    ``Notify`` (a tuple of ``channel``, ``payload``, ``pid``, compared as one), and beside them
    where and when it was committed."""

    position: int = 0
    """Its position in the queue: unique for the queue's life (until a reboot wipes it),
    increasing in commit order, so a consumer can make its processing idempotent;
    ``conn.ack(n)`` acknowledges a subscription up to it."""
    txn: int = 0
    """The commit sequence number of its transaction: the same for all of one transaction."""
    _commit_ns: int = 0

    @property
    def commit_time(self) -> datetime:
        """When its transaction committed (the notifier's clock), an aware UTC datetime (made
        when asked for: most listeners never look, and making one costs about as much as the
        rest of a notification)."""
        return datetime.fromtimestamp(self._commit_ns / 1e9, timezone.utc)


def _notify(t: tuple[str, str, int, int, int, int], _new: Any = tuple.__new__) -> Notify:
    """A `Notify` from the native session's tuple. The tuple is made directly (a named tuple's
    own ``__new__`` is a Python function) and the other fields go straight into the instance's
    dict: the per-notification cost of a Python listener."""
    n: Notify = _new(Notify, t[:3])
    d = n.__dict__
    d["position"] = t[3]
    d["txn"] = t[4]
    d["_commit_ns"] = t[5]
    return n


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


StrPath = str | os.PathLike[str]

_STATUS = {
    "idle": TransactionStatus.IDLE,
    "intrans": TransactionStatus.INTRANS,
    "inerror": TransactionStatus.INERROR,
}


def open_session(
    dir: StrPath | None,
    max_queue_size: int | None,
    max_payload: int | None,
    segment_size: int | None,
    group_shared: bool,
    create: bool,
    policy: tuple[bool | None, int | None, float | None] = (None, None, None),
) -> _hark.Session:
    # psycopg's connect("") means "the defaults"; so does hark's.
    return _hark.Session(
        None if dir is None or dir == "" else os.fspath(dir),
        max_queue_size=max_queue_size,
        max_payload=max_payload,
        segment_size=segment_size,
        group_shared=group_shared,
        create=create,
        cut_laggards=policy[0],
        listener_max_lag_bytes=policy[1],
        listener_max_lag_age=policy[2],
    )


class BaseConnection:
    """State common to `hark.Connection` and `hark.AsyncConnection`."""

    def __init__(self, session: _hark.Session, autocommit: bool = True) -> None:
        self._native = session
        self._autocommit = bool(autocommit)
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
    def subscription(self) -> str | None:
        """The durable subscription this connection is attached to, if any."""
        return self._native.subscription

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
        return _STATUS[self._native.transaction_status]

    @property
    def info(self) -> ConnectionInfo:
        """psycopg's ``conn.info``: ``backend_pid``, ``transaction_status``, ``status``, ``dsn``."""
        return ConnectionInfo(self)

    @property
    def autocommit(self) -> bool:
        """Whether statements outside a block commit on their own (the default, unlike
        psycopg's); when false, the first statement opens a block that ``commit()`` or
        ``rollback()`` ends, as psycopg's implicit ``BEGIN``."""
        return self._autocommit

    def _set_autocommit(self, value: bool) -> None:
        status = self.transaction_status
        if status is not TransactionStatus.IDLE:
            raise ProgrammingError(f"can't change 'autocommit' now: connection in transaction status {status.name}")
        self._autocommit = bool(value)

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

    def stats(self) -> QueueStats:
        """The queue's positions and sizes and each listener's and durable subscription's channels
        and lag (bytes, notifications, age of the oldest unread), limits and pending gap: what
        ``hark stat`` shows. Advances the queue's tail first, as a commit does."""
        return from_native(self._native.stats())

    def subscriptions(self) -> list[ReceiverStat]:
        """The queue's durable subscriptions, with their lag (``stats().subscriptions``)."""
        return self.stats().subscriptions

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

    def _subscribe(
        self,
        name: str,
        channels: str | Sequence[str],
        ack: str,
        create: bool,
        wait: float | None,
        max_lag_bytes: int | None,
        max_lag_age: float | None,
    ) -> None:
        if ack not in ("explicit", "auto"):
            raise ValueError(f"ack must be 'explicit' or 'auto', not {ack!r}")
        chans = [channels] if isinstance(channels, str) else list(channels)
        self._native.subscribe(
            name,
            chans,
            auto_ack=ack == "auto",
            create=create,
            wait=wait,
            max_lag_bytes=max_lag_bytes,
            max_lag_age=max_lag_age,
        )

    def _ack(self, notify: Notify | int) -> None:
        self._native.ack(notify.position if isinstance(notify, Notify) else notify)

    def _statement(self, op: Callable[[], T]) -> T:
        """Run a statement (``execute``, ``listen``, ``unlisten``, ``notify``): without
        autocommit, open the block first if none is open, as psycopg does with ``BEGIN``."""

        if self._autocommit:
            return self._run(op)

        def run() -> T:
            if self._native.transaction_status == "idle":
                self._native.begin()
            return op()

        return self._run(run)

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
                self._call_notify_handlers(_notify(t))

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
            n = _notify(t)
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

    def _execute(self, sql: str, params: _params.Params | None = None) -> Result:
        if params is None:
            tag, columns, types, rows = self._native.execute(sql)
        else:
            # As psycopg: values go through the extended protocol (one statement); with none,
            # the converted text runs as a simple query.
            text, values = _params.bind(sql, params)
            if values:
                tag, columns, types, rows = self._native.execute_params(text, values)
            else:
                tag, columns, types, rows = self._native.execute(text)
        return Result(tag, columns, rows, types)

    @staticmethod
    def _notifies_over(received: int, stop_after: int | None, deadline: float | None) -> bool:
        """psycopg 3.2's end of notifies(), checked after each batch (so that timeout=0 still
        looks once, and a batch is yielded whole)."""
        if stop_after is not None and received >= stop_after:
            return True
        return deadline is not None and monotonic() >= deadline

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.transaction_status.name.lower()
        return f"<{type(self).__module__}.{type(self).__qualname__} {str(self.dir)!r} pid={self.pid} ({state})>"
