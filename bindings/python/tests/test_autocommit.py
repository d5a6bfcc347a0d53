"""connect(autocommit=...): hark's default (each statement commits on its own) and psycopg's
(the first statement opens a block that commit() ends)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import hark
from hark.pq import TransactionStatus


def payloads(listener: hark.Connection) -> list[str]:
    return [n.payload for n in listener.notifies(timeout=0)]


def test_default_commits_each_statement(qdir: Path, other: hark.Connection) -> None:
    other.listen("ch")
    with hark.connect(qdir) as conn:
        assert conn.autocommit
        conn.execute("NOTIFY ch, 'a'")
        conn.notify("ch", "b")
        assert conn.info.transaction_status is TransactionStatus.IDLE
        assert payloads(other) == ["a", "b"]


def test_without_autocommit_nothing_is_sent_before_commit(qdir: Path, other: hark.Connection) -> None:
    other.listen("ch")
    conn = hark.connect(qdir, autocommit=False)
    assert not conn.autocommit
    conn.execute("NOTIFY ch, 'a'")
    assert conn.info.transaction_status is TransactionStatus.INTRANS
    conn.notify("ch", "b")
    assert payloads(other) == []
    conn.commit()
    assert conn.info.transaction_status is TransactionStatus.IDLE
    assert payloads(other) == ["a", "b"]
    # The next statement opens the next block; rollback() discards it.
    conn.notify("ch", "discarded")
    conn.rollback()
    assert payloads(other) == []
    # Leaving `with conn:` commits, as psycopg's does.
    with conn:
        conn.notify("ch", "c")
        assert payloads(other) == []
    assert conn.closed and payloads(other) == ["c"]


def test_without_autocommit_listen_takes_effect_at_commit(qdir: Path, other: hark.Connection) -> None:
    with hark.connect(qdir, autocommit=False) as conn:
        conn.execute("LISTEN ch")
        assert conn.listening_channels() == []
        other.notify("ch", "before commit")
        conn.commit()
        assert conn.listening_channels() == ["ch"]
        other.notify("ch", "after commit")
        assert [n.payload for n in conn.notifies(timeout=0)] == ["after commit"]


def test_transaction_block_without_autocommit(qdir: Path, other: hark.Connection) -> None:
    other.listen("ch")
    with hark.connect(qdir, autocommit=False) as conn:
        # Entered while idle, the block is the transaction and commits when it ends.
        with conn.transaction():
            conn.notify("ch", "a")
        assert conn.info.transaction_status is TransactionStatus.IDLE
        assert payloads(other) == ["a"]
        # Entered inside the implicit block, it is a savepoint; commit() still decides.
        conn.notify("ch", "b")
        with conn.transaction():
            conn.notify("ch", "c")
        assert payloads(other) == []
        conn.commit()
        assert payloads(other) == ["b", "c"]


def test_autocommit_changes_only_outside_a_block(qdir: Path, other: hark.Connection) -> None:
    other.listen("ch")
    with hark.connect(qdir, autocommit=False) as conn:
        conn.notify("ch", "a")
        with pytest.raises(hark.ProgrammingError, match="can't change 'autocommit' now: connection in transaction status INTRANS"):
            conn.autocommit = True
        conn.commit()
        conn.autocommit = True
        conn.notify("ch", "b")
        assert payloads(other) == ["a", "b"]
        conn.set_autocommit(False)
        conn.notify("ch", "c")
        assert payloads(other) == []


def test_async_autocommit(qdir: Path, other: hark.Connection) -> None:
    other.listen("ch")

    async def main() -> None:
        async with await hark.connect_async(qdir, autocommit=False) as conn:
            await conn.notify("ch", "a")
            assert payloads(other) == []
            await conn.commit()
            assert payloads(other) == ["a"]
            with pytest.raises(AttributeError):
                conn.autocommit = True  # type: ignore[misc]
            await conn.set_autocommit(True)
            await conn.notify("ch", "b")
            assert payloads(other) == ["b"]

    asyncio.run(main())


def test_info(qdir: Path) -> None:
    conn = hark.connect(qdir)
    info = conn.info
    assert info.backend_pid == conn.pid
    assert info.dsn == str(qdir)
    assert info.status is hark.pq.ConnStatus.OK
    assert info.transaction_status is hark.TransactionStatus.IDLE is hark.pq.TransactionStatus.IDLE
    assert hark.pq.TransactionStatus.INERROR == 3  # libpq's values
    conn.close()
    assert info.status is hark.pq.ConnStatus.BAD
    assert info.transaction_status is TransactionStatus.UNKNOWN


def test_empty_dir_means_the_default(qdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARK_DIR", str(qdir))
    with hark.connect("") as conn:
        assert conn.dir == qdir
