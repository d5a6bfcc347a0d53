"""``conn.stats()``: the queue's state and each listener's and durable subscription's lag, as
``hark stat`` shows them."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

#: What the native session's ``stats()`` returns (see ``_hark.pyi``): the queue's fields, then one
#: tuple per receiver in ``ReceiverStat``'s order, durations in seconds.
NativeReceiver = tuple[str | None, int, int, bool, list[str] | None, int, int, int, float | None, int, float, int]
NativeStats = tuple[int, int, float, int, int, int, list[str], list[NativeReceiver]]


@dataclass(frozen=True)
class ReceiverStat:
    """One listener (``subscription`` is None) or durable subscription of the queue."""

    #: The subscription's name, or None for a plain listener.
    subscription: str | None
    #: The backend PID of its session (what its notifications carry); 0 for a subscription
    #: nobody is attached to.
    backend_pid: int
    #: The operating-system process id of that session's process (0 when detached).
    os_pid: int
    #: Whether its session lives.
    alive: bool
    #: Its channels and patterns, or None when they were too long to be kept in the queue's
    #: control file (more than about 1 KiB in all).
    channels: list[str] | None
    #: Where it reads next (a subscription: one past its acknowledged notification).
    position: int
    #: Bytes between its position and the head of the queue.
    lag_bytes: int
    #: Unread notifications on its channels.
    lag_notifications: int
    #: How long ago the oldest unread notification on its channels was committed (None: none).
    lag_age: datetime.timedelta | None
    #: Its lag limits (0 and a zero timedelta: none).
    max_lag_bytes: int
    max_lag_age: datetime.timedelta
    #: Notifications skipped by cuts and not yet reported to it.
    gap_pending: int


@dataclass(frozen=True)
class QueueStats:
    """The state of a queue at one moment (``conn.stats()``)."""

    #: Byte positions of the head (where the next commit goes) and of the tail (the oldest
    #: entry kept).
    head: int
    tail: int
    #: ``pg_notification_queue_usage()``: the fraction of the maximum size in use.
    usage: float
    max_queue_size: int
    segment_size: int
    max_payload: int
    #: The segment files in the directory, in order.
    segment_files: list[str]
    #: Listeners and durable subscriptions, in slot order.
    receivers: list[ReceiverStat]

    @property
    def subscriptions(self) -> list[ReceiverStat]:
        """The durable subscriptions among the receivers."""
        return [r for r in self.receivers if r.subscription is not None]


def _seconds(s: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=s)


def from_native(t: NativeStats) -> QueueStats:
    head, tail, usage, max_queue_size, segment_size, max_payload, files, receivers = t
    return QueueStats(
        head=head,
        tail=tail,
        usage=usage,
        max_queue_size=max_queue_size,
        segment_size=segment_size,
        max_payload=max_payload,
        segment_files=files,
        receivers=[
            ReceiverStat(
                subscription=r[0],
                backend_pid=r[1],
                os_pid=r[2],
                alive=r[3],
                channels=r[4],
                position=r[5],
                lag_bytes=r[6],
                lag_notifications=r[7],
                lag_age=None if r[8] is None else _seconds(r[8]),
                max_lag_bytes=r[9],
                max_lag_age=_seconds(r[10]),
                gap_pending=r[11],
            )
            for r in receivers
        ],
    )
