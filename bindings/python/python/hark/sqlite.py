"""Notifications that commit with SQLite data: load hark's SQLite extension into a connection of
Python's ``sqlite3`` module.

    import sqlite3, hark.sqlite
    db = hark.sqlite.connect("app.db", queue="/dev/shm/hark-app")   # or hark.sqlite.load(db)
    db.execute("SELECT hark_notify_changes('orders', 'events')")
    with db:
        db.execute("INSERT INTO orders (email, total) VALUES (?, ?)", ("a@example.com", 4200))
    # listeners on "events" get {"table" : "orders", "action" : "INSERT", "data" : {...}}
    # when (and only if) the transaction commits

The extension (``libhark_sqlite.so``) is found at ``$HARK_SQLITE_EXTENSION`` if set, else
beside this module (a wheel that bundles it), else in the ``target/release`` directory of a
source checkout this package was built from.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["extension_path", "load", "connect"]

_NAME = "libhark_sqlite.so"


def extension_path() -> str:
    """The path of hark's SQLite extension, or FileNotFoundError naming where it was looked for."""
    tried: list[str] = []
    env = os.environ.get("HARK_SQLITE_EXTENSION")
    if env:
        if Path(env).is_file():
            return env
        tried.append(env)
    here = Path(__file__).resolve().parent
    candidates = [here / _NAME]
    candidates += [p / "target" / "release" / _NAME for p in here.parents]
    for c in candidates:
        if c.is_file():
            return str(c)
        tried.append(str(c))
    raise FileNotFoundError(
        "hark's SQLite extension (libhark_sqlite.so) was not found; build it with "
        "`cargo build -p hark-sqlite --release` and set HARK_SQLITE_EXTENSION to its path. Looked in: "
        + ", ".join(tried[:4])
    )


def load(db: sqlite3.Connection, queue: str | os.PathLike[str] | None = None) -> sqlite3.Connection:
    """Loads the extension into ``db`` (pg_notify, hark_notify_changes, hark_notify_tcn,
    hark_queue, hark_publish) and, when given, points it at the queue directory ``queue``."""
    db.enable_load_extension(True)
    try:
        db.load_extension(extension_path())
    finally:
        db.enable_load_extension(False)
    if queue is not None:
        db.execute("SELECT hark_queue(?)", (os.fspath(queue),))
    return db


def connect(database: str | os.PathLike[str], queue: str | os.PathLike[str] | None = None, **kwargs: Any) -> sqlite3.Connection:
    """``sqlite3.connect(database, **kwargs)`` with the extension loaded (see :func:`load`)."""
    return load(sqlite3.connect(database, **kwargs), queue)
