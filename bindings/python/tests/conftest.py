"""Fixtures: a fresh queue directory per test, connections on it, and the Rust peer binary."""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

import hark

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def qdir(tmp_path: Path) -> Path:
    """A queue directory of its own for each test (created by the first connect)."""
    return tmp_path / "queue"


@pytest.fixture
def conn(qdir: Path) -> Iterator[hark.Connection]:
    with hark.connect(qdir) as c:
        yield c


@pytest.fixture
def other(qdir: Path) -> Iterator[hark.Connection]:
    """A second connection on the same queue (another 'backend')."""
    with hark.connect(qdir) as c:
        yield c


@pytest.fixture(scope="session")
def peer() -> Path:
    """The Rust peer (core/examples/peer.rs): $HARK_PEER, or built on demand."""
    path = os.environ.get("HARK_PEER")
    if path:
        return Path(path)
    subprocess.run(
        ["cargo", "build", "-q", "-p", "hark", "--release", "--example", "peer"], cwd=REPO, check=True
    )
    return REPO / "target" / "release" / "examples" / "peer"


@pytest.fixture(scope="session")
def hark_with_fault_hooks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory to put first on PYTHONPATH: the hark package with a native module built with
    the `fault-hooks` feature ($HARK_FAULT_MODULE, or built on demand into target/fault-hooks)."""
    module = os.environ.get("HARK_FAULT_MODULE")
    if not module:
        subprocess.run(
            ["cargo", "build", "-q", "-p", "hark-python", "--release", "--features", "fault-hooks"],
            cwd=REPO,
            env={**os.environ, "CARGO_TARGET_DIR": str(REPO / "target" / "fault-hooks"), "PYO3_PYTHON": sys.executable},
            check=True,
        )
        module = str(REPO / "target" / "fault-hooks" / "release" / "lib_hark.so")
    root = tmp_path_factory.mktemp("fault-hooks")
    shutil.copytree(REPO / "bindings" / "python" / "python" / "hark", root / "hark", ignore=shutil.ignore_patterns("*.pyi", "__pycache__"))
    shutil.copy(module, root / "hark" / "_hark.abi3.so")
    return root


def python_child(code: str, *args: str, pythonpath: Path | None = None) -> subprocess.Popen[str]:
    """A Python process running `code` with this interpreter (so it imports the same hark, or the
    one in `pythonpath`)."""
    env = None if pythonpath is None else {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


_line_queues: weakref.WeakKeyDictionary[subprocess.Popen[str], queue.Queue[str | None]] = weakref.WeakKeyDictionary()


def read_line(proc: subprocess.Popen[str], timeout: float = 10.0) -> str:
    """The next line of a child's standard output, failing the test instead of hanging.

    A thread reads the pipe, so lines that arrive together are not hidden in a buffer that a
    select() on the descriptor cannot see."""
    lines = _line_queues.get(proc)
    if lines is None:
        lines = _line_queues[proc] = queue.Queue()
        stdout = proc.stdout
        assert stdout is not None

        def pump(q: queue.Queue[str | None] = lines) -> None:
            for line in stdout:
                q.put(line)
            q.put(None)

        threading.Thread(target=pump, daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"no output from the child within {timeout}s; its stderr: {err}") from None
    if line is None:
        err = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"the child closed its output (exit status {proc.wait()}); its stderr: {err}")
    return line.rstrip("\n")


def park_a_writer_inside_its_append(peer: Path, qdir: Path, marker: Path) -> subprocess.Popen[bytes]:
    """A Rust peer that holds the queue's writer lock until it is killed: its commit stops inside
    the append, after writing its entry and before publishing it.

    This is the one place that uses the core's fault hook (`HARK_FAULT_PARK_IN_APPEND`)."""
    proc = subprocess.Popen(
        [str(peer), "notify", str(qdir), "ch", "parked", "1"],
        env={**os.environ, "HARK_FAULT_PARK_IN_APPEND": str(marker)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the peer never parked inside its append (exit status {proc.poll()})")
        time.sleep(0.01)
    return proc
