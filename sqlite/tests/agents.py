"""Processes for the crash tests, started as `python agents.py ROLE ARGS...` (never imported by
pytest as a test module). Each loads the extension from $HARK_SQLITE_EXTENSION."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import sys
import time
from pathlib import Path

import hark
import hark.sqlite


def open_db(db: str, qdir: str, journal: str) -> sqlite3.Connection:
    c = hark.sqlite.connect(db, queue=qdir, isolation_level=None, timeout=60)
    c.execute(f"PRAGMA journal_mode={journal}")
    c.execute("PRAGMA synchronous=NORMAL")
    return c


def writer(db: str, qdir: str, journal: str, name: str) -> None:
    """Commits forever: 1 to 3 orders per transaction, a savepoint rolled back, a statement that
    fails its CHECK part-way, every fifth transaction rolled back; and, one time in four,
    statements in autocommit mode instead (one that commits, one that fails part-way and is
    undone, one under OR FAIL that keeps its first row)."""
    c = open_db(db, qdir, journal)
    rng = random.Random()
    seq = 0
    while True:
        seq += 1
        if rng.random() < 0.25:
            c.execute("INSERT INTO orders (email, total) VALUES (?, 1)", (f"{name}:{seq}:auto",))
            try:
                c.execute("INSERT INTO orders (email, total) VALUES (?, 1), ('bad', -1)", (f"failed:{name}:{seq}",))
            except sqlite3.IntegrityError:
                pass
            try:
                c.execute("INSERT OR FAIL INTO orders (email, total) VALUES (?, 1), ('bad', -1)", (f"{name}:{seq}:fail",))
            except sqlite3.IntegrityError:
                pass
            continue
        c.execute("BEGIN IMMEDIATE")
        for k in range(rng.randint(1, 3)):
            c.execute("INSERT INTO orders (email, total) VALUES (?, ?)", (f"{name}:{seq}:{k}", k))
        if rng.random() < 0.3:
            c.execute("SAVEPOINT s")
            c.execute("INSERT INTO orders (email, total) VALUES (?, 1)", (f"undone:{name}:{seq}",))
            c.execute("ROLLBACK TO s")
        if rng.random() < 0.3:
            try:
                c.execute("INSERT INTO orders (email, total) VALUES (?, 1), ('bad', -1)", (f"failed:{name}:{seq}",))
            except sqlite3.IntegrityError:
                pass
        if rng.random() < 0.2:
            c.execute("ROLLBACK")
        else:
            c.execute("COMMIT")


def publisher(db: str, qdir: str, journal: str) -> None:
    """A live peer: publishes what dead writers left, every few milliseconds."""
    c = open_db(db, qdir, journal)
    while True:
        c.execute("SELECT hark_publish()")
        time.sleep(random.random() * 0.02)


def listener(qdir: str, violations: str) -> None:
    """Listens and checks what it gets: order ids strictly increasing, no rolled-back or failed
    row. Prints READY once listening."""
    with hark.connect(qdir) as conn:
        conn.listen("events")
        print("READY", flush=True)
        last = 0
        for n in conn.notifies():
            e = json.loads(n.payload)
            oid, email = e["data"]["id"], e["data"]["email"]
            if oid <= last or email.startswith(("undone:", "failed:")) or email == "bad":
                Path(violations).write_text(f"after {last}: {n.payload}\n")
                sys.exit(3)
            last = oid


def write_and_park(db: str, qdir: str, journal: str, email: str) -> None:
    """One committed order; with the test build's park points the process stops where told."""
    c = open_db(db, qdir, journal)
    c.execute("INSERT INTO orders (email, total) VALUES (?, 1)", (email,))
    print("COMMITTED", flush=True)


if __name__ == "__main__":
    role, args = sys.argv[1], sys.argv[2:]
    {"writer": writer, "publisher": publisher, "listener": listener, "write_and_park": write_and_park}[role](*args)
