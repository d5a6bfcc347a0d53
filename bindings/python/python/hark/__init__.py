"""hark: PostgreSQL's LISTEN/NOTIFY between the processes of one machine, with no server.

Processes open the same queue directory and LISTEN, NOTIFY and commit with PostgreSQL's
semantics; the API follows psycopg 3's (the README lists where it differs)::

    import hark

    with hark.connect("/tmp/q") as conn:
        conn.listen("events")
        for n in conn.notifies(timeout=10):
            print(n.channel, n.payload, n.pid)
"""

from __future__ import annotations

from . import errors, pq, types
from ._async import AsyncConnection, connect_async
from ._base import Notice, NoticeHandler, Notify, NotifyHandler
from ._connection import Connection, connect
from ._cursor import AsyncCursor, Cursor
from ._info import ConnectionInfo
from ._result import Column, Result
from ._stats import QueueStats, ReceiverStat
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
    GapError,
    IncompatibleError,
    InUseError,
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
from .pq import TransactionStatus
from .types.json import Json, Jsonb

__all__ = [
    "AsyncConnection",
    "AsyncCursor",
    "AsyncTransaction",
    "ClosedError",
    "Column",
    "Connection",
    "ConnectionInfo",
    "CorruptedError",
    "Cursor",
    "DEFAULT_MAX_PAYLOAD",
    "DEFAULT_MAX_QUEUE_SIZE",
    "DataError",
    "DatabaseError",
    "Diagnostic",
    "DiskFullError",
    "Error",
    "GapError",
    "IncompatibleError",
    "InUseError",
    "InterfaceError",
    "InternalError",
    "InvalidArgumentError",
    "IoError",
    "Json",
    "Jsonb",
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
    "QueueStats",
    "ReceiverStat",
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
    "pq",
    "types",
]

# Show the public names where users meet them.
for _cls in (
    AsyncConnection,
    AsyncCursor,
    AsyncTransaction,
    Column,
    Connection,
    ConnectionInfo,
    Cursor,
    Json,
    Jsonb,
    Notice,
    Notify,
    OutOfOrderTransactionNesting,
    QueueStats,
    ReceiverStat,
    Result,
    Rollback,
    Transaction,
    TransactionState,
    TransactionStatus,
    *(getattr(errors, _name) for _name in errors.__all__),
):
    _cls.__module__ = "hark"
del _cls
