//! The listener registry: slots in the control file, each owned by one session through a byte
//! lock on `slots`; the channel-bucket bitmaps that say which slots may care about a channel; and
//! the wake-ups sent to them.

use super::{set_bits, Queue};
use crate::error::{Error, ErrorKind, Result};
use crate::layout::*;
use crate::sys::fs::{ofd_is_held, ofd_try_lock, ofd_unlock};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;

impl Queue {
    /// Claims a listener slot for a session. `lock_fd` is the session's own description of the
    /// `slots` file; the byte lock taken through it marks the slot as owned for the session's
    /// lifetime. The channel buckets and hashes are published before the start position is read,
    /// so that a notifier either wakes this session or committed before its start (no lost
    /// wake-up), and a tail advance never moves it past what it is owed.
    /// `pid` is the session's backend PID. Returns the slot and the start position (the head).
    pub(crate) fn register(
        &self,
        lock_fd: RawFd,
        sock_id: u64,
        pid: i32,
        buckets: &[usize],
        hashes: &[u64],
        channels: &[&str],
    ) -> Result<(usize, u64)> {
        let _g = self.lock_tail()?;
        let i = self.claim_slot(lock_fd)?;
        let slot = self.slot(i);
        self.set_owner(i, sock_id, pid);
        slot.flags.store(0, Ordering::SeqCst);
        slot.max_lag_bytes.store(self.geo.listener_max_lag_bytes, Ordering::SeqCst);
        slot.max_lag_age_ns.store(self.geo.listener_max_lag_age_ns, Ordering::SeqCst);
        self.add_buckets(i, buckets);
        self.write_channels(i, hashes, "", channels);
        // A cut that raced the previous owner's lock-free release may have written its gap into
        // the freed slot: none of it is this listener's (we hold the tail lock, so no cut runs).
        self.reset_gap(i);
        let pos = self.shared().head.load(Ordering::SeqCst);
        slot.pos.store(pos, Ordering::SeqCst);
        slot.read_pos.store(pos, Ordering::SeqCst);
        slot.state.store(SLOT_ACTIVE, Ordering::SeqCst);
        Ok((i, pos))
    }

    /// Takes a free slot (or one whose owner died) for the caller, its byte lock taken through
    /// `lock_fd` (tail lock held). Free slots first, so that dead listeners' slots are reused
    /// only when the table is full. Subscriptions are never taken: they outlive their owners.
    pub(crate) fn claim_slot(&self, lock_fd: RawFd) -> Result<usize> {
        for want_free in [true, false] {
            for i in 0..SLOT_COUNT {
                let state = self.slot(i).state.load(Ordering::SeqCst);
                if (state == SLOT_FREE) != want_free || state == SLOT_SUBSCRIPTION {
                    continue;
                }
                if !ofd_try_lock(lock_fd, i as u64).map_err(|e| Error::io("lock a listener slot", e))? {
                    continue; // owned by a live session (or a forked child of a dead one)
                }
                if state != SLOT_FREE {
                    self.clear_dead_slot(i); // left behind by a session that died
                }
                self.shared().slot_hwm.fetch_max(i as u32 + 1, Ordering::SeqCst);
                return Ok(i);
            }
        }
        Err(Error::new(
            ErrorKind::TooManyListeners,
            "53300",
            format!("too many listeners on the queue (at most {SLOT_COUNT} sessions may listen or subscribe at once)"),
        ))
    }

    /// Records the session that now owns slot `i` (its byte lock held).
    pub(crate) fn set_owner(&self, i: usize, sock_id: u64, pid: i32) {
        let slot = self.slot(i);
        slot.pid.store(pid, Ordering::SeqCst);
        slot.os_pid.store(crate::sys::proc::pid(), Ordering::SeqCst);
        slot.sock_id.store(sock_id, Ordering::SeqCst);
        slot.wake_pending.store(0, Ordering::SeqCst);
        slot.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Gives a slot back (the session's last UNLISTEN committed, or it closed). Takes no lock
    /// shared with other processes, so that closing never waits for one (a process stopped
    /// while advancing the tail, say): the slot's byte lock, still held, keeps registrants and
    /// reapers away until it is cleared, and a tail advance running meanwhile sees it either
    /// active (and counts its position, harmlessly) or free. A direct advancement that lands on
    /// the cleared slot moves a position nobody reads; the next owner sets its own.
    pub(crate) fn unregister(&self, i: usize, lock_fd: RawFd) {
        self.clear_slot(i);
        ofd_unlock(lock_fd, i as u64);
    }

    /// Clears the slot of a session that died, and removes its wake-up socket's file.
    fn clear_dead_slot(&self, i: usize) {
        let sock_id = self.slot(i).sock_id.load(Ordering::SeqCst);
        self.clear_slot(i);
        let _ = self.dir.unlink(&crate::sys::wake::socket_name(sock_id));
    }

    pub(crate) fn clear_slot(&self, i: usize) {
        let slot = self.slot(i);
        slot.state.store(SLOT_FREE, Ordering::SeqCst);
        self.clear_slot_buckets(i);
        slot.pos.store(0, Ordering::SeqCst);
        slot.channels.store(0, Ordering::SeqCst);
        slot.pid.store(0, Ordering::SeqCst);
        slot.os_pid.store(0, Ordering::SeqCst);
        slot.flags.store(0, Ordering::SeqCst);
        slot.max_lag_bytes.store(0, Ordering::SeqCst);
        slot.max_lag_age_ns.store(0, Ordering::SeqCst);
        slot.read_pos.store(0, Ordering::SeqCst);
        self.reset_gap(i);
    }

    /// Drops slot `i` from every bucket and prefix bucket.
    pub(crate) fn clear_slot_buckets(&self, i: usize) {
        let mask = !(1u64 << (i % 64));
        for b in 0..BUCKET_COUNT {
            let w = self.bucket_word(b, i / 64);
            if w.load(Ordering::Relaxed) & !mask != 0 {
                w.fetch_and(mask, Ordering::SeqCst);
            }
        }
        for b in 0..=BUCKET_COUNT {
            let w = self.prefix_word(b, i / 64);
            if w.load(Ordering::Relaxed) & !mask != 0 {
                w.fetch_and(mask, Ordering::SeqCst);
            }
        }
    }

    /// Adds slot `i` to the bitmaps of `buckets`. The word's bit goes first, its summary's
    /// second: a notifier that sees the summary bit then sees the word's (I7's lost wake-up
    /// argument holds word by word, see `wake_buckets`).
    pub(crate) fn add_buckets(&self, i: usize, buckets: &[usize]) {
        for &b in buckets {
            self.bucket_word(b, i / 64).fetch_or(1u64 << (i % 64), Ordering::SeqCst);
            self.word_summary(b).fetch_or(1u64 << (i / 64), Ordering::SeqCst);
        }
    }

    /// Adds slot `i` to prefix bucket `b`'s bitmap (`BUCKET_COUNT`: the patterns with a shorter
    /// literal prefix), word first, as `add_buckets`.
    pub(crate) fn add_prefix(&self, i: usize, b: usize) {
        self.prefix_word(b, i / 64).fetch_or(1u64 << (i % 64), Ordering::SeqCst);
        self.word_summary(BUCKET_COUNT + b).fetch_or(1u64 << (i / 64), Ordering::SeqCst);
    }

    pub(crate) fn remove_buckets(&self, i: usize, buckets: &[usize]) {
        for &b in buckets {
            self.bucket_word(b, i / 64).fetch_and(!(1u64 << (i % 64)), Ordering::SeqCst);
        }
    }

    /// Whether slot `i` listens on a channel of bucket `b` (conservatively).
    pub(crate) fn slot_in_bucket(&self, i: usize, b: usize) -> bool {
        self.bucket_word(b, i / 64).load(Ordering::SeqCst) & (1u64 << (i % 64)) != 0
    }

    /// Wakes every listener that may care about a channel in `buckets` (exact channels) or
    /// `prefixes` (prefix buckets of the channels, for pattern subscriptions), and the pattern
    /// subscriptions every commit wakes, except `me` (I7). A listener with a wake-up already
    /// pending costs one load and no system call. Only the words a bitmap's summary marks are
    /// looked at: with many listeners on other channels, a commit reads one summary and the few
    /// words that hold its own listeners. A slot added after this commit's append whose bits
    /// this misses reads the queue itself after adding them (its bits go in before it reads).
    /// `patterns`: whether a pattern subscription ever attached to this queue (else the prefix
    /// bitmaps are all empty and are not looked at).
    pub(crate) fn wake_buckets(&self, buckets: &[usize], prefixes: &[usize], patterns: bool, me: Option<usize>) {
        let words = (self.shared().slot_hwm.load(Ordering::SeqCst) as usize).min(SLOT_COUNT).div_ceil(64);
        let in_use = if words >= 64 { u64::MAX } else { (1u64 << words) - 1 };
        // Bucket `b`'s bitmap, or prefix bucket `b`'s when `prefix`.
        let wake_bitmap = |prefix: bool, b: usize| {
            let summary = if prefix { BUCKET_COUNT + b } else { b };
            for w in set_bits(self.word_summary(summary).load(Ordering::SeqCst) & in_use) {
                let word = if prefix { self.prefix_word(b, w) } else { self.bucket_word(b, w) };
                for i in set_bits(word.load(Ordering::SeqCst)).map(|bit| w * 64 + bit) {
                    if Some(i) != me {
                        self.wake(i);
                    }
                }
            }
        };
        for &b in buckets {
            wake_bitmap(false, b);
        }
        if patterns {
            for &b in prefixes {
                wake_bitmap(true, b);
            }
            wake_bitmap(true, BUCKET_COUNT);
        }
    }

    pub(crate) fn wake(&self, i: usize) {
        let slot = self.slot(i);
        if slot.wake_pending.load(Ordering::SeqCst) != 0 || slot.wake_pending.swap(1, Ordering::SeqCst) != 0 {
            return;
        }
        let _ = self.sender.send(self.dir.raw(), slot.sock_id.load(Ordering::SeqCst));
    }

    /// Whether the session owning slot `i` is alive: its byte lock is held by someone.
    pub(crate) fn slot_alive(&self, i: usize) -> bool {
        ofd_is_held(self.checker.as_raw_fd(), i as u64).unwrap_or(true)
    }

    /// Frees the slot of a session that died (called under the tail lock).
    pub(crate) fn reap(&self, i: usize) -> bool {
        match ofd_try_lock(self.checker.as_raw_fd(), i as u64) {
            Ok(true) => {
                self.clear_dead_slot(i);
                ofd_unlock(self.checker.as_raw_fd(), i as u64);
                true
            }
            _ => false,
        }
    }

    /// Backend PID of a registered listener (or attached subscriber) whose position is furthest
    /// behind.
    pub(crate) fn slowest_listener_pid(&self) -> Option<i32> {
        let hwm = (self.shared().slot_hwm.load(Ordering::SeqCst) as usize).min(SLOT_COUNT);
        (0..hwm)
            .filter(|&i| self.slot_in_use(i))
            .min_by_key(|&i| self.slot_floor(i))
            .map(|i| self.slot(i).pid.load(Ordering::SeqCst))
    }

    /// Whether slot `i` holds a position: a listener's or a subscription's.
    pub(crate) fn slot_in_use(&self, i: usize) -> bool {
        matches!(self.slot(i).state.load(Ordering::SeqCst), SLOT_ACTIVE | SLOT_SUBSCRIPTION)
    }
}
