"""psycopg 3's tests/test_notify_async.py (commit c079c37c959a) on hark's AsyncConnection, with
the import changed and each other changed line marked ``# hark:`` (see test_psycopg_notify.py,
and the README's "psycopg → hark"). Each test is psycopg's coroutine, run with asyncio.run."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from pathlib import Path
from time import time
from typing import Any

import pytest

import hark as psycopg
from hark import Notify


@pytest.fixture
def dsn(qdir: Path) -> str:
    return str(qdir)


@pytest.fixture
def aconn_cls() -> type[psycopg.AsyncConnection]:
    return psycopg.AsyncConnection


@pytest.fixture
def aconn(aconn_cls: type[psycopg.AsyncConnection], dsn: str) -> Iterator[psycopg.AsyncConnection]:
    # hark: psycopg's fixture connection has psycopg's default, autocommit=False.
    conn = asyncio.run(aconn_cls.connect(dsn, autocommit=False))
    yield conn
    asyncio.run(conn.close())


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def spawn(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    return asyncio.create_task(coro)


async def gather(*tasks: asyncio.Task[None]) -> None:
    await asyncio.wait_for(asyncio.gather(*tasks), 30)


def test_notify_handlers(aconn: psycopg.AsyncConnection) -> None:
    async def test() -> None:
        nots1 = []
        nots2 = []

        def cb1(n: Notify) -> None:
            nots1.append(n)

        aconn.add_notify_handler(cb1)
        aconn.add_notify_handler(lambda n: nots2.append(n))

        await aconn.set_autocommit(True)
        await aconn.execute("listen foo")
        await aconn.execute("notify foo, 'n1'")

        assert len(nots1) == 1
        n = nots1[0]
        assert n.channel == "foo"
        assert n.payload == "n1"
        assert n.pid == aconn.info.backend_pid  # hark: aconn.pgconn

        assert len(nots2) == 1
        assert nots2[0] == nots1[0]

        aconn.remove_notify_handler(cb1)
        await aconn.execute("notify foo, 'n2'")

        assert len(nots1) == 1
        assert len(nots2) == 2
        n = nots2[1]
        assert isinstance(n, Notify)
        assert n.channel == "foo"
        assert n.payload == "n2"
        assert n.pid == aconn.info.backend_pid  # hark: aconn.pgconn
        assert hash(n)

        with pytest.raises(ValueError):
            aconn.remove_notify_handler(cb1)

    run(test())


def test_notify(aconn_cls: type[psycopg.AsyncConnection], aconn: psycopg.AsyncConnection, dsn: str) -> None:
    async def test() -> None:
        npid = None

        async def notifier() -> None:
            async with await aconn_cls.connect(dsn, autocommit=True) as nconn:
                nonlocal npid
                npid = nconn.info.backend_pid  # hark: nconn.pgconn

                await asyncio.sleep(0.25)
                await nconn.execute("notify foo, '1'")
                await asyncio.sleep(0.25)
                await nconn.execute("notify foo, '2'")

        async def receiver() -> None:
            await aconn.set_autocommit(True)
            cur = aconn.cursor()
            await cur.execute("listen foo")
            gen = aconn.notifies()
            async for n in gen:
                ns.append((n, time()))
                if len(ns) >= 2:
                    await gen.aclose()

        ns: list[tuple[Notify, float]] = []
        t0 = time()
        workers = [spawn(notifier()), spawn(receiver())]
        await gather(*workers)
        assert len(ns) == 2

        # hark: lower bounds only, as in test_psycopg_notify.py.
        n, t1 = ns[0]
        assert n.pid == npid
        assert n.channel == "foo"
        assert n.payload == "1"
        assert t1 - t0 >= 0.25

        n, t1 = ns[1]
        assert n.pid == npid
        assert n.channel == "foo"
        assert n.payload == "2"
        assert t1 - t0 >= 0.5

    run(test())


def test_stop_after_batch(aconn_cls: type[psycopg.AsyncConnection], aconn: psycopg.AsyncConnection, dsn: str) -> None:
    async def test() -> None:
        await aconn.set_autocommit(True)
        await aconn.execute("listen foo")

        async def notifier() -> None:
            async with await aconn_cls.connect(dsn, autocommit=True) as nconn:
                async with nconn.transaction():
                    await nconn.execute("notify foo, '1'")
                    await nconn.execute("notify foo, '2'")

        worker = spawn(notifier())
        try:
            ns = [n async for n in aconn.notifies(timeout=1.0, stop_after=1)]  # hark: psycopg's alist()
            assert len(ns) == 2
            assert ns[0].payload == "1"
            assert ns[1].payload == "2"
        finally:
            await gather(worker)

    run(test())
