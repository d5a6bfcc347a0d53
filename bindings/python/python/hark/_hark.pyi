# Type stub of the native module (bindings/python/src). Private: use the `hark` package.
from os import PathLike
from pathlib import Path
from typing import final

from ._stats import NativeStats

__all__ = ["Session", "convert_pyformat", "MAX_CHANNEL_LEN", "DEFAULT_MAX_PAYLOAD", "DEFAULT_MAX_QUEUE_SIZE", "__version__", "default_dir"]

MAX_CHANNEL_LEN: int
DEFAULT_MAX_PAYLOAD: int
DEFAULT_MAX_QUEUE_SIZE: int
__version__: str

def default_dir() -> Path:
    """$HARK_DIR, else /dev/shm/hark-<uid> (/tmp/hark-<uid> without /dev/shm)."""
def convert_pyformat(query: str) -> tuple[str, int, list[str] | None]:
    """psycopg's placeholders as $n: (text, placeholders written, names in $n order or None)."""

@final
class Session:
    """One session on a queue directory (the core library's Connection)."""

    def __new__(
        cls,
        dir: str | PathLike[str] | None = None,
        *,
        max_queue_size: int | None = None,
        max_payload: int | None = None,
        segment_size: int | None = None,
        group_shared: bool = False,
        create: bool = True,
        cut_laggards: bool | None = None,
        listener_max_lag_bytes: int | None = None,
        listener_max_lag_age: float | None = None,
    ) -> Session: ...
    def execute(self, sql: str) -> tuple[str, list[str], list[str], list[tuple[str | None, ...]]]:
        """Run SQL text; (tag, columns, types, rows) of its last statement, types as PostgreSQL's
        type names."""
    def execute_params(
        self, sql: str, params: list[str | int | float | bool | None]
    ) -> tuple[str, list[str], list[str], list[tuple[str | None, ...]]]:
        """Run one statement with $1, $2, … bound to `params`; as `execute`."""
    def listen(self, channel: str) -> None: ...
    def unlisten(self, channel: str) -> None: ...
    def unlisten_all(self) -> None: ...
    def notify(self, channel: str, payload: str) -> None: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def savepoint(self, name: str) -> None: ...
    def release(self, name: str) -> None: ...
    def rollback_to(self, name: str) -> None: ...
    def poll(self) -> int:
        """Read what the descriptor announced without blocking; how many notifications are ready."""
    def wait(self, timeout: float | None = None) -> int:
        """Block (GIL released, signals checked every 50 ms) until notifications are ready or
        `timeout` seconds pass; how many are ready (0 on timeout)."""
    def prepare_to_sleep(self) -> int:
        """The first half of `wait` for an event loop waiting on `fileno()`: read with the
        wake-up flag raised, watch briefly, lower the flag, look again; how many are ready."""
    def settle(self) -> None:
        """A consumer stops taking notifications for now: lower the wake-up flag, and leave the
        descriptor readable if notifications are already waiting."""
    def woke(self, readable: bool, slept: float) -> None:
        """The second half of `wait`: the descriptor was waited on for `slept` seconds."""
    def subscribe(
        self,
        name: str,
        channels: list[str],
        *,
        auto_ack: bool,
        create: bool,
        wait: float | None,
        max_lag_bytes: int | None,
        max_lag_age: float | None,
    ) -> None: ...
    def ack(self, position: int) -> None: ...
    def detach(self) -> None: ...
    def unsubscribe(self, name: str) -> None: ...
    @property
    def subscription(self) -> str | None: ...
    def next_notify(self) -> tuple[str, str, int, int, int, int] | None:
        """The next ready notification as (channel, payload, pid, position, txn,
        commit_time_ns), or None."""
    @property
    def pending(self) -> int: ...
    def take_notices(self) -> list[tuple[str, str, str, str | None, str | None]]:
        """Notices since the last call: (severity, sqlstate, message, detail, hint)."""
    @property
    def has_notices(self) -> bool: ...
    def fileno(self) -> int: ...
    @property
    def pid(self) -> int: ...
    def listening_channels(self) -> list[str]: ...
    def queue_usage(self) -> float: ...
    def stats(self) -> NativeStats: ...
    @property
    def transaction_status(self) -> str:
        """"idle", "intrans" or "inerror"."""
    @property
    def path(self) -> Path: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
