"""libpq's enumerations, as psycopg 3 exposes them in ``psycopg.pq``: what
``conn.info.transaction_status`` and ``conn.info.status`` return."""

from __future__ import annotations

import enum

__all__ = ["ConnStatus", "TransactionStatus"]


class TransactionStatus(enum.IntEnum):
    """Where a connection stands with respect to transactions (libpq's ``PGTransactionStatusType``,
    with its values)."""

    IDLE = 0
    """Not in a transaction block: under autocommit every statement commits on its own."""
    ACTIVE = 1
    """A command is in progress (libpq's; a hark connection reports it never)."""
    INTRANS = 2
    """Inside a transaction block."""
    INERROR = 3
    """Inside a block that failed; only a rollback ends it."""
    UNKNOWN = 4
    """The connection is closed (``conn.info`` only; ``conn.transaction_status`` says ``IDLE``)."""


class ConnStatus(enum.IntEnum):
    """Whether a connection can be used (libpq's ``ConnStatusType``, the two values a hark
    connection takes)."""

    OK = 0
    BAD = 1
