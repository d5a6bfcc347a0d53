"""The exceptions hark raises.

Each class stands for one error family of the core library and carries the same identity as the
C constant and the Node ``err.code``: ``hark.QueueFullError`` is ``HARK_ERR_QUEUE_FULL``. Every
instance also has PostgreSQL's five-character ``sqlstate`` (``"54000"`` for a full queue), and the
message is PostgreSQL's text where PostgreSQL has one (``too many notifications in the NOTIFY
queue``, ``channel name too long``)::

    try:
        conn.notify("events", payload)
    except hark.InvalidArgumentError as e:      # payload string too long, channel name too long
        log.warning("%s (SQLSTATE %s)", e, e.sqlstate)
"""

from __future__ import annotations

__all__ = [
    "Error",
    "Diagnostic",
    "InterfaceError",
    "DatabaseError",
    "DataError",
    "OperationalError",
    "ProgrammingError",
    "NotSupportedError",
    "InvalidArgumentError",
    "SqlSyntaxError",
    "TransactionStateError",
    "InUseError",
    "QueueFullError",
    "TooManyListenersError",
    "DiskFullError",
    "CorruptedError",
    "IncompatibleError",
    "PermissionDeniedError",
    "IoError",
    "ClosedError",
    "GapError",
    "InternalError",
]


class Error(Exception):
    """Base class of every error hark raises.

    ``code`` names the family as the C API does (``"HARK_ERR_QUEUE_FULL"``); ``sqlstate`` is
    PostgreSQL's SQLSTATE; ``detail`` and ``hint`` are PostgreSQL's DETAIL and HINT lines, and
    ``position`` the 1-based character an error in SQL text points at, when there is one.
    """

    code: str = "HARK_ERR"

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str | None = None,
        detail: str | None = None,
        hint: str | None = None,
        position: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint
        self.position = position

    def __str__(self) -> str:
        text = self.message
        if self.detail:
            text += f"\nDETAIL:  {self.detail}"
        if self.hint:
            text += f"\nHINT:  {self.hint}"
        return text

    @property
    def diag(self) -> Diagnostic:
        """The error's fields under psycopg's names (``e.diag.sqlstate``,
        ``e.diag.message_primary``, …)."""
        return Diagnostic(self)

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the keyword-only fields when an error crosses a process boundary (multiprocessing).
        return (_rebuild, (type(self), self.message, self.sqlstate, self.detail, self.hint, self.position))


class Diagnostic:
    """An error's fields with psycopg's names (``psycopg.errors.Diagnostic``). hark fills
    ``severity`` (always ``"ERROR"``), ``sqlstate``, ``message_primary``, ``message_detail``,
    ``message_hint`` and ``statement_position`` (a string, as libpq gives it); the other
    attributes psycopg has are ``None``: no error of hark concerns a table, a column or a
    server source file."""

    column_name = constraint_name = context = datatype_name = None
    internal_position = internal_query = schema_name = table_name = None
    source_file = source_function = source_line = None

    def __init__(self, error: Error) -> None:
        self.sqlstate: str | None = error.sqlstate
        self.message_primary: str | None = error.message
        self.message_detail: str | None = error.detail
        self.message_hint: str | None = error.hint
        self.statement_position: str | None = None if error.position is None else str(error.position)
        self.severity: str | None = "ERROR" if error.sqlstate else None
        self.severity_nonlocalized: str | None = self.severity

    def __repr__(self) -> str:
        return f"<hark.Diagnostic {self.sqlstate} {self.message_primary!r}>"


# The DB-API classes under psycopg's names, so that ``except psycopg.OperationalError`` keeps its
# meaning: each family below derives from the one psycopg uses for its SQLSTATE.


class InterfaceError(Error):
    """Misuse of the Python API itself: a closed cursor (psycopg's class)."""


class DatabaseError(Error):
    """Every error of the queue and of its SQL (psycopg's class); all families below."""


class DataError(DatabaseError):
    """A bad value (SQLSTATE class 22): see `InvalidArgumentError`."""


class OperationalError(DatabaseError):
    """The queue cannot do what was asked now: full, out of listener slots or disk space, an
    operating-system error, a closed connection."""


class ProgrammingError(DatabaseError):
    """A mistake in the program: bad SQL, a forbidden directory, fetching rows from a command."""


class NotSupportedError(DatabaseError):
    """A feature (or a queue format) this hark does not support."""


class InvalidArgumentError(DataError, ValueError):
    """A bad argument: empty or too long channel, payload too long, a NUL character, a bad
    option (or one that differs from the size an existing queue was created with). Also a
    ``ValueError``."""

    code = "HARK_ERR_INVALID_ARGUMENT"


class SqlSyntaxError(ProgrammingError):
    """``execute()`` could not parse the SQL text, or does not know a statement or function
    (SQLSTATE ``42601``, ``42883``, …), or the text nests parentheses and function calls deeper
    than 256 (``54001``, ``stack depth limit exceeded``)."""

    code = "HARK_ERR_SYNTAX"


class TransactionStateError(DatabaseError):
    """A statement not allowed in the session's transaction state: a command in an aborted
    block, ``SAVEPOINT`` outside a block, an unknown savepoint, ``commit()`` inside a
    ``transaction()`` block."""

    code = "HARK_ERR_TRANSACTION_STATE"


class InUseError(OperationalError):
    """A durable subscription is attached by another live session (SQLSTATE ``55006``)."""

    code = "HARK_ERR_IN_USE"


class QueueFullError(OperationalError):
    """The queue reached its maximum size; the committing transaction was rolled back and
    nothing of it became visible (SQLSTATE ``54000``)."""

    code = "HARK_ERR_QUEUE_FULL"


class TooManyListenersError(OperationalError):
    """Every listener slot of the queue is taken (4096 sessions listening at once)."""

    code = "HARK_ERR_TOO_MANY_LISTENERS"


class DiskFullError(OperationalError, OSError):
    """The file system was full while allocating a segment file (SQLSTATE ``53100``). Also an
    ``OSError``."""

    code = "HARK_ERR_DISK_FULL"


class CorruptedError(DatabaseError):
    """A control or segment file of the queue holds data that cannot be hark's."""

    code = "HARK_ERR_CORRUPTED"


class IncompatibleError(NotSupportedError):
    """The queue directory was written by an incompatible version of hark."""

    code = "HARK_ERR_INCOMPATIBLE"


class PermissionDeniedError(ProgrammingError, PermissionError):
    """The queue directory or one of its files is not safe to use (another owner, a group- or
    world-accessible mode without ``group_shared``, a symlink), or a queue would be created in a
    directory that holds other files (SQLSTATE ``55000``). Also a ``PermissionError``."""

    code = "HARK_ERR_PERMISSION_DENIED"


class IoError(OperationalError, OSError):
    """Any other operating-system error. Also an ``OSError`` (whose ``errno`` is ``None``: the
    message says what failed)."""

    code = "HARK_ERR_IO"


class ClosedError(OperationalError):
    """The connection was closed, or was opened by the parent of this forked process."""

    code = "HARK_ERR_CLOSED"


class GapError(OperationalError):
    """A receiver was cut (past its lag limit, or holding back a full queue under the cut
    policy): notifications were skipped. Raised once, by the receive that meets the gap, after
    every notification before the skipped range and before those after it (SQLSTATE
    ``HK001``); receive again for the rest. ``skipped`` counts the notifications on the
    receiver's channels that were skipped, ``first_txn`` and ``last_txn`` are the commit
    numbers (``Notify.txn``) of the first and last of them, ``resumed_at`` the position the
    receiver goes on from."""

    code = "HARK_ERR_GAP"
    skipped: int | None = None
    first_txn: int | None = None
    last_txn: int | None = None
    resumed_at: int | None = None


class InternalError(DatabaseError):
    """A bug in hark: the call panicked inside the native code (SQLSTATE XX000, psycopg's name for
    that class). The call failed, the process goes on, and the connection it happened on was
    closed, since its state is unknown; open a new one."""

    code = "HARK_ERR_PANIC"


_BY_CODE: dict[str, type[Error]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        SqlSyntaxError,
        TransactionStateError,
        InUseError,
        QueueFullError,
        TooManyListenersError,
        DiskFullError,
        CorruptedError,
        IncompatibleError,
        PermissionDeniedError,
        IoError,
        ClosedError,
        GapError,
        InternalError,
    )
}


def _from_native(
    code: str,
    message: str,
    sqlstate: str,
    detail: str | None,
    hint: str | None,
    position: int | None,
    gap: tuple[int, int, int, int] | None = None,
) -> Error:
    """Called by the native module to build the exception for a core error."""
    cls = _BY_CODE.get(code, Error)
    e = cls(message, sqlstate=sqlstate, detail=detail, hint=hint, position=position)
    if isinstance(e, GapError) and gap is not None:
        e.skipped, e.first_txn, e.last_txn, e.resumed_at = gap
    return e


def _rebuild(
    cls: type[Error],
    message: str,
    sqlstate: str | None,
    detail: str | None,
    hint: str | None,
    position: int | None,
) -> Error:
    return cls(message, sqlstate=sqlstate, detail=detail, hint=hint, position=position)
