"""``with conn.transaction():`` blocks, with psycopg 3's rules.

The outermost block (entered while the connection is idle) runs ``BEGIN`` and, on leaving,
``COMMIT``, or ``ROLLBACK`` if an exception escapes. A block entered inside another (or inside a
``BEGIN`` the application ran itself) is a savepoint: ``SAVEPOINT`` on entry, ``RELEASE`` on
success, ``ROLLBACK TO`` then ``RELEASE`` on an exception, so that the enclosing block goes on.
Raising `Rollback` leaves a block quietly, rolled back.
"""

from __future__ import annotations

import enum
from types import TracebackType
from typing import TYPE_CHECKING

from ._base import BaseConnection, logger
from .errors import TransactionStateError

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._async import AsyncConnection
    from ._connection import Connection


class Rollback(Exception):
    """Raise inside a ``transaction()`` block to roll it back and leave it without an error.

    ``Rollback(tx)`` leaves every block up to and including ``tx`` (the object the ``with``
    statement gave); a bare ``Rollback()`` leaves the innermost one only.
    """

    def __init__(self, transaction: BaseTransaction | None = None) -> None:
        super().__init__(transaction)
        self.transaction = transaction


class OutOfOrderTransactionNesting(TransactionStateError):
    """Transaction blocks were left in another order than they were entered."""


class TransactionState(enum.Enum):
    """Where a `Transaction` object is in its life."""

    NOT_STARTED = "not_started"
    ACTIVE = "active"
    COMMITTED = "committed"
    ROLLED_BACK_EXPLICITLY = "rolled_back_explicitly"
    ROLLED_BACK_WITH_ERROR = "rolled_back_with_error"


class BaseTransaction:
    def __init__(self, conn: BaseConnection, savepoint_name: str | None, force_rollback: bool) -> None:
        self._conn = conn
        self._savepoint_name = savepoint_name or ""
        self.force_rollback = force_rollback
        self.status = TransactionState.NOT_STARTED
        self._outer = False
        self._stack_index = -1

    @property
    def savepoint_name(self) -> str | None:
        """The savepoint this block uses; ``None`` for the outermost block without a name."""
        return self._savepoint_name or None

    def __repr__(self) -> str:
        sp = f" {self._savepoint_name!r}" if self._savepoint_name else ""
        return f"<hark.{type(self).__qualname__}{sp} ({self.status.value})>"

    def _enter(self) -> None:
        if self.status is not TransactionState.NOT_STARTED:
            raise TypeError("transaction blocks can be used only once")
        native = self._conn._native
        self._outer = native.transaction_status == "idle"
        if not self._outer and not self._savepoint_name:
            self._savepoint_name = f"_hark_{self._conn._num_transactions + 1}"
        if self._outer:
            native.begin()
        try:
            if self._savepoint_name:
                native.savepoint(self._savepoint_name)
        except BaseException:
            if self._outer:
                native.rollback()
            raise
        self._stack_index = self._conn._num_transactions
        self._conn._num_transactions += 1
        self.status = TransactionState.ACTIVE

    def _exit(self, exc: BaseException | None) -> bool:
        try:
            if exc is None and not self.force_rollback:
                self._commit()
                return False
            try:
                return self._rollback(exc)
            except OutOfOrderTransactionNesting:
                raise
            except Exception as exc2:
                # Do not hide the exception that is leaving the block behind this one.
                logger.warning("error ignored in rollback of %r: %s", self, exc2)
                return False
        finally:
            self._conn._after()

    def _pop(self, action: str) -> OutOfOrderTransactionNesting | None:
        self._conn._num_transactions -= 1
        if self._conn._num_transactions == self._stack_index:
            return None
        return OutOfOrderTransactionNesting(f"transaction {action} at the wrong nesting level: {self!r}")

    def _commit(self) -> None:
        ex = self._pop("commit")
        self.status = TransactionState.COMMITTED
        if ex:
            raise ex
        native = self._conn._native
        if self._savepoint_name and not self._outer:
            native.release(self._savepoint_name)
        if self._outer:
            native.commit()

    def _rollback(self, exc: BaseException | None) -> bool:
        ex = self._pop("rollback")
        explicit = isinstance(exc, Rollback) or self.force_rollback
        self.status = TransactionState.ROLLED_BACK_EXPLICITLY if explicit else TransactionState.ROLLED_BACK_WITH_ERROR
        if ex:
            raise ex
        native = self._conn._native
        if self._savepoint_name and not self._outer:
            native.rollback_to(self._savepoint_name)
            native.release(self._savepoint_name)
        if self._outer:
            native.rollback()
        # Swallow a Rollback aimed at this block (or at no block in particular).
        return isinstance(exc, Rollback) and (exc.transaction is None or exc.transaction is self)


class Transaction(BaseTransaction):
    """A ``with conn.transaction():`` block of a `hark.Connection`."""

    @property
    def connection(self) -> Connection:
        """The connection the block runs on."""
        return self._conn  # type: ignore[return-value]

    def __enter__(self) -> Self:
        self._enter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        return self._exit(exc)


class AsyncTransaction(BaseTransaction):
    """An ``async with conn.transaction():`` block of a `hark.AsyncConnection`."""

    @property
    def connection(self) -> AsyncConnection:
        """The connection the block runs on."""
        return self._conn  # type: ignore[return-value]

    async def __aenter__(self) -> Self:
        self._enter()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        return self._exit(exc)
