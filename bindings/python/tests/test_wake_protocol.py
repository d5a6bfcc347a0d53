"""The core's wait protocol from Python: while a listener keeps up (it is busy with the
notifications it was handed), a notifier's commit sends it no wake-up datagram, in the blocking
generator as in the asyncio one. Observable: the descriptor does not become readable, and the
next notification is there all the same."""

from __future__ import annotations

import asyncio
import select
from pathlib import Path

import hark


def readable(c: hark.Connection | hark.AsyncConnection) -> bool:
    return bool(select.select([c.fileno()], [], [], 0.05)[0])


def test_a_busy_listener_costs_its_notifier_no_wake_up(conn: hark.Connection, other: hark.Connection) -> None:
    conn.listen("ch")
    other.notify("ch", "first")
    got = []
    for n in conn.notifies(timeout=5):
        got.append(n.payload)
        if n.payload == "first":
            # Still handling "first": a commit now finds the wake-up flag raised.
            other.notify("ch", "second")
            assert not readable(conn), "the commit sent a wake-up to a listener that is busy"
        else:
            break
    assert got == ["first", "second"]


def test_an_idle_listener_is_woken(conn: hark.Connection, other: hark.Connection) -> None:
    # The other half of the protocol: once it has run dry and sleeps, a commit does wake it.
    conn.listen("ch")
    assert list(conn.notifies(timeout=0)) == []
    other.notify("ch", "wake")
    assert readable(conn)
    assert [n.payload for n in conn.notifies(timeout=0)] == ["wake"]


def test_a_busy_async_listener_costs_its_notifier_no_wake_up(qdir: Path, other: hark.Connection) -> None:
    async def main() -> list[str]:
        got = []
        async with await hark.AsyncConnection.connect(qdir) as conn:
            await conn.listen("ch")
            other.notify("ch", "first")
            async for n in conn.notifies(timeout=5):
                got.append(n.payload)
                if n.payload == "first":
                    other.notify("ch", "second")
                    assert not readable(conn), "the commit sent a wake-up to a listener that is busy"
                else:
                    break
        return got

    assert asyncio.run(main()) == ["first", "second"]
