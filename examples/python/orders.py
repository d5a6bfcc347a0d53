"""Orders: an application writes rows to SQLite, and a trigger turns every change into a JSON
event on the "events" channel that listeners in other processes print, as the classic
PostgreSQL recipe does (a trigger running ``pg_notify('events', json_build_object('table',
TG_TABLE_NAME, 'action', TG_OP, 'data', row_to_json(NEW))::text)``).

With hark's SQLite extension the event is part of the SQLite transaction: it is delivered when
the transaction commits, once, in commit order, and never for work that was rolled back, even
when the process dies right after its COMMIT (the next process to open the database with the
extension publishes what it left).

    python orders.py                      # the whole demo: a listener, the app, a writer killed
                                          # mid-way, and a check of the events against the rows
    python orders.py listen DIR           # print events from the queue in DIR until {"done":true}
    python orders.py app DIR DB           # the application's fixed units of work against DB
    python orders.py writer DIR DB        # inserts orders for ever, printing each committed id
    python orders.py finish DIR DB        # opens DB (publishing leftovers), says done
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hark
import hark.sqlite

CHANNEL = "events"

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    total INTEGER NOT NULL CHECK (total >= 0)
);
"""


def open_database(queue_dir: Path, path: Path) -> sqlite3.Connection:
    """The application's database, with hark's extension and the seeds' change triggers."""
    db = hark.sqlite.connect(path, queue=queue_dir, isolation_level=None, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    # AFTER INSERT/UPDATE/DELETE triggers sending {"table", "action", "data": the row}.
    db.execute("SELECT hark_notify_changes('orders', ?)", (CHANNEL,))
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One SQLite transaction: its events are delivered if and only if it commits."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def run_app(queue_dir: Path, db_path: Path) -> None:
    db = open_database(queue_dir, db_path)
    with transaction(db):
        db.execute("INSERT INTO orders (email, total) VALUES (?, ?)", ("test@example.com", 10000))
        db.execute("INSERT INTO orders (email, total) VALUES (?, ?)", ("ada@example.com", 2500))
    with transaction(db):
        db.execute("UPDATE orders SET total = total + 500 WHERE email = ?", ("ada@example.com",))
    try:
        with transaction(db):
            db.execute("INSERT INTO orders (email, total) VALUES (?, ?)", ("bob@example.com", 700))
            db.execute("INSERT INTO orders (email, total) VALUES (?, ?)", ("bob@example.com", -1))
    except sqlite3.IntegrityError as e:
        print(f"app: transaction rolled back ({e}); no event was sent for it")
    with transaction(db):
        db.execute("DELETE FROM orders WHERE email = ?", ("test@example.com",))
    db.close()
    print("app: done")


def run_writer(queue_dir: Path, db_path: Path) -> None:
    """Inserts orders, one per transaction, until killed; prints each committed id."""
    db = open_database(queue_dir, db_path)
    i = 0
    while True:
        i += 1
        cur = db.execute("INSERT INTO orders (email, total) VALUES (?, ?)", (f"writer-{i}@example.com", i))
        print(f"committed {cur.lastrowid}", flush=True)


def run_finish(queue_dir: Path, db_path: Path) -> None:
    """Opening the database with the extension publishes what a killed writer committed but
    did not publish; then a last event tells listeners that the demo is over."""
    db = open_database(queue_dir, db_path)
    db.execute("SELECT pg_notify(?, ?)", (CHANNEL, json.dumps({"done": True})))


def run_listener(queue_dir: Path) -> None:
    with hark.connect(queue_dir) as conn:
        conn.listen(CHANNEL)
        print("listening", flush=True)
        for n in conn.notifies(timeout=60):
            print(
                f'Asynchronous notification "{n.channel}" with payload "{n.payload}" '
                f"received from server process with PID {n.pid}.",
                flush=True,
            )
            if json.loads(n.payload) == {"done": True}:
                return


EXPECTED = [
    {"table": "orders", "action": "INSERT", "data": {"id": 1, "email": "test@example.com", "total": 10000}},
    {"table": "orders", "action": "INSERT", "data": {"id": 2, "email": "ada@example.com", "total": 2500}},
    {"table": "orders", "action": "UPDATE", "data": {"id": 2, "email": "ada@example.com", "total": 3000}},
    {"table": "orders", "action": "DELETE", "data": {"id": 1, "email": "test@example.com", "total": 10000}},
]


def parse_event_line(line: str) -> tuple[str, dict[str, object], int]:
    """(channel, event, pid) of a line printed by the listener."""
    prefix = 'Asynchronous notification "'
    assert line.startswith(prefix), line
    channel, rest = line[len(prefix):].split('" with payload "', 1)
    payload, pid = rest.rsplit('" received from server process with PID ', 1)
    return channel, json.loads(payload), int(pid.rstrip("."))


def demo() -> int:
    me = [sys.executable, __file__]
    with tempfile.TemporaryDirectory() as tmp:
        queue_dir, db_path = Path(tmp) / "queue", Path(tmp) / "orders.db"
        listener = subprocess.Popen([*me, "listen", str(queue_dir)], stdout=subprocess.PIPE, text=True)
        assert listener.stdout is not None
        if listener.stdout.readline().strip() != "listening":
            print("demo: the listener did not start", file=sys.stderr)
            return 1
        run_app(queue_dir, db_path)
        # A writer killed with SIGKILL mid-way, wherever it is: inside a transaction, between
        # its SQLite commit and the publication of its event, or anywhere else.
        writer = subprocess.Popen([*me, "writer", str(queue_dir), str(db_path)], stdout=subprocess.PIPE, text=True)
        assert writer.stdout is not None
        for _ in range(50):
            writer.stdout.readline()
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        print("demo: killed a writer mid-way")
        subprocess.run([*me, "finish", str(queue_dir), str(db_path)], check=True)
        out, _ = listener.communicate(timeout=60)
        events = [parse_event_line(line) for line in out.splitlines()]
        for _, e, _ in events[:6]:
            print(f"listener: {json.dumps(e)}")
        print(f"listener: ... {len(events)} events in all")
        db = sqlite3.connect(db_path)
        written = [{"table": "orders", "action": "INSERT", "data": {"id": i, "email": m, "total": t}}
                   for i, m, t in db.execute("SELECT id, email, total FROM orders WHERE id > 2 ORDER BY id")]
        db.close()
        want = EXPECTED + written + [{"done": True}]
        if listener.returncode != 0 or [e for _, e, _ in events] != want:
            print("demo: the listener did not receive exactly the committed changes", file=sys.stderr)
            return 1
        print(
            f"demo: {len(EXPECTED)} events, in commit order, none from the rolled-back unit of work; "
            f"then {len(written)} rows of a killed writer, each with its event exactly once"
        )
        return 0


def main(argv: list[str]) -> int:
    if not argv:
        return demo()
    roles = {"app": run_app, "writer": run_writer, "finish": run_finish}
    if argv[0] == "listen" and len(argv) == 2:
        run_listener(Path(argv[1]))
        return 0
    if argv[0] in roles and len(argv) == 3:
        roles[argv[0]](Path(argv[1]), Path(argv[2]))
        return 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
