"""A full queue: a transaction that commits while the queue is full keeps its events in the
outbox, never loses nor repeats them; until they are published, a new notification fails with
PostgreSQL's error (so its rows roll back), and once listeners catch up the next notifying
commit (or hark_publish()) publishes them first, in commit order."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from conftest import open_db

import hark


def test_a_full_queue_never_loses_nor_repeats_and_refuses_new_notifications(dbpath: Path, qdir: Path) -> None:
    with hark.connect(qdir, max_queue_size=64 * 8192) as slow:
        slow.listen("events")  # listens, reads nothing yet: the queue fills behind it
        db = open_db(dbpath, qdir)
        db.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)")
        db.execute("SELECT hark_notify_changes('docs', 'events')")
        refused = None
        for i in range(1000):
            try:
                db.execute("INSERT INTO docs (body) VALUES (?)", (f"{i}:" + "x" * 6000,))
            except sqlite3.OperationalError as e:
                refused = (i, str(e))
                break
        assert refused is not None, "the queue never filled"
        assert "too many notifications in the NOTIFY queue" in refused[1]
        # The refused statement's row rolled back with it.
        assert db.execute("SELECT count(*) FROM docs WHERE body LIKE ?", (f"{refused[0]}:%",)).fetchone() == (0,)
        # The commit before it committed its row; its events waited in the outbox (that is what
        # refused the next notification) and go out as the listener frees room.
        rows = [r[0] for r in db.execute("SELECT id FROM docs ORDER BY id")]
        got = [json.loads(n.payload)["data"]["id"] for n in slow.notifies(timeout=0.5)]
        assert got == rows[: len(got)]
        # The listener caught up: the waiting events go out (this process's peer thread, or
        # hark_publish(), whichever comes first), once; then a new commit's.
        db.execute("SELECT hark_publish()")
        db.execute("INSERT INTO docs (body) VALUES ('after')")
        got += [json.loads(n.payload)["data"]["id"] for n in slow.notifies(timeout=1)]
        rows = [r[0] for r in db.execute("SELECT id FROM docs ORDER BY id")]
        assert got == rows
