//! Tail advance and truncation (PostgreSQL's asyncQueueAdvanceTail), with hark's additions:
//! listeners of dead sessions are reaped, and idle listeners whose channels were not notified in
//! the segments behind them are moved forward directly, so that they never pin the queue (I5).

use super::{segment_name, set_bits, Queue, SPARE};
use crate::error::{Error, Result};
use crate::layout::*;
use std::sync::atomic::Ordering;

impl Queue {
    /// Recomputes the tail and deletes segment files wholly behind it.
    ///
    /// With `full` false (a session crossed into another segment) the work is skipped when
    /// another session is already doing it, and only listeners that hold the tail back are
    /// checked for a dead owner: asking the kernel about a byte lock walks every lock on `slots`,
    /// so checking all of them would cost O(listeners²) per segment. With `full` true (the queue
    /// looks full, or stats are asked for) it waits for the lock and reaps every dead listener.
    ///
    /// `Ok(Some(e))`: the tail moved, but a segment file behind it could not be removed; the
    /// next advance tries again from that one.
    pub(crate) fn advance_tail(&self, full: bool) -> Result<Option<Error>> {
        let _g = if full {
            self.lock_tail()?
        } else {
            match self.try_lock_tail()? {
                Some(g) => g,
                None => return Ok(None),
            }
        };
        self.advance_tail_locked(full)
    }

    /// A full advance if nobody else is advancing the tail; `None` (without waiting) if someone
    /// is, since that process may be stopped while holding the lock.
    pub(crate) fn advance_tail_if_free(&self) -> Result<Option<Option<Error>>> {
        match self.try_lock_tail()? {
            Some(_g) => Ok(Some(self.advance_tail_locked(true)?)),
            None => Ok(None),
        }
    }

    /// The smallest position of a listener or subscription, read without the tail lock (`head`
    /// if none).
    pub(crate) fn slowest_position(&self, head: u64) -> u64 {
        let hwm = (self.shared().slot_hwm.load(Ordering::SeqCst) as usize).min(SLOT_COUNT);
        (0..hwm).filter(|&i| self.slot_in_use(i)).map(|i| self.slot_floor(i)).fold(head, u64::min)
    }

    pub(super) fn advance_tail_locked(&self, full: bool) -> Result<Option<Error>> {
        crate::sys::fault::park(crate::sys::fault::Point::Tail);
        let s = self.shared();
        let seg_size = self.geo.segment_size;
        // The head is read before any listener's channels: every segment behind it is complete,
        // and a channel added after this load is only owed notifications committed later.
        let head = self.head()?;
        let (stored, stop) = (s.tail.load(Ordering::SeqCst), s.stop.load(Ordering::SeqCst));
        // Checked before the walks below, which they bound (the lock is released on error).
        if !self.stored_tail_fits(head, stored, stop) {
            return Err(Error::corrupted(format!(
                "control file of queue \"{}\" is corrupted (head {head}, tail {stored}, first segment {stop})",
                self.path().display()
            )));
        }
        let head_seg = self.seg_of(head);
        let mut tail = head;
        let hwm = (s.slot_hwm.load(Ordering::SeqCst) as usize).min(SLOT_COUNT);
        let mut segs = None;
        let now = crate::sys::proc::realtime_ns();
        for i in 0..hwm {
            let slot = self.slot(i);
            let state = slot.state.load(Ordering::SeqCst);
            if state != SLOT_ACTIVE && state != SLOT_SUBSCRIPTION {
                continue;
            }
            let raw = slot.pos.load(Ordering::SeqCst);
            let cut_to = slot.cut_to.load(Ordering::SeqCst);
            let mut pos = (raw & !POS_BUSY).max(cut_to).min(head);
            if pos < stored {
                if !self.slot_in_use(i) {
                    // Given back meanwhile (which takes no lock): cleared to 0 after it was
                    // marked free, so this second look tells it from damage.
                    continue;
                }
                // Positions only move forward, and the stored tail was their minimum.
                return Err(Error::corrupted(format!(
                    "control file of queue \"{}\" is corrupted (listener {i} at {pos}, behind the tail {stored})",
                    self.path().display()
                )));
            }
            // A subscription outlives its sessions: only listeners are reaped.
            let reapable = state == SLOT_ACTIVE;
            if reapable && full && !self.slot_alive(i) && self.reap(i) {
                continue; // its owner died: it no longer holds the queue back
            }
            if slot.max_lag_bytes.load(Ordering::SeqCst) != 0 || slot.max_lag_age_ns.load(Ordering::SeqCst) != 0 {
                let segs = segs.get_or_insert_with(super::Segments::default);
                // A bad entry stops the cut where it is; the owner meets the error itself.
                pos = self.enforce_lag_limits(segs, i, head, now).unwrap_or(pos).max(pos);
            }
            if self.seg_of(pos) < head_seg {
                if raw & POS_BUSY == 0 && raw >= cut_to && !self.interested(i, self.seg_of(pos), head_seg) {
                    let to = head_seg * seg_size;
                    if slot.pos.compare_exchange(raw, to, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                        pos = to;
                    }
                } else if reapable && !full && !self.slot_alive(i) && self.reap(i) {
                    continue; // it held the tail back, and its owner died
                } else if raw & POS_BUSY == 0 {
                    // Far behind and interested: make sure it is awake to catch up.
                    self.wake(i);
                }
            }
            tail = tail.min(pos);
        }
        s.tail.store(tail, Ordering::SeqCst);
        let tail_seg = self.seg_of(tail);
        for seg in stop..tail_seg {
            // Keep one file for the writer to reuse as its next segment (see SPARE); only a
            // regular file, whatever else someone may have put in its place.
            let name = segment_name(seg);
            let kept = self.dir.is_regular_file(&name) && matches!(self.dir.rename_noreplace(&name, SPARE), Ok(true));
            if !kept {
                if let Err(e) = self.dir.unlink(&name) {
                    s.stop.store(seg, Ordering::SeqCst);
                    return Ok(Some(e));
                }
            }
        }
        if tail_seg > stop {
            s.stop.store(tail_seg, Ordering::SeqCst);
        }
        Ok(None)
    }

    /// Whether any segment in `[from, to)` holds a notification on a channel of slot `i`: by the
    /// exact channel lists where both are listed, else by channel buckets (conservatively).
    fn interested(&self, i: usize, from: u64, to: u64) -> bool {
        if self.slot(i).flags.load(Ordering::SeqCst) & SLOT_PATTERNS != 0 {
            return true; // patterns match channels no bucket or list names
        }
        let exact = self.slot_hashes(i);
        (from..to).any(|seg| {
            if let Some(hit) = exact.as_ref().and_then(|h| self.segment_has_any(seg, h)) {
                return hit;
            }
            (0..SUMMARY_WORDS).any(|w| {
                set_bits(self.summary_word(seg, w).load(Ordering::SeqCst))
                    .any(|bit| self.slot_in_bucket(i, w * 64 + bit))
            })
        })
    }
}
