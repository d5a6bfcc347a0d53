//! Durable subscriptions in the slot table: a slot in state `SLOT_SUBSCRIPTION` keeps its
//! position, channels and gap while no session is attached, and is never reaped. Attaching takes
//! the slot's byte lock, as a listener owns its slot, so that one session at a time is attached
//! and a dead one's attachment ends with it; the name lives in the slot's text. Creating,
//! attaching and dropping run under the tail lock; detaching, like giving a listener slot back,
//! takes no lock shared with other processes.

use super::pattern::{glob_prefix_bucket, Spec};
use super::Queue;
use crate::error::{Error, ErrorKind, Result};
use crate::layout::*;
use crate::sys::fs::{ofd_try_lock, ofd_unlock};
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::SeqCst;

/// A subscription's channels and settings, checked.
#[derive(Debug, Clone)]
pub(crate) struct SubSpec {
    pub name: String,
    pub channels: Vec<String>,
    pub auto_ack: bool,
    pub max_lag_bytes: u64,
    pub max_lag_age_ns: u64,
}

impl SubSpec {
    pub fn specs(&self) -> Vec<Spec> {
        self.channels.iter().map(|c| Spec::parse(c)).collect()
    }
}

/// How an attach went.
pub(crate) enum Attach {
    /// Attached to slot `.0`, newly created (`.1`).
    Done(usize, bool),
    /// Attached elsewhere, by the session with this backend PID.
    Busy(i32),
}

impl Queue {
    /// The slot of the subscription named `name` (tail lock held).
    fn find_subscription(&self, name: &str) -> Option<usize> {
        let hwm = (self.shared().slot_hwm.load(SeqCst) as usize).min(SLOT_COUNT);
        (0..hwm).find(|&i| {
            self.slot(i).state.load(SeqCst) == SLOT_SUBSCRIPTION && self.subscription_name_locked(i) == name.as_bytes()
        })
    }

    /// Creates the subscription or attaches to it, for the session whose `slots` description is
    /// `lock_fd`. The channels and settings given replace the stored ones; the position is kept.
    pub(crate) fn attach(
        &self,
        lock_fd: RawFd,
        sock_id: u64,
        pid: i32,
        spec: &SubSpec,
        create: bool,
    ) -> Result<Attach> {
        let _g = self.lock_tail()?;
        let (i, created) = match self.find_subscription(&spec.name) {
            Some(i) => {
                if !ofd_try_lock(lock_fd, i as u64).map_err(|e| Error::io("lock a subscription", e))? {
                    return Ok(Attach::Busy(self.slot(i).pid.load(SeqCst)));
                }
                (i, false)
            }
            None if !create => return Err(undefined(&spec.name)),
            None => (self.claim_slot(lock_fd)?, true),
        };
        let slot = self.slot(i);
        // A previous owner still named (detaching clears it) died attached: its wake-up socket's
        // file goes now, as a dead listener's goes when its slot is reaped.
        let dead = slot.sock_id.load(SeqCst);
        if !created && dead != 0 && dead != sock_id {
            let _ = self.dir.unlink(&crate::sys::wake::socket_name(dead));
        }
        self.set_owner(i, sock_id, pid);
        let specs = spec.specs();
        let mut flags = if spec.auto_ack { SLOT_AUTO_ACK } else { 0 };
        // Interest first (buckets, then the exact list and names), then the position: a commit
        // after the position is read finds this slot in its buckets.
        self.clear_slot_buckets(i);
        let mut hashes = Vec::new();
        for s in &specs {
            match s {
                Spec::Exact(c) => {
                    hashes.push(channel_hash(c));
                    self.add_buckets(i, &[bucket_of(c)]);
                }
                Spec::Glob(g) => {
                    flags |= SLOT_PATTERNS;
                    self.shared().patterns_used.store(1, SeqCst);
                    let b = glob_prefix_bucket(g).unwrap_or(BUCKET_COUNT);
                    self.add_prefix(i, b);
                }
            }
        }
        slot.flags.store(flags, SeqCst);
        let names: Vec<&str> = spec.channels.iter().map(String::as_str).collect();
        self.write_channels(i, &hashes, &spec.name, &names);
        slot.channels.store(spec.channels.len() as u32, SeqCst);
        slot.max_lag_bytes.store(spec.max_lag_bytes, SeqCst);
        slot.max_lag_age_ns.store(spec.max_lag_age_ns, SeqCst);
        if created {
            let head = self.shared().head.load(SeqCst);
            slot.pos.store(head, SeqCst);
            self.reset_gap(i);
            slot.state.store(SLOT_SUBSCRIPTION, SeqCst);
        } else {
            // What the last session read and did not acknowledge before a cut passed it is
            // gone from the queue: it is this session's gap.
            self.owed_into_gap(i);
        }
        // What a previous owner read but did not acknowledge is owed again.
        slot.read_pos.store(slot.pos.load(SeqCst) & !POS_BUSY, SeqCst);
        // Limits apply from the attach on, not only at the next segment.
        if spec.max_lag_bytes != 0 || spec.max_lag_age_ns != 0 {
            let head = self.head()?;
            let mut segs = super::Segments::default();
            let _ = self.enforce_lag_limits(&mut segs, i, head, crate::sys::proc::realtime_ns());
        }
        Ok(Attach::Done(i, created))
    }

    /// Ends the session's attachment to subscription slot `i` (its byte lock held through
    /// `lock_fd`); the subscription stays, at its acknowledged position.
    pub(crate) fn detach(&self, i: usize, lock_fd: RawFd) {
        let slot = self.slot(i);
        // Notifiers see a wake-up already pending, so they send nothing while nobody listens.
        slot.wake_pending.store(1, SeqCst);
        slot.pid.store(0, SeqCst);
        slot.os_pid.store(0, SeqCst);
        slot.sock_id.store(0, SeqCst);
        slot.read_pos.store(slot.pos.load(SeqCst) & !POS_BUSY, SeqCst);
        ofd_unlock(lock_fd, i as u64);
    }

    /// Drops the subscription named `name`, unless a live session is attached to it.
    pub(crate) fn drop_subscription(&self, lock_fd: RawFd, name: &str) -> Result<()> {
        let _g = self.lock_tail()?;
        let i = self.find_subscription(name).ok_or_else(|| undefined(name))?;
        if !ofd_try_lock(lock_fd, i as u64).map_err(|e| Error::io("lock a subscription", e))? {
            return Err(in_use(name, self.slot(i).pid.load(SeqCst)));
        }
        self.clear_slot(i);
        ofd_unlock(lock_fd, i as u64);
        Ok(())
    }
}

pub(crate) fn undefined(name: &str) -> Error {
    Error::new(ErrorKind::InvalidArgument, "42704", format!("subscription \"{name}\" does not exist"))
}

pub(crate) fn in_use(name: &str, pid: i32) -> Error {
    Error::new(
        ErrorKind::InUse,
        "55006",
        format!("subscription \"{name}\" is in use by the session with backend PID {pid}"),
    )
    .with_hint("One session at a time may be attached to a subscription. Ask to wait for it, or use another name.")
}

impl Queue {
    /// Moves subscription slot `i`'s acknowledged position forward to `to` (never back); only its
    /// attached owner calls this, outside a read.
    pub(crate) fn acknowledge(&self, i: usize, to: u64) {
        let slot = self.slot(i);
        let mut raw = slot.pos.load(SeqCst);
        // A tail advance may move an uninterested position forward meanwhile (by CAS): retry.
        while raw & !POS_BUSY < to {
            match slot.pos.compare_exchange(raw, to | (raw & POS_BUSY), SeqCst, SeqCst) {
                Ok(_) => break,
                Err(now) => raw = now,
            }
        }
    }
}
