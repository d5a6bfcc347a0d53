"""The benchmark roles of `hark bench`, played by hark's Python package, so that a Python listener is
measured by the same coordinator with the same method as the Rust one:

    hark_python_peer.py --role listener DIR MAX_PAYLOAD CHANNEL NOTIFIERS COUNT MODE
    hark_python_peer.py --role notifier DIR MAX_PAYLOAD CHANNEL INDEX COUNT PER_TXN PAYLOAD_BYTES MODE

The protocol on standard input/output is the one bench/src/roles.rs documents.
"""

import sys

import hark

from roles import lat_line, now_ns, say



def listener(a: list[str]) -> None:
    conn = hark.connect(a[0], max_payload=int(a[1]))
    channel, notifiers, count, mode = a[2], int(a[3]), int(a[4]), a[5]
    conn.listen(channel)
    say("READY")
    nxt = [0] * notifiers
    lat: list[float] = []
    got = 0
    for n in conn.notifies(timeout=120, stop_after=count):
        who, rest = n.payload.split(":", 1)
        v = int(rest[:20])
        if mode == "latency":
            lat.append((now_ns() - v) / 1000.0)
        else:
            w = int(who)
            if v != nxt[w]:
                raise SystemExit(f"hark_python_peer: notifier {w}: expected {nxt[w]}, got {v}")
            nxt[w] += 1
        got += 1
    if got != count:
        raise SystemExit(f"hark_python_peer: received {got} of {count}")
    if mode == "latency":
        say(lat_line(lat))
    else:
        say(f"END {now_ns()}")
    sys.stdin.readline()


def notifier(a: list[str]) -> None:
    conn = hark.connect(a[0], max_payload=int(a[1]))
    channel = a[2]
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
            conn.notify(channel, f"{head}{t:020d}{fill}")
            while now_ns() < t + 150_000:
                pass
            i += 1
            continue
        n = min(per_txn, count - i)
        if n == 1:
            conn.notify(channel, f"{head}{i:020d}{fill}")
            i += 1
            continue
        with conn.transaction():
            for _ in range(n):
                conn.notify(channel, f"{head}{i:020d}{fill}")
                i += 1
    say("DONE")
    sys.stdin.readline()


def main() -> int:
    if len(sys.argv) < 4 or sys.argv[1] != "--role" or sys.argv[2] not in ("listener", "notifier"):
        sys.stderr.write(__doc__ or "")
        return 64
    (listener if sys.argv[2] == "listener" else notifier)(sys.argv[3:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
