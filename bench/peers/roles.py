"""What every Python player of the `hark bench` roles shares: the clock the other roles use, the
line protocol's output, and latency percentiles (see bench/src/roles.rs)."""

import sys
import time


def now_ns() -> int:
    """CLOCK_MONOTONIC in nanoseconds, comparable with the Rust and C roles."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def lat_line(us: list[float]) -> str:
    """The "LAT p50 p90 p99 max" line for microsecond samples."""
    us.sort()
    q = lambda p: us[min(int(len(us) * p), len(us) - 1)]
    return f"LAT {q(0.5)} {q(0.9)} {q(0.99)} {us[-1]}"
