"""hark: PostgreSQL's LISTEN/NOTIFY between the processes of one machine, with no server.

Processes open the same queue directory and LISTEN, NOTIFY and commit with PostgreSQL's
semantics; the API follows psycopg 3's::

    import hark

    with hark.connect("/tmp/q") as conn:
        conn.listen("events")
        for n in conn.notifies(timeout=10):
            print(n.channel, n.payload, n.pid)
"""

from __future__ import annotations

from . import errors
from ._async import AsyncConnection, connect_async
from ._base import Notice, NoticeHandler, Notify, NotifyHandler, Result, TransactionStatus
from ._connection import Connection, connect
from ._hark import DEFAULT_MAX_PAYLOAD, DEFAULT_MAX_QUEUE_SIZE, MAX_CHANNEL_LEN, __version__, default_dir
from ._transaction import AsyncTransaction, OutOfOrderTransactionNesting, Rollback, Transaction, TransactionState
from .errors import (
    ClosedError,
    CorruptedError,
    DatabaseError,
    DataError,
    Diagnostic,
    DiskFullError,
    Error,
    IncompatibleError,
    InterfaceError,
    InternalError,
    InvalidArgumentError,
    IoError,
    NotSupportedError,
    OperationalError,
    PermissionDeniedError,
    ProgrammingError,
    QueueFullError,
    SqlSyntaxError,
    TooManyListenersError,
    TransactionStateError,
)

__all__ = [
    "AsyncConnection",
    "AsyncTransaction",
    "ClosedError",
    "Connection",
    "CorruptedError",
    "DEFAULT_MAX_PAYLOAD",
    "DEFAULT_MAX_QUEUE_SIZE",
    "DataError",
    "DatabaseError",
    "Diagnostic",
    "DiskFullError",
    "Error",
    "IncompatibleError",
    "InterfaceError",
    "InternalError",
    "InvalidArgumentError",
    "IoError",
    "MAX_CHANNEL_LEN",
    "NotSupportedError",
    "Notice",
    "NoticeHandler",
    "Notify",
    "NotifyHandler",
    "OperationalError",
    "OutOfOrderTransactionNesting",
    "PermissionDeniedError",
    "ProgrammingError",
    "QueueFullError",
    "Result",
    "Rollback",
    "SqlSyntaxError",
    "TooManyListenersError",
    "Transaction",
    "TransactionState",
    "TransactionStateError",
    "TransactionStatus",
    "__version__",
    "connect",
    "connect_async",
    "default_dir",
    "errors",
]

# Show the public names where users meet them.
for _cls in (
    AsyncConnection,
    AsyncTransaction,
    Connection,
    Notice,
    Notify,
    OutOfOrderTransactionNesting,
    Result,
    Rollback,
    Transaction,
    TransactionState,
    TransactionStatus,
    *(getattr(errors, _name) for _name in errors.__all__),
):
    _cls.__module__ = "hark"
del _cls
