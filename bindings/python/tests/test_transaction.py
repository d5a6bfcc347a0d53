"""with conn.transaction(): psycopg 3's blocks and savepoints over hark's transactions."""

from __future__ import annotations

import pytest

import hark


@pytest.fixture
def listener(conn: hark.Connection) -> hark.Connection:
    conn.listen("ch")
    return conn


def received(c: hark.Connection) -> list[str]:
    return [n.payload for n in c.notifies(timeout=0)]


def test_block_commits_on_success(listener: hark.Connection, other: hark.Connection) -> None:
    with other.transaction() as tx:
        assert other.transaction_status is hark.TransactionStatus.INTRANS
        assert tx.savepoint_name is None and tx.connection is other
        other.notify("ch", "a")
        other.notify("ch", "a")  # folded: same channel and payload in one transaction
        other.notify("ch", "b")
        assert received(listener) == []  # not before the commit
    assert tx.status is hark.TransactionState.COMMITTED
    assert other.transaction_status is hark.TransactionStatus.IDLE
    assert received(listener) == ["a", "b"]


def test_block_rolls_back_on_exception(listener: hark.Connection, other: hark.Connection) -> None:
    with pytest.raises(KeyError), other.transaction() as tx:
        other.notify("ch", "never")
        raise KeyError("boom")
    assert tx.status is hark.TransactionState.ROLLED_BACK_WITH_ERROR
    assert other.transaction_status is hark.TransactionStatus.IDLE
    assert received(listener) == []


def test_nested_blocks_are_savepoints(listener: hark.Connection, other: hark.Connection) -> None:
    with other.transaction():
        other.notify("ch", "outer 1")
        with pytest.raises(ValueError), other.transaction() as inner:
            assert inner.savepoint_name == "_hark_2"
            other.notify("ch", "inner, rolled back")
            raise ValueError
        with other.transaction(savepoint_name="kept"):
            other.notify("ch", "inner, released")
            with other.transaction():
                other.notify("ch", "innermost")
        other.notify("ch", "outer 2")
    assert received(listener) == ["outer 1", "inner, released", "innermost", "outer 2"]


def test_listen_inside_a_rolled_back_savepoint_is_undone(conn: hark.Connection) -> None:
    with conn.transaction():
        conn.listen("kept")
        with pytest.raises(RuntimeError), conn.transaction():
            conn.listen("undone")
            raise RuntimeError
        assert conn.listening_channels() == []  # uncommitted LISTENs are not listed yet
    assert conn.listening_channels() == ["kept"]


def test_rollback_exception_leaves_a_block_quietly(listener: hark.Connection, other: hark.Connection) -> None:
    with other.transaction():
        other.notify("ch", "outer")
        with other.transaction():
            other.notify("ch", "inner")
            raise hark.Rollback()
    assert received(listener) == ["outer"]
    with other.transaction() as outer:
        other.notify("ch", "gone")
        with other.transaction():
            other.notify("ch", "gone too")
            raise hark.Rollback(outer)
    assert outer.status is hark.TransactionState.ROLLED_BACK_EXPLICITLY
    assert received(listener) == []


def test_force_rollback(listener: hark.Connection, other: hark.Connection) -> None:
    with other.transaction(force_rollback=True):
        other.notify("ch", "dry run")
    assert received(listener) == []


def test_block_inside_an_explicit_begin_is_a_savepoint(listener: hark.Connection, other: hark.Connection) -> None:
    other.execute("BEGIN")
    with other.transaction() as tx:
        assert tx.savepoint_name == "_hark_1"
        other.notify("ch", "in savepoint")
    assert other.transaction_status is hark.TransactionStatus.INTRANS
    assert received(listener) == []
    other.commit()
    assert received(listener) == ["in savepoint"]


def test_commit_and_rollback_are_refused_inside_a_block(conn: hark.Connection) -> None:
    with conn.transaction():
        with pytest.raises(hark.TransactionStateError, match="commit"):
            conn.commit()
        with pytest.raises(hark.TransactionStateError, match="rollback"):
            conn.rollback()


def test_a_swallowed_error_makes_the_commit_fail(listener: hark.Connection, other: hark.Connection) -> None:
    with pytest.raises(hark.TransactionStateError), other.transaction():
        other.notify("ch", "lost with the block")
        with pytest.raises(hark.SqlSyntaxError):
            other.execute("SELECT no_such_function()")
    assert other.transaction_status is hark.TransactionStatus.IDLE
    assert received(listener) == []


def test_blocks_are_single_use(conn: hark.Connection) -> None:
    tx = conn.transaction()
    with tx:
        pass
    with pytest.raises(TypeError), tx:
        pass


def test_out_of_order_nesting_is_detected(conn: hark.Connection) -> None:
    outer = conn.transaction()
    inner = conn.transaction()
    outer.__enter__()
    inner.__enter__()
    with pytest.raises(hark.OutOfOrderTransactionNesting):
        outer.__exit__(None, None, None)
