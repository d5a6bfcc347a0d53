"""The SIGKILL loop: writers, publishers and listeners killed at random for a while, then the
rows in SQLite and the events a listener that was never killed received must be equal sets, in
equal order, with no extras. Listeners that are killed and restarted check on the fly that what
they get is in commit order and never a row that was undone. $HARK_SQLITE_CHAOS_SECS sets the
length per journal mode (default 25 s; `make soak-sqlite` runs minutes)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import SCHEMA, open_db

import hark

AGENTS = str(Path(__file__).with_name("agents.py"))
SECS = float(os.environ.get("HARK_SQLITE_CHAOS_SECS", "25"))


def test_sigkill_loop_rows_and_events_are_equal(tmp_path: Path, journal: str) -> None:
    qdir, dbpath, violations = tmp_path / "queue", tmp_path / "app.db", tmp_path / "violation"
    db = open_db(dbpath, qdir, journal)
    db.executescript(SCHEMA)
    db.execute("SELECT hark_notify_changes('orders', 'events')")
    db.close()

    recorder = hark.connect(qdir)
    recorder.listen("events")
    received: list[tuple[int, str]] = []

    def record(timeout: float) -> None:
        for n in recorder.notifies(timeout=timeout):
            d = json.loads(n.payload)["data"]
            received.append((d["id"], d["email"]))

    roles = {
        **{f"w{i}": ["writer", str(dbpath), str(qdir), journal, f"w{i}"] for i in range(3)},
        "p0": ["publisher", str(dbpath), str(qdir), journal],
        **{f"l{i}": ["listener", str(qdir), str(violations)] for i in range(2)},
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str) -> None:
        procs[name] = subprocess.Popen([sys.executable, AGENTS, *roles[name]], stdout=subprocess.DEVNULL)

    for name in roles:
        start(name)
    rng = random.Random()
    kills = 0
    end = time.monotonic() + SECS
    while time.monotonic() < end:
        record(rng.uniform(0.02, 0.25))
        name = rng.choice(list(roles))
        procs[name].send_signal(signal.SIGKILL)
        procs[name].wait()
        kills += 1
        start(name)
        for n, p in procs.items():
            # A listener exits only on a violation (3); the others never exit by themselves.
            assert p.poll() is None or p.returncode == -signal.SIGKILL, f"{n} exited with {p.returncode}"
        assert not violations.exists(), violations.read_text()
    for p in procs.values():
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert not violations.exists(), violations.read_text()

    # What committed but was not yet published goes out when the database is next used.
    db = open_db(dbpath, qdir, journal)
    rows = [(r[0], r[1]) for r in db.execute("SELECT id, email FROM orders ORDER BY id")]
    deadline = time.monotonic() + 30
    while len(received) < len(rows) and time.monotonic() < deadline:
        record(0.5)
    record(0.5)
    print(f"{journal}: {kills} kills, {len(rows)} rows, {len(received)} events")
    assert kills >= SECS * 3
    assert len(rows) > 100
    assert not [e for e in rows if e[1].startswith(("undone:", "failed:")) or e[1] == "bad"]
    assert [e for e in rows if e[1].endswith(":auto")] and [e for e in rows if e[1].endswith(":fail")]
    assert len(received) == len(set(received)), "an event was delivered twice"
    assert set(received) == set(rows), f"missing: {sorted(set(rows) - set(received))[:5]}, extra: {sorted(set(received) - set(rows))[:5]}"
    assert received == rows, "events out of commit order"
