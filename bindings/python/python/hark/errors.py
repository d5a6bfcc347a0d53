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
    "InvalidArgumentError",
    "SqlSyntaxError",
    "TransactionStateError",
    "QueueFullError",
    "TooManyListenersError",
    "DiskFullError",
    "CorruptedError",
    "IncompatibleError",
    "PermissionDeniedError",
    "IoError",
    "ClosedError",
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

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the keyword-only fields when an error crosses a process boundary (multiprocessing).
        return (_rebuild, (type(self), self.message, self.sqlstate, self.detail, self.hint, self.position))


class InvalidArgumentError(Error, ValueError):
    """A bad argument: empty or too long channel, payload too long, a NUL character, a bad
    option (or one that differs from the size an existing queue was created with). Also a
    ``ValueError``."""

    code = "HARK_ERR_INVALID_ARGUMENT"


class SqlSyntaxError(Error):
    """``execute()`` could not parse the SQL text, or does not know a statement or function
    (SQLSTATE ``42601``, ``42883``, …), or the text nests parentheses and function calls deeper
    than 256 (``54001``, ``stack depth limit exceeded``)."""

    code = "HARK_ERR_SYNTAX"


class TransactionStateError(Error):
    """A statement not allowed in the session's transaction state: a command in an aborted
    block, ``SAVEPOINT`` outside a block, an unknown savepoint, ``commit()`` inside a
    ``transaction()`` block."""

    code = "HARK_ERR_TRANSACTION_STATE"


class QueueFullError(Error):
    """The queue reached its maximum size; the committing transaction was rolled back and
    nothing of it became visible (SQLSTATE ``54000``)."""

    code = "HARK_ERR_QUEUE_FULL"


class TooManyListenersError(Error):
    """Every listener slot of the queue is taken (4096 sessions listening at once)."""

    code = "HARK_ERR_TOO_MANY_LISTENERS"


class DiskFullError(Error):
    """The file system was full while allocating a segment file (SQLSTATE ``53100``)."""

    code = "HARK_ERR_DISK_FULL"


class CorruptedError(Error):
    """A control or segment file of the queue holds data that cannot be hark's."""

    code = "HARK_ERR_CORRUPTED"


class IncompatibleError(Error):
    """The queue directory was written by an incompatible version of hark."""

    code = "HARK_ERR_INCOMPATIBLE"


class PermissionDeniedError(Error):
    """The queue directory or one of its files is not safe to use (another owner, a group- or
    world-accessible mode without ``group_shared``, a symlink), or a queue would be created in a
    directory that holds other files (SQLSTATE ``55000``)."""

    code = "HARK_ERR_PERMISSION_DENIED"


class IoError(Error):
    """Any other operating-system error."""

    code = "HARK_ERR_IO"


class ClosedError(Error):
    """The connection was closed, or was opened by the parent of this forked process."""

    code = "HARK_ERR_CLOSED"


class InternalError(Error):
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
        QueueFullError,
        TooManyListenersError,
        DiskFullError,
        CorruptedError,
        IncompatibleError,
        PermissionDeniedError,
        IoError,
        ClosedError,
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
) -> Error:
    """Called by the native module to build the exception for a core error."""
    cls = _BY_CODE.get(code, Error)
    return cls(message, sqlstate=sqlstate, detail=detail, hint=hint, position=position)


def _rebuild(
    cls: type[Error],
    message: str,
    sqlstate: str | None,
    detail: str | None,
    hint: str | None,
    position: int | None,
) -> Error:
    return cls(message, sqlstate=sqlstate, detail=detail, hint=hint, position=position)
