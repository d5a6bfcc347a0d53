"""AsyncConnection: notifications through loop.add_reader, with no thread and no polling."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

import hark


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a test's coroutine with a watchdog."""
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_async_for_receives_from_another_connection(qdir: Path) -> None:
    async def main() -> list[hark.Notify]:
        async with await hark.connect_async(qdir) as listener, await hark.AsyncConnection.connect(qdir) as app:
            await listener.listen("events")
            loop = asyncio.get_running_loop()
            for i in range(3):
                loop.call_later(0.05 * (i + 1), app._native.notify, "events", f"n{i}")
            threads_before = threading.active_count()
            got = [n async for n in listener.notifies(stop_after=3, timeout=10)]
            assert threading.active_count() == threads_before  # no thread per wait
            assert all(n.pid == app.pid for n in got)
            return got

    got = run(main())
    assert [n.payload for n in got] == ["n0", "n1", "n2"]


def test_the_loop_keeps_running_while_a_coroutine_waits(qdir: Path) -> None:
    async def main() -> tuple[int, list[str]]:
        async with await hark.connect_async(qdir) as listener, await hark.connect_async(qdir) as app:
            await listener.listen("ch")
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            async def sender() -> None:
                await asyncio.sleep(0.3)
                await app.notify("ch", "done")

            t = asyncio.create_task(ticker())
            s = asyncio.create_task(sender())
            got = [n.payload async for n in listener.notifies(stop_after=1)]
            t.cancel()
            await s
            return ticks, got

    ticks, got = run(main())
    assert got == ["done"]
    assert ticks >= 10


def test_timeout_and_timeout_zero(qdir: Path) -> None:
    async def main() -> None:
        async with await hark.connect_async(qdir) as c:
            await c.listen("ch")
            t0 = time.monotonic()
            assert [n async for n in c.notifies(timeout=0)] == []
            assert time.monotonic() - t0 < 5  # no wait at all; only a gross hang fails this
            t0 = time.monotonic()
            assert [n async for n in c.notifies(timeout=0.3)] == []
            assert time.monotonic() - t0 >= 0.3
            await c.notify("ch", "self")
            assert [n.payload async for n in c.notifies(timeout=0)] == ["self"]

    run(main())


def test_stop_after_keeps_the_rest(qdir: Path) -> None:
    async def main() -> None:
        async with await hark.connect_async(qdir) as listener, await hark.connect_async(qdir) as app:
            await listener.listen("ch")
            for i in range(4):
                await app.notify("ch", str(i))  # four transactions, but all there at the first read
            assert [n.payload async for n in listener.notifies(stop_after=1, timeout=5)] == ["0", "1", "2", "3"]
            await app.notify("ch", "4")
            await app.notify("ch", "5")
            got = []
            async for n in listener.notifies(timeout=5):
                got.append(n.payload)
                break
            assert got == ["4"]
            assert [n.payload async for n in listener.notifies(timeout=0)] == ["5"]

    run(main())


def test_transactions_with_async_with(qdir: Path) -> None:
    async def main() -> None:
        async with await hark.connect_async(qdir) as listener, await hark.connect_async(qdir) as app:
            await listener.listen("ch")
            async with app.transaction() as tx:
                assert tx.connection is app
                await app.notify("ch", "a")
                with pytest.raises(ZeroDivisionError):
                    async with app.transaction():
                        await app.notify("ch", "rolled back")
                        1 / 0
                await app.notify("ch", "b")
            with pytest.raises(hark.TransactionStateError):
                async with app.transaction():
                    await app.commit()
            assert [n.payload async for n in listener.notifies(timeout=0)] == ["a", "b"]
            r = await app.execute("SELECT pg_listening_channels()")
            assert r == []
            assert (await listener.execute("SELECT pg_listening_channels()")) == [("ch",)]

    run(main())


def test_several_coroutines_wait_on_one_connection(qdir: Path) -> None:
    async def main() -> list[list[str]]:
        async with await hark.connect_async(qdir) as listener, await hark.connect_async(qdir) as app:
            await listener.listen("ch")

            async def consume() -> list[str]:
                return [n.payload async for n in listener.notifies(timeout=1.0)]

            tasks = [asyncio.create_task(consume()) for _ in range(3)]
            await asyncio.sleep(0.1)
            for i in range(6):
                await app.notify("ch", str(i))
                await asyncio.sleep(0.02)
            return list(await asyncio.gather(*tasks))

    results = run(main())
    everything = sorted(p for r in results for p in r)
    assert everything == [str(i) for i in range(6)]  # each delivered once, none stuck


def test_closing_wakes_a_waiting_coroutine(qdir: Path) -> None:
    async def main() -> None:
        c = await hark.connect_async(qdir)
        await c.listen("ch")

        async def consume() -> None:
            async for _ in c.notifies():
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        await c.close()
        with pytest.raises(hark.ClosedError):
            await task

    run(main())


def test_cancelling_a_wait_leaves_the_connection_usable(qdir: Path) -> None:
    async def main() -> None:
        async with await hark.connect_async(qdir) as c:
            await c.listen("ch")

            async def consume() -> None:
                async for _ in c.notifies():
                    pass

            task = asyncio.create_task(consume())
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await c.notify("ch", "after cancel")
            assert [n.payload async for n in c.notifies(timeout=1, stop_after=1)] == ["after cancel"]

    run(main())


def test_handlers_on_async_connection(qdir: Path) -> None:
    async def main() -> None:
        async with await hark.connect_async(qdir) as c:
            got: list[str] = []
            c.add_notify_handler(lambda n: got.append(n.payload))
            await c.listen("ch")
            await c.notify("ch", "h")
            assert got == ["h"]

    run(main())
