"""Fixtures for the SQLite extension's tests: the extension (release build, and the build with
crash points), a queue directory and a database per test, and a listener."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import hark
import hark.sqlite

REPO = Path(__file__).resolve().parents[2]
HOOKS_EXT = os.environ.get(
    "HARK_SQLITE_EXTENSION_HOOKS", str(REPO / "target" / "sqlite-test-hooks" / "release" / "libhark_sqlite.so")
)


@pytest.fixture
def qdir(tmp_path: Path) -> Path:
    return tmp_path / "queue"


@pytest.fixture
def dbpath(tmp_path: Path) -> Path:
    return tmp_path / "app.db"


@pytest.fixture(params=["wal", "delete"])
def journal(request: pytest.FixtureRequest) -> str:
    """Both of SQLite's journal families: write-ahead log and rollback journal."""
    return str(request.param)


def open_db(dbpath: Path, qdir: Path, journal: str = "wal") -> sqlite3.Connection:
    db = hark.sqlite.connect(dbpath, queue=qdir, isolation_level=None, timeout=30)
    db.execute(f"PRAGMA journal_mode={journal}")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL,
    total INTEGER NOT NULL CHECK (total >= 0)
);
"""


@pytest.fixture
def listener(qdir: Path) -> Iterator[hark.Connection]:
    with hark.connect(qdir) as c:
        c.listen("events")
        yield c


def drain(conn: hark.Connection, quiet: float = 0.3) -> list[tuple[str, str]]:
    """Every notification that arrives until none came for `quiet` seconds."""
    got = []
    while True:
        batch = list(conn.notifies(timeout=quiet))
        if not batch:
            return got
        got += [(n.channel, n.payload) for n in batch]


def events(conn: hark.Connection, quiet: float = 0.3) -> list[dict[str, object]]:
    return [json.loads(p) for _, p in drain(conn, quiet)]


def wait_for(pred: object, secs: float = 20) -> None:
    deadline = time.monotonic() + secs
    while not pred():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
