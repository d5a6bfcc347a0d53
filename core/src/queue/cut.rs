//! Cutting a listener or subscription that fell too far behind (`queue/tail.rs` for lag limits,
//! `queue/append.rs` for a full queue under the cut policy): its floor `cut_to` jumps forward to
//! an entry boundary, and what it skipped on its channels is recorded in its slot, so that its
//! next receive reports one gap, with counts, before anything after it. Nothing is skipped
//! silently.
//!
//! The cutter holds the tail lock. It announces the cut (`cuts` odd) before it reads the slot's
//! floor and finishes it (`cuts` even) after recording; the owner reads `cuts` before a read of
//! the queue and after publishing its position, and if they differ takes the gap under the tail
//! lock, dropping what that read copied from the skipped range (it was counted as skipped). So a
//! notification is either delivered or counted, never both, never neither.

use super::pattern::Spec;
use super::read::Meta;
use super::{Queue, Segments};
use crate::error::Result;
use crate::layout::*;
use std::sync::atomic::Ordering::SeqCst;

/// What a slot receives, as far as a cutter or `stats` can tell from the control file.
pub(crate) enum Matcher {
    Specs(Vec<Spec>),
    /// The names did not fit in the slot's text: every notification counts.
    All,
}

impl Matcher {
    pub fn matches(&self, channel: &[u8]) -> bool {
        match self {
            Matcher::Specs(s) => s.iter().any(|s| s.matches(channel)),
            Matcher::All => true,
        }
    }
}

/// A gap taken by its owner.
pub(crate) struct TakenGap {
    pub skipped: u64,
    pub first_txn: u64,
    pub last_txn: u64,
    /// The skipped range: entries in `[from, to)` not yet handed out are dropped.
    pub from: u64,
    pub to: u64,
}

impl Queue {
    /// Where slot `i` reads from at the earliest: its position, or the floor its last cut set.
    pub(crate) fn slot_floor(&self, i: usize) -> u64 {
        let s = self.slot(i);
        (s.pos.load(SeqCst) & !POS_BUSY).max(s.cut_to.load(SeqCst))
    }

    pub(crate) fn slot_matcher(&self, i: usize) -> Matcher {
        match self.read_names(i).and_then(|n| n.channels) {
            Some(c) => Matcher::Specs(c.iter().map(|c| Spec::parse(c)).collect()),
            None => Matcher::All,
        }
    }

    /// Cuts slot `i` (tail lock held) to the first entry from its floor for which `keep` holds
    /// (or to the head). Returns the slot's floor afterwards.
    pub(crate) fn cut(&self, segs: &mut Segments, i: usize, head: u64, keep: impl Fn(&Meta) -> bool) -> Result<u64> {
        let slot = self.slot(i);
        slot.cuts.fetch_add(1, SeqCst); // announce: odd
        let floor = self.slot_floor(i).min(head);
        // An attached subscriber has read (not acknowledged) up to read_pos: those are its.
        let from = if slot.state.load(SeqCst) == SLOT_SUBSCRIPTION && self.slot_alive(i) {
            floor.max(slot.read_pos.load(SeqCst).min(head))
        } else {
            floor
        };
        let matcher = self.slot_matcher(i);
        let (mut stop, mut count, mut first, mut last) = (None, 0u64, 0u64, 0u64);
        let scanned = self.scan(
            segs,
            floor,
            head,
            |_| true,
            |channel, _, m| {
                if keep(&m) {
                    stop = Some(m.pos);
                    return false;
                }
                if m.pos >= from && matcher.matches(channel) {
                    if count == 0 {
                        first = m.txn;
                    }
                    count += 1;
                    last = m.txn;
                }
                true
            },
        );
        let result = match scanned.error {
            // A bad entry: cut no further than it (the owner meets the same error there).
            Some(e) if scanned.pos == floor => Err(e),
            _ => Ok(()),
        };
        let to = stop.unwrap_or(scanned.pos);
        if to > floor {
            if count > 0 {
                if slot.gap_count.load(SeqCst) == 0 {
                    slot.gap_from.store(from, SeqCst);
                    slot.gap_first_txn.store(first, SeqCst);
                }
                slot.gap_last_txn.store(last, SeqCst);
                slot.gap_count.fetch_add(count, SeqCst);
            }
            slot.cut_to.fetch_max(to, SeqCst);
        }
        slot.cuts.fetch_add(1, SeqCst); // done: even
        if to > floor {
            self.wake(i);
        }
        result.map(|()| to.max(floor))
    }

    /// Cuts slot `i` if it is past its lag limits (tail lock held).
    pub(crate) fn enforce_lag_limits(&self, segs: &mut Segments, i: usize, head: u64, now_ns: u64) -> Result<u64> {
        let slot = self.slot(i);
        let (max_bytes, max_age) = (slot.max_lag_bytes.load(SeqCst), slot.max_lag_age_ns.load(SeqCst));
        let floor = self.slot_floor(i).min(head);
        if (max_bytes == 0 && max_age == 0) || floor == head {
            return Ok(floor);
        }
        if max_age == 0 && head - floor <= max_bytes {
            return Ok(floor);
        }
        self.cut(segs, i, head, |m| {
            (max_bytes == 0 || head - m.pos <= max_bytes) && (max_age == 0 || m.time.saturating_add(max_age) >= now_ns)
        })
    }

    /// The owner of slot `i` takes its gap (waits for the tail lock: a cut under way finishes
    /// first). Returns the gap and the slot's `cuts` count it covers.
    pub(crate) fn take_gap(&self, i: usize) -> Result<(TakenGap, u64)> {
        let _g = self.tail_lock.lock()?;
        let slot = self.slot(i);
        let gap = TakenGap {
            skipped: slot.gap_count.swap(0, SeqCst),
            first_txn: slot.gap_first_txn.load(SeqCst),
            last_txn: slot.gap_last_txn.load(SeqCst),
            from: slot.gap_from.load(SeqCst),
            to: slot.cut_to.load(SeqCst),
        };
        Ok((gap, slot.cuts.load(SeqCst)))
    }
}
