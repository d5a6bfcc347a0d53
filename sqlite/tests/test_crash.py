"""Exactly once, whatever process dies where: real processes stopped at the extension's and the
core's park points (the test build of the extension) and killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import time
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import HOOKS_EXT, SCHEMA, drain, events, open_db, wait_for

import hark

AGENTS = str(Path(__file__).with_name("agents.py"))

pytestmark = pytest.mark.skipif(not Path(HOOKS_EXT).is_file(), reason=f"test build of the extension missing: {HOOKS_EXT}")


def park_and_kill(dbpath: Path, qdir: Path, journal: str, point: str, email: str, tmp: Path) -> None:
    marker = tmp / f"parked-{email}"
    env = dict(os.environ, HARK_SQLITE_EXTENSION=HOOKS_EXT, **{point: str(marker)})
    p = subprocess.Popen([sys.executable, AGENTS, "write_and_park", str(dbpath), str(qdir), journal, email], env=env)
    try:
        wait_for(marker.exists, 30)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()


def setup(dbpath: Path, qdir: Path, journal: str) -> None:
    db = open_db(dbpath, qdir, journal)
    db.executescript(SCHEMA)
    db.execute("SELECT hark_notify_changes('orders', 'events')")
    db.close()


def emails(conn: hark.Connection) -> list[str]:
    return [e["data"]["email"] for e in events(conn)]  # type: ignore[index]


def test_killed_after_the_sqlite_commit_the_next_process_publishes_once(
    dbpath: Path, qdir: Path, journal: str, listener: hark.Connection, tmp_path: Path
) -> None:
    setup(dbpath, qdir, journal)
    park_and_kill(dbpath, qdir, journal, "HARK_SQLITE_FAULT_PARK_BEFORE_PUBLISH", "orphan", tmp_path)
    assert drain(listener) == []
    # The row committed; the next process that loads the extension on the database publishes it.
    db = open_db(dbpath, qdir, journal)
    assert [r[0] for r in db.execute("SELECT email FROM orders")] == ["orphan"]
    assert emails(listener) == ["orphan"]
    # Nobody publishes it again: neither another load nor an explicit publication.
    open_db(dbpath, qdir, journal).execute("SELECT hark_publish()")
    db.execute("INSERT INTO orders (email, total) VALUES ('next', 1)")
    assert emails(listener) == ["next"]


def test_a_live_peer_publishes_a_dead_writers_events_at_its_next_commit(
    dbpath: Path, qdir: Path, listener: hark.Connection, tmp_path: Path
) -> None:
    setup(dbpath, qdir, "wal")
    park_and_kill(dbpath, qdir, "wal", "HARK_SQLITE_FAULT_PARK_BEFORE_PUBLISH", "orphan", tmp_path)
    peer = open_db(dbpath, qdir)  # in another process, the orphan would wait for this commit
    peer.execute("INSERT INTO orders (email, total) VALUES ('peer', 1)")
    assert emails(listener) == ["orphan", "peer"]  # in commit order


def test_a_commit_published_from_memory_publishes_a_dead_writers_events_first(
    dbpath: Path, qdir: Path, listener: hark.Connection, tmp_path: Path
) -> None:
    # The peer's COMMIT would publish its own rows without reading the outbox; the dead writer's
    # row, below them and above the mark, makes it read the outbox instead.
    setup(dbpath, qdir, "wal")
    peer = open_db(dbpath, qdir)  # opened first: its load does not publish the orphan
    park_and_kill(dbpath, qdir, "wal", "HARK_SQLITE_FAULT_PARK_BEFORE_PUBLISH", "orphan", tmp_path)
    peer.execute("BEGIN")
    peer.execute("INSERT INTO orders (email, total) VALUES ('peer', 1)")
    peer.execute("COMMIT")
    assert emails(listener) == ["orphan", "peer"]  # in commit order


def test_an_idle_live_peer_publishes_a_dead_writers_events_within_half_a_second(
    dbpath: Path, qdir: Path, listener: hark.Connection, tmp_path: Path
) -> None:
    setup(dbpath, qdir, "wal")
    # This process has a connection on the database and its queue, and commits nothing: its
    # peer thread watches them.
    idle = open_db(dbpath, qdir)
    idle.execute("SELECT hark_queue()")
    park_and_kill(dbpath, qdir, "wal", "HARK_SQLITE_FAULT_PARK_BEFORE_PUBLISH", "orphan", tmp_path)
    killed = time.monotonic()
    got = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
    waited = time.monotonic() - killed
    assert len(got) == 1 and '"email":"orphan"' in got[0]
    assert waited < 1.0, f"published after {waited:.2f} s"
    assert drain(listener) == []  # once
    # Once its last connection closes, the process stops watching: nobody publishes a new orphan.
    idle.close()
    park_and_kill(dbpath, qdir, "wal", "HARK_SQLITE_FAULT_PARK_BEFORE_PUBLISH", "orphan 2", tmp_path)
    assert drain(listener, quiet=1.0) == []
    open_db(dbpath, qdir)
    assert emails(listener) == ["orphan 2"]


@pytest.mark.parametrize("point", ["HARK_FAULT_PARK_IN_APPEND", "HARK_FAULT_PARK_IN_MARK"])
def test_killed_inside_the_publication_before_it_counts(
    dbpath: Path, qdir: Path, listener: hark.Connection, tmp_path: Path, point: str
) -> None:
    setup(dbpath, qdir, "wal")
    park_and_kill(dbpath, qdir, "wal", point, "orphan", tmp_path)
    assert drain(listener) == []
    open_db(dbpath, qdir)
    assert emails(listener) == ["orphan"]


def test_killed_right_after_the_publication_is_not_published_again(
    dbpath: Path, qdir: Path, listener: hark.Connection, tmp_path: Path
) -> None:
    setup(dbpath, qdir, "wal")
    park_and_kill(dbpath, qdir, "wal", "HARK_FAULT_PARK_AFTER_HEAD", "published", tmp_path)
    assert emails(listener) == ["published"]
    db = open_db(dbpath, qdir)
    db.execute("SELECT hark_publish()")
    db.execute("INSERT INTO orders (email, total) VALUES ('next', 1)")
    assert emails(listener) == ["next"]
