//! A snapshot of a queue for `hark stat` and monitoring.

use super::{is_segment_name, Queue, SPARE};
use crate::error::Result;
use crate::layout::*;
use std::sync::atomic::Ordering;

/// One registered listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerStat {
    pub slot: usize,
    /// The listening session's backend PID (what its notifications carry).
    pub pid: i32,
    /// The operating-system id of the process that owns the session.
    pub os_pid: i32,
    pub channels: u32,
    /// Next byte position it will read.
    pub position: u64,
    /// Bytes between its position and the head.
    pub lag: u64,
    /// Whether its session is alive (a dead one is reaped at the next tail advance).
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
        let listeners = (0..hwm)
            .filter(|&i| self.slot(i).state.load(Ordering::SeqCst) == SLOT_ACTIVE)
            .map(|i| {
                let slot = self.slot(i);
                let position = (slot.pos.load(Ordering::SeqCst) & !POS_BUSY).min(head);
                ListenerStat {
                    slot: i,
                    pid: slot.pid.load(Ordering::SeqCst),
                    os_pid: slot.os_pid.load(Ordering::SeqCst),
                    channels: slot.channels.load(Ordering::SeqCst),
                    position,
                    lag: head - position,
                    alive: self.slot_alive(i),
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
