"""The SQLite extension's benchmarks: one row INSERT plus its event per transaction, WAL,
synchronous=NORMAL, one writer process and one listener process, both Python, against honker
(which stores notifications in the SQLite file and polls) and plain hark in the same run.

    python bench/sqlite_bench.py [--quick] [--runs 3]    (needs hark, hark.sqlite and honker)

Scenarios (medians of the runs):
  latency     commit start → listener receipt, p50/p99, writer paced so the listener sleeps, and
              the median time of the writer's commit call in that run (paced, so cold):
              hark-sqlite (trigger event), plain hark NOTIFY (no SQLite), honker, and the
              machine's floor for two Python processes: the same writer and listener passing a
              number through a pipe (no database, no queue)
  throughput  rows with events per second, writer → listener, until the listener has them all
  cost        writer time per transaction (the median of chunks of 1,000, the variants taking
              turns over several rounds, median of the rounds): INSERT alone, with the
              extension loaded (no trigger), with a trigger writing a row of another table (the
              outbox's SQLite cost), and INSERT + event (the full path), each as BEGIN, INSERT,
              COMMIT; and the COMMIT statement's own time (median); then INSERT alone and
              INSERT + event as one statement in autocommit mode (`-auto`)
Prints a JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COST_ROUNDS = 5

SCHEMA = "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, email TEXT NOT NULL, total INTEGER NOT NULL)"


# ----- roles, run as `python sqlite_bench.py --role NAME ARGS...` ----------------------------

def open_sqlite(db: str, qdir: str | None, extension: bool = True):  # type: ignore[no-untyped-def]
    import sqlite3

    import hark.sqlite

    c = sqlite3.connect(db, isolation_level=None)
    if extension:
        hark.sqlite.load(c, qdir)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=NORMAL")
    return c


def role_listener(kind: str, target: str, count: int) -> None:
    """Receives `count` events; prints the receipt time of each (by order id) as JSON."""
    recv: dict[int, int] = {}
    if kind == "pipe":
        fd = os.open(target, os.O_RDONLY)
        print("READY", flush=True)
        buf = b""
        while len(recv) < count:
            chunk = os.read(fd, 4096)
            t = time.monotonic_ns()
            assert chunk, "writer closed the pipe"
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                recv[int(line)] = t
    elif kind == "honker":
        import asyncio

        import honker

        async def run() -> None:
            db = honker.open(target)
            it = db.listen("events").__aiter__()
            print("READY", flush=True)
            while len(recv) < count:
                n = await asyncio.wait_for(it.__anext__(), timeout=120)
                recv[int(str(n.payload))] = time.monotonic_ns()

        asyncio.run(run())
    else:
        import hark

        with hark.connect(target) as conn:
            conn.listen("events")
            print("READY", flush=True)
            # One generator for the whole run, as a program that listens writes it.
            for n in conn.notifies(timeout=120):
                t = time.monotonic_ns()
                p = n.payload
                oid = json.loads(p)["data"]["id"] if p.startswith("{") else int(p)
                recv[oid] = t
                if len(recv) >= count:
                    break
    print(json.dumps({str(k): v for k, v in recv.items()}), flush=True)


def role_writer(kind: str, db: str, qdir: str, count: int, pace_us: int) -> None:
    """Commits `count` transactions of one INSERT plus its event; prints each commit's start time
    (by order id) and the median time of the commit call as JSON. Waits for a line on stdin
    before starting."""
    sent: dict[int, int] = {}
    took: list[int] = []
    if kind == "pipe":
        fd = os.open(qdir, os.O_WRONLY)
    elif kind == "honker":
        import honker

        h = honker.open(db)
        with h.transaction() as tx:
            tx.execute(SCHEMA)
    elif kind == "hark":
        import hark

        conn = hark.connect(qdir)
    else:
        c = open_sqlite(db, qdir)
        c.execute(SCHEMA)
        c.execute("SELECT hark_notify_changes('orders', 'events')")
    print("READY", flush=True)
    sys.stdin.readline()
    for i in range(1, count + 1):
        if kind == "pipe":
            sent[i] = time.monotonic_ns()
            os.write(fd, b"%d\n" % i)
            took.append(time.monotonic_ns() - sent[i])
        elif kind == "honker":
            tx = h.transaction()
            tx.__enter__()
            tx.execute("INSERT INTO orders (id, email, total) VALUES (?, ?, ?)", [i, "bench@example.com", i])
            tx.notify("events", str(i))
            sent[i] = time.monotonic_ns()
            tx.__exit__(None, None, None)
            took.append(time.monotonic_ns() - sent[i])
        elif kind == "hark":
            conn.execute("BEGIN")
            conn.notify("events", str(i))
            sent[i] = time.monotonic_ns()
            conn.commit()
            took.append(time.monotonic_ns() - sent[i])
        else:
            c.execute("BEGIN")
            c.execute("INSERT INTO orders (id, email, total) VALUES (?, ?, ?)", (i, "bench@example.com", i))
            sent[i] = time.monotonic_ns()
            c.execute("COMMIT")
            took.append(time.monotonic_ns() - sent[i])
        if pace_us:
            end = time.monotonic_ns() + pace_us * 1000
            while time.monotonic_ns() < end:
                time.sleep(0.0002)
    print(json.dumps({"sent": sent, "commit_ns": statistics.median(took) if took else None}), flush=True)


def role_cost(variant: str, db: str, qdir: str, count: int) -> None:
    """Writer time per transaction of one INSERT, for a variant of what rides along (`-auto`:
    the INSERT alone is the transaction, in autocommit mode)."""
    auto = variant.endswith("-auto")
    variant = variant.removesuffix("-auto")
    c = open_sqlite(db, qdir, extension=variant != "plain")
    c.execute(SCHEMA)
    if variant == "outbox-sql":
        c.execute("CREATE TABLE copy (id INTEGER PRIMARY KEY, channel TEXT, payload TEXT)")
        c.execute(
            "CREATE TRIGGER t AFTER INSERT ON orders BEGIN INSERT INTO copy (channel, payload) VALUES ('events', "
            "'{\"table\" : \"orders\", \"action\" : \"INSERT\", \"data\" : ' || json_object('id', NEW.id, 'email', "
            "NEW.email, 'total', NEW.total) || '}'); END"
        )
    elif variant == "event":
        c.execute("SELECT hark_notify_changes('orders', 'events')")
    for i in range(1, 201):  # warm-up
        c.execute("INSERT INTO orders (email, total) VALUES (?, ?)", ("warm@example.com", i))
    # Timed in chunks of 1,000 transactions (each spans the same number of WAL checkpoints),
    # reported as the median chunk's time per transaction, so that a moment of the machine's
    # other work does not weigh on the figure.
    chunk = min(1000, count)
    times = []
    for start in range(0, count - chunk + 1, chunk):
        t0 = time.perf_counter_ns()
        if auto:
            for i in range(start, start + chunk):
                c.execute("INSERT INTO orders (email, total) VALUES (?, ?)", ("bench@example.com", i))
        else:
            for i in range(start, start + chunk):
                c.execute("BEGIN")
                c.execute("INSERT INTO orders (email, total) VALUES (?, ?)", ("bench@example.com", i))
                c.execute("COMMIT")
        times.append((time.perf_counter_ns() - t0) / chunk)
    if auto:
        print(json.dumps({"ns_per_txn": statistics.median(times), "chunks": times, "commit_ns": None}), flush=True)
        return
    # Then the COMMIT statement alone (its median): with the event, what lies between the start
    # of the COMMIT and the publication; without, SQLite's own part of it.
    commits = []
    for i in range(min(2000, count)):
        c.execute("BEGIN")
        c.execute("INSERT INTO orders (email, total) VALUES (?, ?)", ("bench@example.com", i))
        t0 = time.perf_counter_ns()
        c.execute("COMMIT")
        commits.append(time.perf_counter_ns() - t0)
    print(json.dumps({"ns_per_txn": statistics.median(times), "chunks": times, "commit_ns": statistics.median(commits)}),
          flush=True)


# ----- the coordinator ---------------------------------------------------------------------------

def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, "--role", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def ready(p: subprocess.Popen[str]) -> None:
    assert p.stdout is not None
    line = p.stdout.readline().strip()
    assert line == "READY", line


def result(p: subprocess.Popen[str]) -> dict[str, object]:
    assert p.stdout is not None
    out = p.stdout.readline()
    p.wait(timeout=300)
    return json.loads(out)  # type: ignore[no-any-return]


def by_id(times: dict[str, int]) -> dict[int, int]:
    return {int(k): v for k, v in times.items()}


def pair(kind: str, count: int, pace_us: int, tmp: Path) -> tuple[dict[int, int], dict[int, int], float | None]:
    """Runs a writer and a listener: (commit start by id, receipt by id, the writer's median
    commit call in µs)."""
    db, qdir = str(tmp / f"{kind}.db"), str(tmp / f"{kind}-queue")
    for f in Path(tmp).glob(f"{kind}.db*"):
        f.unlink()
    if kind == "pipe":
        if os.path.exists(qdir):
            os.unlink(qdir)
        os.mkfifo(qdir)
        # Opening a FIFO waits for the other end: the listener first, in the background.
        lsn = spawn("listener", kind, qdir, str(count))
        w = spawn("writer", kind, db, qdir, str(count), str(pace_us))
        ready(lsn)
        ready(w)
    else:
        w = spawn("writer", kind, db, qdir, str(count), str(pace_us))
        ready(w)  # the writer made the schema (honker's too)
        listen_target = db if kind == "honker" else qdir
        lsn = spawn("listener", kind, listen_target, str(count))
        ready(lsn)
    time.sleep(0.2)
    assert w.stdin is not None
    w.stdin.write("go\n")
    w.stdin.flush()
    wrote = result(w)
    recv = result(lsn)
    commit = wrote["commit_ns"]
    return by_id(wrote["sent"]), by_id(recv), None if commit is None else float(commit) / 1000  # type: ignore[arg-type]


def pct(v: list[float], q: float) -> float:
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def latency(kind: str, n: int, tmp: Path) -> tuple[float, float, float | None]:
    """p50 and p99 of commit start → receipt, and the median time of the writer's commit call
    (the part of the latency the writer spends before the listener can be woken)."""
    sent, recv, commit = pair(kind, n, 1000, tmp)
    lat = [(recv[i] - sent[i]) / 1000 for i in sent]
    return pct(lat, 0.5), pct(lat, 0.99), commit


def throughput(kind: str, n: int, tmp: Path) -> float:
    sent, recv, _ = pair(kind, n, 0, tmp)
    return n / ((max(recv.values()) - min(sent.values())) / 1e9)


def cost(variant: str, n: int, tmp: Path) -> tuple[float, float]:
    db = str(tmp / f"cost-{variant}.db")
    for f in Path(tmp).glob(f"cost-{variant}.db*"):
        f.unlink()
    p = subprocess.run([sys.executable, __file__, "--role", "cost", variant, db, str(tmp / "cost-queue"), str(n)],
                       capture_output=True, text=True, check=True, timeout=300)
    r = json.loads(p.stdout.splitlines()[-1])
    return float(r["ns_per_txn"]) / 1000, float(r["commit_ns"] or 0) / 1000


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--role":
        role, a = sys.argv[2], sys.argv[3:]
        if role == "listener":
            role_listener(a[0], a[1], int(a[2]))
        elif role == "writer":
            role_writer(a[0], a[1], a[2], int(a[3]), int(a[4]))
        else:
            role_cost(a[0], a[1], a[2], int(a[3]))
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    n_lat, n_tp, n_cost = (200, 500, 500) if args.quick else (2000, 20000, 20000)
    runs: dict[str, list[float]] = {}

    def add(k: str, v: float) -> None:
        runs.setdefault(k, []).append(v)

    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="hark-sqlite-bench-", dir=base) as t:
            tmp = Path(t)
            for kind in ("hark-sqlite", "hark", "honker", "pipe"):
                p50, p99, commit = latency(kind, n_lat if kind != "honker" else n_lat // 2, tmp)
                add(f"latency_p50_us.{kind}", p50)
                add(f"latency_p99_us.{kind}", p99)
                if commit is not None:
                    add(f"latency_commit_us.{kind}", commit)
            for kind in ("hark-sqlite", "honker"):
                add(f"rows_per_s.{kind}", throughput(kind, n_tp if kind != "honker" else n_tp // 4, tmp))
            # The variants take turns, a few rounds each, so that the machine's slower and
            # faster moments fall on all of them alike; the run's figure is the rounds' median.
            rounds: dict[str, list[tuple[float, float]]] = {}
            for _ in range(COST_ROUNDS):
                for variant in ("plain", "loaded", "outbox-sql", "event", "plain-auto", "event-auto"):
                    rounds.setdefault(variant, []).append(cost(variant, n_cost // COST_ROUNDS, tmp))
            for variant, r in rounds.items():
                add(f"us_per_txn.{variant}", statistics.median(x for x, _ in r))
                if not variant.endswith("-auto"):
                    add(f"us_per_commit.{variant}", statistics.median(y for _, y in r))
    med = {k: statistics.median(v) for k, v in runs.items()}
    for k, v in sorted(med.items()):
        print(f"{k:32} {v:12.1f}   runs: {', '.join(f'{x:.1f}' for x in runs[k])}")
    print(json.dumps(med))
    return 0


if __name__ == "__main__":
    sys.exit(main())
