"""The psycopg 3 listener, moved onto hark: LISTEN on a channel and print what psql would print.

    python listener.py [--count N] [CHANNEL]    (queue directory: $HARK_DIR, or hark's default)
"""

from __future__ import annotations

import argparse

import hark


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("channel", nargs="?", default="events")
    ap.add_argument("--count", type=int, default=None, help="exit after this many notifications")
    args = ap.parse_args()
    with hark.connect() as conn:
        conn.listen(args.channel)
        print(f"listening on {args.channel!r} as PID {conn.pid}", flush=True)
        for n in conn.notifies(stop_after=args.count):
            if n.payload:
                print(f'Asynchronous notification "{n.channel}" with payload "{n.payload}" '
                      f"received from server process with PID {n.pid}.", flush=True)
            else:
                print(f'Asynchronous notification "{n.channel}" received from server process '
                      f"with PID {n.pid}.", flush=True)


if __name__ == "__main__":
    main()
