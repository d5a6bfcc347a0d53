"""`hark.Connection`: the blocking connection."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from time import monotonic
from types import TracebackType
from typing import TYPE_CHECKING

from ._base import BaseConnection, Notify, StrPath, open_session
from ._result import Result
from .pq import TransactionStatus
from ._cursor import Cursor
from ._params import Params
from ._transaction import Transaction
from .types.json import Json, Jsonb, payload_text

if TYPE_CHECKING:
    from typing_extensions import Self


class Connection(BaseConnection):
    """A session on a queue directory: PostgreSQL's connection, without a server.

    Every statement outside a transaction block commits on its own (psql's autocommit, unless
    the connection was opened with ``autocommit=False``); use ``with conn.transaction():`` or
    ``execute("BEGIN")`` for more. As a context manager it
    commits a block left open on success, rolls it back on an exception, and closes.

    A connection may be used from several threads; its calls take turns. No call holds the GIL
    while it waits (for notifications, for another thread's call, or for another process's
    lock), and a thread blocked in ``notifies()`` does not stop other threads from using the
    same connection.
    """

    @classmethod
    def connect(
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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.closed:
            return
        try:
            self._end_open_block(exc)
        finally:
            self.close()

    def close(self) -> None:
        """End the session: its listens end, unread notifications are dropped, and a transaction
        left open is discarded. Closing twice is harmless."""
        self._native.close()

    # ----- statements ----------------------------------------------------------------------------

    def execute(self, sql: str, params: Params | None = None) -> Result:
        """Run SQL text (hark's dialect: LISTEN, UNLISTEN, NOTIFY, BEGIN/COMMIT/ROLLBACK,
        savepoints, SELECT of pg_notify() and friends) and return the rows of its last
        statement. Several statements in one call run as one transaction.

        `params`, as psycopg's: a sequence for ``%s`` placeholders or a mapping for
        ``%(name)s`` ones (``%%`` is a literal ``%``); the values are bound as values, never
        pasted into the SQL, and the text may then hold one statement only. None, str, int,
        float and bool are accepted."""
        return self._statement(lambda: self._execute(sql, params))

    def listen(self, channel: str) -> None:
        """``LISTEN`` on `channel`, taken verbatim (no case folding, unlike SQL identifiers).
        Takes effect when the transaction commits (at once outside a block)."""
        self._statement(lambda: self._native.listen(channel))

    def unlisten(self, channel: str | None = None) -> None:
        """``UNLISTEN channel``, or ``UNLISTEN *`` when `channel` is None."""
        self._statement(lambda: self._unlisten(channel))

    def notify(self, channel: str, payload: str | Json | Jsonb = "") -> None:
        """``pg_notify(channel, payload)``: sent when the transaction commits (at once outside a
        block). Within one transaction a repeated (channel, payload) is sent once.

        `payload` is a ``str``, or ``hark.Json(value)`` to send ``json.dumps(value)``; any
        other type raises ``TypeError``."""
        text = payload if isinstance(payload, str) else payload_text(payload)
        self._statement(lambda: self._native.notify(channel, text))

    def subscribe(
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
        """Create the durable subscription `name` on `channels` (exact names, or globs with
        ``*``, ``?`` and ``\\`` escapes, as Redis' PSUBSCRIBE) if it does not exist, and attach
        this connection to it. It keeps its position and channels while nobody is attached,
        across crashes and restarts (not across a reboot). ``notifies()`` then yields every
        notification on its channels after the last acknowledged one, in commit order.

        `ack`: ``"explicit"`` (only ``ack()`` acknowledges) or ``"auto"`` (each notification
        taken acknowledges those before it). `create=False` attaches only to an existing one.
        `wait`: seconds to wait for another attached connection to let go, instead of raising
        ``InUseError`` at once. `max_lag_bytes` / `max_lag_age` (seconds): past them the
        subscription is cut, and ``notifies()`` raises ``GapError`` once, with the counts, in
        place of what was skipped. The channels and settings given replace the stored ones."""
        self._subscribe(name, channels, ack, create, wait, max_lag_bytes, max_lag_age)

    def ack(self, notify: Notify | int) -> None:
        """Acknowledge `notify` (a ``Notify`` or its ``position``) and every notification before
        it: a later attach does not receive them again."""
        self._ack(notify)

    def detach(self) -> None:
        """End this connection's attachment; the subscription stays at its acknowledged
        position (what was received and not acknowledged comes again at the next attach)."""
        self._native.detach()

    def unsubscribe(self, name: str) -> None:
        """Drop the durable subscription `name` (``InvalidArgumentError`` if there is none,
        ``InUseError`` while another connection is attached)."""
        self._native.unsubscribe(name)

    def cursor(self) -> Cursor:
        """A psycopg ``Cursor``: ``cur.execute(sql)``, then ``fetchone()``, ``fetchmany()``,
        ``fetchall()`` or iteration, with ``description`` and ``rowcount``."""
        return Cursor(self)

    @property
    def autocommit(self) -> bool:
        """Whether statements outside a block commit on their own (the default). Set it to
        false for psycopg's default: the first statement opens a block, which ``commit()``,
        ``rollback()`` or leaving ``with conn:`` ends. It can change only while no block is open."""
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self._set_autocommit(value)

    def set_autocommit(self, value: bool) -> None:
        """psycopg's method form of setting `autocommit`."""
        self._set_autocommit(value)

    def transaction(self, savepoint_name: str | None = None, force_rollback: bool = False) -> Transaction:
        """A block to use with ``with``: a transaction, or a savepoint inside one."""
        return Transaction(self, savepoint_name, force_rollback)

    def commit(self) -> None:
        """Commit a transaction block opened with ``execute("BEGIN")``; nothing if none is
        open. Not allowed inside ``transaction()`` blocks, which commit on their own."""
        self._end_block(commit=True)

    def rollback(self) -> None:
        """Roll back a transaction block opened with ``execute("BEGIN")``; nothing if none is
        open. Not allowed inside ``transaction()`` blocks (raise `hark.Rollback` there)."""
        self._end_block(commit=False)

    # ----- receiving -----------------------------------------------------------------------------

    def notifies(self, *, timeout: float | None = None, stop_after: int | None = None) -> Generator[Notify, None, None]:
        """Yield notifications as they arrive, as psycopg 3.2 does.

        :param timeout: the most time, in seconds, the generator runs, counted from its first
            step; ``None`` waits forever, ``0`` takes what is already there and stops (one read
            of the queue: at most 4,096 notifications or about 1 MiB of payloads, the rest of a
            larger backlog being left for the next call).
        :param stop_after: stop once at least this many notifications were yielded. A batch
            that arrived together is yielded whole, so a few more may come.

        Notifications that arrive while no generator runs are kept for the next one (unless
        notify handlers took them). Breaking out of the loop loses nothing: what was not yet
        yielded stays with the connection. The wait releases the GIL, and Ctrl-C interrupts it
        with ``KeyboardInterrupt``.
        """
        native = self._native
        deadline = None if timeout is None else monotonic() + timeout
        received = 0
        try:
            while True:
                ready = native.wait(None if deadline is None else deadline - monotonic())
                for n in self._take(ready):
                    yield n
                    received += 1
                if self._notifies_over(received, stop_after, deadline):
                    return
        finally:
            # However it ends, leave the connection ready for a caller that sleeps on fileno().
            native.settle()


def connect(
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
) -> Connection:
    """Open a connection to the queue in `dir`, creating the queue if it does not exist.

    Without `dir`: ``$HARK_DIR``, else ``/dev/shm/hark-<uid>`` (``/tmp/hark-<uid>`` without
    ``/dev/shm``): one rule, so that a service and a login shell of the same user meet on one
    queue. A queue is created only in a missing or empty directory (a directory holding other
    files raises `PermissionDeniedError`), and a `dir` that looks like a PostgreSQL connection
    string or URL (``"dbname=app"``) raises `InvalidArgumentError`.

    :param create: ``False`` opens only an existing queue, and raises `IoError` (SQLSTATE
        ``3D000``, ``queue "…" does not exist``) when there is none.

    The sizes are fixed when the queue is created (reopening with a different explicit value is
    an error; leave them out to accept the queue's):

    :param max_queue_size: bytes the queue may hold before commits fail with `QueueFullError`
        (default 8 GiB, as PostgreSQL).
    :param max_payload: longest payload in bytes (default 7999, as PostgreSQL; up to 1 MiB).
    :param segment_size: size of each segment file, a power of two (chosen from the above by
        default).
    :param group_shared: share the queue with the directory's group (02770/0660 instead of
        0700/0600).
    :param cut_laggards: when the queue is full, cut the listeners and subscriptions holding it
        back (each then gets a `GapError` with what it skipped) instead of failing commits with
        `QueueFullError` (PostgreSQL's behaviour, the default).
    :param listener_max_lag_bytes: a lag limit for every plain listener, in bytes;
        `listener_max_lag_age` one in seconds: past them a listener is cut, with a `GapError`.
    :param autocommit: whether each statement outside a block commits on its own (default, and
        what hark did before it had the option). ``False`` is psycopg's default: the first
        statement (``execute``, ``listen``, ``unlisten``, ``notify``) opens a block, and nothing
        is sent or takes effect until ``commit()``.

    As in psycopg, an empty `dir` (``connect("")``) means the default.
    """
    return Connection.connect(
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


__all__ = ["Connection", "connect", "TransactionStatus"]
