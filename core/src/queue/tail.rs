//! Tail advance and truncation (PostgreSQL's asyncQueueAdvanceTail), with hark's additions:
//! listeners of dead sessions are reaped, and idle listeners whose channels were not notified in
//! the segments behind them are moved forward directly, so that they never pin the queue (I5).

use super::{segment_name, Queue};
use crate::error::Result;
use crate::layout::*;
use std::sync::atomic::Ordering;

impl Queue {
    /// Recomputes the tail and deletes segment files wholly behind it. With `wait` false the work
    /// is skipped when another session is already doing it.
    pub(crate) fn advance_tail(&self, wait: bool) -> Result<()> {
        let _g = if wait {
            self.tail_lock.lock()?
        } else {
            match self.tail_lock.try_lock()? {
                Some(g) => g,
                None => return Ok(()),
            }
        };
        let s = self.shared();
        let seg_size = self.geo.segment_size;
        // The head is read before any listener's channels: every segment behind it is complete,
        // and a channel added after this load is only owed notifications committed later.
        let head = s.head.load(Ordering::SeqCst);
        let head_seg = self.seg_of(head);
        let mut tail = head;
        let hwm = (s.slot_hwm.load(Ordering::SeqCst) as usize).min(SLOT_COUNT);
        for i in 0..hwm {
            let slot = self.slot(i);
            if slot.state.load(Ordering::SeqCst) != SLOT_ACTIVE {
                continue;
            }
            let raw = slot.pos.load(Ordering::SeqCst);
            let mut pos = (raw & !POS_BUSY).min(head);
            if !self.slot_alive(i) && self.reap(i) {
                continue; // its owner died: it no longer holds the queue back
            }
            if self.seg_of(pos) < head_seg && raw & POS_BUSY == 0 {
                if !self.interested(i, self.seg_of(pos), head_seg) {
                    let to = head_seg * seg_size;
                    if slot.pos.compare_exchange(raw, to, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                        pos = to;
                    }
                } else {
                    // Far behind and interested: make sure it is awake to catch up.
                    self.wake(i);
                }
            }
            tail = tail.min(pos);
        }
        s.tail.store(tail, Ordering::SeqCst);
        let tail_seg = self.seg_of(tail);
        let stop = s.stop.load(Ordering::SeqCst);
        if tail_seg > stop {
            for seg in stop..tail_seg {
                self.dir.unlink(&segment_name(seg))?;
            }
            s.stop.store(tail_seg, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Whether any segment in `[from, to)` holds a notification on a channel bucket of slot `i`.
    fn interested(&self, i: usize, from: u64, to: u64) -> bool {
        (from..to).any(|seg| {
            (0..SUMMARY_WORDS).any(|w| {
                let mut bits = self.summary_word(seg, w).load(Ordering::SeqCst);
                while bits != 0 {
                    let b = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    if self.slot_in_bucket(i, b) {
                        return true;
                    }
                }
                false
            })
        })
    }
}
