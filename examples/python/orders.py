"""Orders: an application writes rows to SQLite and announces every change on the "events"
channel, in the same unit of work; a listener in another process prints the events.

This is the classic PostgreSQL recipe (a trigger that runs
``pg_notify('events', json_build_object('table', TG_TABLE_NAME, 'action', TG_OP,
'data', row_to_json(NEW))::text)``) with SQLite as the database and hark as the notification
queue: the SQLite trigger calls hark's ``pg_notify``, so the event joins the hark transaction,
and a unit of work commits the rows first, then the events. A change that fails is rolled back
in both, so listeners never hear of it.

    python orders.py                  # the whole demo: a listener process, the app, a check
    python orders.py listen DIR N     # print N events from the queue in DIR
    python orders.py app DIR DB       # run the application against the SQLite file DB
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import hark

CHANNEL = "events"

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL,
    total INTEGER NOT NULL CHECK (total >= 0)
);
"""

# One trigger per action, as PostgreSQL's notify_event() trigger: the row as JSON, NEW for
# INSERT and UPDATE, OLD for DELETE.
TRIGGERS = [
    f"""
    CREATE TRIGGER IF NOT EXISTS orders_notify_{action.lower()}
    AFTER {action} ON orders FOR EACH ROW BEGIN
        SELECT pg_notify('{CHANNEL}', json_object(
            'table', 'orders', 'action', '{action}',
            'data', json_object('id', {row}.id, 'email', {row}.email, 'total', {row}.total)));
    END;
    """
    for action, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD"))
]


def open_database(path: Path, conn: hark.Connection) -> sqlite3.Connection:
    """The application's database, with pg_notify() wired to the hark connection."""
    db = sqlite3.connect(path, isolation_level=None)  # transactions are begun explicitly below
    db.create_function("pg_notify", 2, lambda channel, payload: conn.notify(channel, payload))
    db.executescript(SCHEMA + "".join(TRIGGERS))
    return db


@contextmanager
def unit_of_work(db: sqlite3.Connection, conn: hark.Connection) -> Iterator[None]:
    """One unit of work: the rows commit, then the events they triggered; an exception rolls
    back both. Committing the rows first means a listener that reacts to an event by reading
    the database finds the change there."""
    with conn.transaction():
        db.execute("BEGIN")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def run_app(queue_dir: Path, db_path: Path) -> None:
    with hark.connect(queue_dir) as conn:
        db = open_database(db_path, conn)
        with unit_of_work(db, conn):
            db.execute("INSERT INTO orders (email, total) VALUES (?, ?)", ("test@example.com", 10000))
            db.execute("INSERT INTO orders (email, total) VALUES (?, ?)", ("ada@example.com", 2500))
        with unit_of_work(db, conn):
            db.execute("UPDATE orders SET total = total + 500 WHERE email = ?", ("ada@example.com",))
        try:
            with unit_of_work(db, conn):
                db.execute("INSERT INTO orders (email, total) VALUES (?, ?)", ("bob@example.com", 700))
                db.execute("INSERT INTO orders (email, total) VALUES (?, ?)", ("bob@example.com", -1))
        except sqlite3.IntegrityError as e:
            print(f"app: unit of work rolled back ({e}); no event was sent for it")
        with unit_of_work(db, conn):
            db.execute("DELETE FROM orders WHERE email = ?", ("test@example.com",))
        db.close()
        print(f"app: done (pid {conn.pid})")


def run_listener(queue_dir: Path, count: int) -> None:
    with hark.connect(queue_dir) as conn:
        conn.listen(CHANNEL)
        print("listening", flush=True)
        for n in conn.notifies(stop_after=count, timeout=30):
            print(
                f'Asynchronous notification "{n.channel}" with payload "{n.payload}" '
                f"received from server process with PID {n.pid}.",
                flush=True,
            )


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
    with tempfile.TemporaryDirectory() as tmp:
        queue_dir, db_path = Path(tmp) / "queue", Path(tmp) / "orders.db"
        listener = subprocess.Popen(
            [sys.executable, __file__, "listen", str(queue_dir), str(len(EXPECTED))],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert listener.stdout is not None
        if listener.stdout.readline().strip() != "listening":
            print("demo: the listener did not start", file=sys.stderr)
            return 1
        run_app(queue_dir, db_path)
        out, _ = listener.communicate(timeout=60)
        lines = out.splitlines()
        for line in lines:
            print(f"listener: {line}")
        events = [parse_event_line(line) for line in lines]
        if listener.returncode != 0 or [e for _, e, _ in events] != EXPECTED:
            print("demo: the listener did not receive exactly the committed changes", file=sys.stderr)
            return 1
        if {c for c, _, _ in events} != {CHANNEL}:
            return 1
        print(f"demo: {len(events)} events, in commit order, none from the rolled-back unit of work")
        return 0


def main(argv: list[str]) -> int:
    if not argv:
        return demo()
    if argv[0] == "listen" and len(argv) == 3:
        run_listener(Path(argv[1]), int(argv[2]))
        return 0
    if argv[0] == "app" and len(argv) == 3:
        run_app(Path(argv[1]), Path(argv[2]))
        return 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
