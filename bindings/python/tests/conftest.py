"""Fixtures: a fresh queue directory per test, connections on it, and the Rust peer binary."""

from __future__ import annotations

import os
import subprocess
import sys
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


def python_child(code: str, *args: str) -> subprocess.Popen[str]:
    """A Python process running `code` with this interpreter (so it imports the same hark)."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(proc: subprocess.Popen[str], timeout: float = 10.0) -> str:
    """One line of a child's standard output, failing the test instead of hanging."""
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
            raise AssertionError(f"no output from child within {timeout}s; stderr: {proc.stderr.read() if proc.stderr else ''}")
    return proc.stdout.readline().rstrip("\n")
