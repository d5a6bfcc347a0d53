"""The cross-language peer in Python (same command line and output as core/examples/peer.rs).

    peer.py listen DIR CHANNEL COUNT [TIMEOUT_S]
    peer.py notify DIR CHANNEL PREFIX COUNT [PER_TXN]
"""

import sys

import hark


def main() -> int:
    a = sys.argv[1:]
    if len(a) >= 4 and a[0] == "listen":
        timeout = float(a[4]) if len(a) > 4 else 30.0
        with hark.connect(a[1]) as conn:
            conn.listen(a[2])
            print(f"READY {conn.pid}", flush=True)
            got = 0
            for n in conn.notifies(timeout=timeout, stop_after=int(a[3])):
                print(f"{n.channel}\t{n.payload}\t{n.pid}", flush=True)
                got += 1
            return 0 if got == int(a[3]) else 2
    if len(a) >= 5 and a[0] == "notify":
        count, per_txn = int(a[4]), int(a[5]) if len(a) > 5 else 1
        with hark.connect(a[1]) as conn:
            sent = 0
            while sent < count:
                with conn.transaction():
                    for _ in range(min(per_txn, count - sent)):
                        conn.notify(a[2], f"{a[3]}-{sent}")
                        sent += 1
            print(f"SENT {sent} {conn.pid}", flush=True)
        return 0
    sys.stderr.write(__doc__ or "")
    return 64


if __name__ == "__main__":
    sys.exit(main())
