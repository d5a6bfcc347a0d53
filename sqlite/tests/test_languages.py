"""The extension from every language, through SQLite's own loading: Python's examples (their
demos), Node (better-sqlite3) and C (sqlite3_load_extension). The sqlite3 shell is in
test_transactions.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO, events

import hark
import hark.sqlite

EXAMPLES = REPO / "examples"


def test_python_orders_demo_survives_a_killed_writer() -> None:
    p = subprocess.run([sys.executable, str(EXAMPLES / "python" / "orders.py")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "demo: 4 events, in commit order, none from the rolled-back unit of work; then" in p.stdout
    assert "each with its event exactly once" in p.stdout


def test_python_async_listener_demo() -> None:
    p = subprocess.run([sys.executable, str(EXAMPLES / "python" / "async_listener.py")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "demo: 4 events; the event loop ran" in p.stdout


def test_node_better_sqlite3_loads_it(tmp_path: Path, qdir: Path, listener: hark.Connection) -> None:
    module = EXAMPLES / "node" / "node_modules" / "better-sqlite3"
    assert module.is_dir(), "run `npm ci` in examples/node (make test-sqlite does)"
    env = dict(os.environ, HARK_DIR=str(qdir), HARK_SQLITE_EXTENSION=hark.sqlite.extension_path())
    p = subprocess.run(
        ["node", str(EXAMPLES / "node" / "orders.js"), str(tmp_path / "orders.db"), "3"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines() == [
        "committed order 1", "committed order 2", "committed order 3",
        "rolled back (changed my mind): no event",
        "refused (CHECK constraint failed: total >= 0): no event",
    ]
    assert events(listener) == [
        {"table": "orders", "action": "INSERT", "data": {"id": i, "email": "test@example.com", "total": 10000 * i}}
        for i in (1, 2, 3)
    ]


def test_c_sqlite3_load_extension(tmp_path: Path, qdir: Path, listener: hark.Connection) -> None:
    cc = shutil.which("cc")
    assert cc, "a C compiler is needed"
    exe = tmp_path / "orders"
    subprocess.run(
        [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-o", str(exe), str(EXAMPLES / "c" / "orders.c"), "-lsqlite3"],
        check=True, timeout=120,
    )
    p = subprocess.run(
        [str(exe), str(tmp_path / "orders.db"), hark.sqlite.extension_path(), str(qdir)],
        capture_output=True, text=True, timeout=60,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert events(listener) == [
        {"table": "orders", "action": "INSERT", "data": {"id": 1, "email": "c@example.com", "total": 4200}},
        {"table": "orders", "action": "UPDATE", "data": {"id": 1, "email": "c@example.com", "total": 4201}},
    ]


def test_python_helper_explains_a_missing_extension(tmp_path: Path) -> None:
    env = dict(os.environ, HARK_SQLITE_EXTENSION=str(tmp_path / "nowhere.so"))
    code = "import hark.sqlite\ntry:\n    hark.sqlite.extension_path()\nexcept FileNotFoundError as e:\n    print(e)\n"
    # From a copy of the package outside the checkout, so that no target/release is found.
    pkg = Path(hark.sqlite.__file__).parent
    shutil.copytree(pkg, tmp_path / "hark", ignore=shutil.ignore_patterns("*.so"))
    (tmp_path / "hark" / "__init__.py").write_text("")
    p = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "libhark_sqlite.so) was not found" in p.stdout, p.stdout + p.stderr
    assert str(tmp_path / "nowhere.so") in p.stdout
