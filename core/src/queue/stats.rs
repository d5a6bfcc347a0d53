//! A snapshot of a queue for `hark stat` and monitoring.

use super::{is_segment_name, Queue, SPARE};
use crate::error::Result;
use crate::layout::*;
use std::sync::atomic::Ordering;

/// One registered listener or durable subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerStat {
    pub slot: usize,
    /// The subscription's name, or `None` for a plain listener.
    pub subscription: Option<String>,
    /// The listening (or attached) session's backend PID (what its notifications carry); 0 for
    /// a subscription nobody ever attached to since it was detached.
    pub pid: i32,
    /// The operating-system id of the process that owns the session (0 when detached).
    pub os_pid: i32,
    /// Number of channels (and patterns) listened on.
    pub channels: u32,
    /// The channel names and patterns, or `None` when they did not fit in the slot's text.
    pub channel_names: Option<Vec<String>>,
    /// Next byte position it will read (a subscription: one past its acknowledged position).
    pub position: u64,
    /// Bytes between its position and the head.
    pub lag: u64,
    /// Unread notifications on its channels between its position and the head.
    pub lag_notifications: u64,
    /// How long ago the oldest unread notification on its channels was committed.
    pub lag_age: Option<std::time::Duration>,
    /// Lag limits (0: none).
    pub max_lag_bytes: u64,
    pub max_lag_age: std::time::Duration,
    /// Notifications skipped by cuts and not yet reported to it (for a subscription nobody is
    /// attached to, with what its last session read, did not acknowledge, and a cut passed).
    pub gap_pending: u64,
    /// Whether its session is alive (a dead listener is reaped at the next tail advance; a
    /// subscription is then detached, and waits for the next attach).
    pub alive: bool,
}

/// The state of a queue at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStats {
    pub head: u64,
    pub tail: u64,
    pub max_queue_size: u64,
    pub max_payload: usize,
    pub segment_size: u64,
    /// `pg_notification_queue_usage()`.
    pub usage: f64,
    /// Names of the segment files present, in order.
    pub segment_files: Vec<String>,
    /// Whether a spare segment file (one the tail passed, kept for reuse) is present.
    pub spare_file: bool,
    pub listeners: Vec<ListenerStat>,
}

impl Queue {
    /// Advances the tail, then reports positions, files and listeners.
    pub fn stats(&self) -> Result<QueueStats> {
        let usage = self.usage()?;
        self.sweep_sockets()?;
        let s = self.shared();
        let (head, tail) = self.head_and_tail()?;
        let names = self.dir.list()?;
        let spare_file = names.iter().any(|n| n == SPARE);
        let mut segment_files: Vec<String> = names.into_iter().filter(|n| is_segment_name(n)).collect();
        segment_files.sort();
        let hwm = (s.slot_hwm.load(Ordering::SeqCst) as usize).min(SLOT_COUNT);
        let now = crate::sys::proc::realtime_ns();
        let mut segs = super::Segments::default();
        let listeners = (0..hwm)
            .filter(|&i| self.slot_in_use(i))
            .map(|i| {
                let slot = self.slot(i);
                let alive = self.slot_alive(i);
                let position = self.slot_floor(i).min(head);
                let names = self.read_names(i).unwrap_or_default();
                let (lag_notifications, oldest) = self.count_unread(&mut segs, i, position, head);
                ListenerStat {
                    slot: i,
                    subscription: (slot.state.load(Ordering::SeqCst) == SLOT_SUBSCRIPTION).then_some(names.name),
                    pid: slot.pid.load(Ordering::SeqCst),
                    os_pid: slot.os_pid.load(Ordering::SeqCst),
                    channels: slot.channels.load(Ordering::SeqCst),
                    channel_names: names.channels,
                    position,
                    lag: head - position,
                    lag_notifications,
                    lag_age: oldest.map(|t| std::time::Duration::from_nanos(now.saturating_sub(t))),
                    max_lag_bytes: slot.max_lag_bytes.load(Ordering::SeqCst),
                    max_lag_age: std::time::Duration::from_nanos(slot.max_lag_age_ns.load(Ordering::SeqCst)),
                    gap_pending: self.gap_pending(i, alive),
                    alive,
                }
            })
            .collect();
        self.check_damage(None)?;
        Ok(QueueStats {
            head,
            tail,
            max_queue_size: self.geo.max_queue_size,
            max_payload: self.geo.max_payload,
            segment_size: self.geo.segment_size,
            usage,
            segment_files,
            spare_file,
            listeners,
        })
    }
}

impl Queue {
    /// Notifications on slot `i`'s channels in `[from, head)`, and the commit time of the first.
    /// A bad entry ends the count (stats report what they can).
    fn count_unread(&self, segs: &mut super::Segments, i: usize, from: u64, head: u64) -> (u64, Option<u64>) {
        let matcher = self.slot_matcher(i);
        let (mut n, mut first) = (0u64, None);
        let _ = self.scan(
            segs,
            from,
            head,
            |c| matcher.matches(c),
            |_, _, m| {
                n += 1;
                first.get_or_insert(m.time);
                true
            },
        );
        (n, first)
    }

    /// Removes the wake-up socket files whose sockets are gone: those of sessions that died while
    /// not listening (a dead listener's file goes when its slot is reaped).
    pub(crate) fn sweep_sockets(&self) -> Result<()> {
        for name in self.dir.list()? {
            if let Some(id) = crate::sys::wake::parse_socket_name(&name) {
                if !self.sender.is_bound(self.dir.raw(), id) {
                    self.dir.unlink(&name)?;
                }
            }
        }
        Ok(())
    }
}
