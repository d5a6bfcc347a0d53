"""An asyncio listener: it follows the orders events (see orders.py) with ``async for``, while
the event loop goes on with other work, here a heartbeat.

The wait is driven by the connection's descriptor through the event loop (``loop.add_reader``):
no thread per wait and no polling.

    python async_listener.py              # demo: runs orders.py's application in another process
    python async_listener.py DIR N        # print N order events from the queue in DIR
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

import hark

HERE = Path(__file__).resolve().parent


def describe(n: hark.Notify) -> str:
    event = json.loads(n.payload)
    data = event["data"]
    return f"{event['table']}: {event['action']} id={data['id']} email={data['email']} total={data['total']} (pid {n.pid})"


async def heartbeat(beats: list[int]) -> None:
    while True:
        await asyncio.sleep(0.01)
        beats[0] += 1


async def listen(queue_dir: Path, count: int, ready: asyncio.Event | None = None) -> list[hark.Notify]:
    received: list[hark.Notify] = []
    async with await hark.connect_async(queue_dir) as conn:
        await conn.listen("events")
        if ready is not None:
            ready.set()
        async for n in conn.notifies(stop_after=count, timeout=30):
            print(describe(n), flush=True)
            received.append(n)
    return received


async def demo() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        queue_dir = Path(tmp) / "queue"
        beats = [0]
        ticker = asyncio.create_task(heartbeat(beats))
        ready = asyncio.Event()
        listener = asyncio.create_task(listen(queue_dir, 4, ready))
        await ready.wait()
        app = await asyncio.create_subprocess_exec(
            sys.executable, str(HERE / "orders.py"), "app", str(queue_dir), str(Path(tmp) / "orders.db"),
            stdout=asyncio.subprocess.DEVNULL,
        )
        received = await listener
        ticker.cancel()
        if await app.wait() != 0:
            print("demo: the application failed", file=sys.stderr)
            return 1
        actions = [json.loads(n.payload)["action"] for n in received]
        if actions != ["INSERT", "INSERT", "UPDATE", "DELETE"] or len({n.pid for n in received}) != 1:
            print(f"demo: unexpected events {actions}", file=sys.stderr)
            return 1
        if beats[0] == 0:
            print("demo: the event loop was blocked while waiting", file=sys.stderr)
            return 1
        print(f"demo: {len(received)} events; the event loop ran {beats[0]} heartbeats meanwhile")
        return 0


def main(argv: list[str]) -> int:
    if not argv:
        return asyncio.run(demo())
    if len(argv) == 2:
        asyncio.run(listen(Path(argv[0]), int(argv[1])))
        return 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
