"""The benchmark roles of `hark bench`, played by honker (LISTEN/NOTIFY on SQLite), so that both
are measured by the same coordinator with the same method:

    honker_peer.py --role listener DB MAX_PAYLOAD CHANNEL NOTIFIERS COUNT MODE
    honker_peer.py --role notifier DB MAX_PAYLOAD CHANNEL INDEX COUNT PER_TXN PAYLOAD_BYTES MODE

The protocol on standard input/output is the one bench/src/roles.rs documents.
"""

import asyncio
import sys

import honker

from roles import lat_line, now_ns, say




async def listener(a) -> None:
    db, channel, notifiers, count, mode = honker.open(a[0]), a[2], int(a[3]), int(a[4]), a[5]
    it = db.listen(channel).__aiter__()
    say("READY")
    nxt = [0] * notifiers
    lat = []
    got = 0
    while got < count:
        n = await asyncio.wait_for(it.__anext__(), timeout=60)
        who, rest = str(n.payload).split(":", 1)
        v = int(rest[:20])
        if mode == "latency":
            lat.append((now_ns() - v) / 1000.0)
        else:
            if v != nxt[int(who)]:
                raise SystemExit(f"honker_peer: notifier {who}: expected {nxt[int(who)]}, got {v}")
            nxt[int(who)] += 1
        got += 1
    if mode == "latency":
        say(lat_line(lat))
    else:
        say(f"END {now_ns()}")
    sys.stdin.readline()


def notifier(a) -> None:
    db, channel = honker.open(a[0]), a[2]
    idx, count, per_txn, size, mode = int(a[3]), int(a[4]), int(a[5]), int(a[6]), a[7]
    head = f"{idx}:"
    fill = "x" * max(0, size - len(head) - 20)
    say("READY")
    sys.stdin.readline()
    say(f"START {now_ns()}")
    i = 0
    while i < count:
        if mode == "latency":
            t = now_ns()
            with db.transaction() as tx:
                tx.notify(channel, f"{head}{t:020d}{fill}")
            while now_ns() < t + 150_000:
                pass
            i += 1
            continue
        n = min(per_txn, count - i)
        with db.transaction() as tx:
            for _ in range(n):
                tx.notify(channel, f"{head}{i:020d}{fill}")
                i += 1
    say("DONE")
    sys.stdin.readline()


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[1] != "--role":
        sys.stderr.write(__doc__)
        return 64
    role, args = sys.argv[2], sys.argv[3:]
    if role == "listener":
        asyncio.run(listener(args))
    elif role == "notifier":
        notifier(args)
    else:
        sys.stderr.write(f"honker_peer: role {role} is not played by honker\n")
        return 64
    return 0


if __name__ == "__main__":
    sys.exit(main())
