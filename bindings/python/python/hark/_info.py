"""``conn.info``: psycopg 3's ``ConnectionInfo``, the attributes that mean something for hark."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .pq import ConnStatus, TransactionStatus

if TYPE_CHECKING:
    from ._base import BaseConnection


class ConnectionInfo:
    """What ``conn.info`` tells about a connection, under psycopg's (libpq's) names."""

    vendor = "hark"

    def __init__(self, conn: BaseConnection) -> None:
        self._conn = conn

    @property
    def backend_pid(self) -> int:
        """The PID listeners see as the sender of this connection's notifications (``conn.pid``)."""
        return self._conn.pid

    @property
    def transaction_status(self) -> TransactionStatus:
        """``IDLE``, ``INTRANS`` or ``INERROR``; ``UNKNOWN`` once the connection is closed, as
        libpq's ``PQtransactionStatus``."""
        if self._conn.closed:
            return TransactionStatus.UNKNOWN
        return self._conn.transaction_status

    @property
    def status(self) -> ConnStatus:
        """``OK``, or ``BAD`` once the connection is closed."""
        return ConnStatus.BAD if self._conn.closed else ConnStatus.OK

    @property
    def dsn(self) -> str:
        """The queue directory, hark's connection string."""
        return str(self._conn.dir)

    def __repr__(self) -> str:
        return f"<hark.ConnectionInfo {self.dsn!r} pid={self.backend_pid} {self.transaction_status.name}>"
