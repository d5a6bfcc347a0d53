//! Cutting a listener or subscription that fell too far behind (`queue/tail.rs` for lag limits,
//! `queue/append.rs` for a full queue under the cut policy): its floor `cut_to` jumps forward to
//! an entry boundary, and what it skipped on its channels is recorded in its slot, so that its
//! next receive reports one gap, with counts, before anything after it. Nothing is skipped
//! silently.
//!
//! The cutter holds the tail lock. It announces the cut (`cuts` odd) before it reads the slot's
//! floor and finishes it (`cuts` even) after recording; the owner compares `cuts` with the count
//! whose gaps it took after every read of the queue (having published its position), and if
//! they differ takes the gap under the tail lock, dropping what it copied from the skipped range
//! (it was counted as skipped). So a notification is either delivered or counted, never both,
//! never neither. Three cases need more than that:
//!
//! - Two cuts before the owner takes the first: the owner may have published a position past the
//!   first cut's floor in between (a read that overlapped the first cut). The second cut counts
//!   from that position; what lies between the first cut's floor and it (the hole) was read by
//!   the owner, counted by nobody, and inside the range the owner drops: the owner counts what it
//!   drops from the hole itself.
//! - A subscriber's read but unacknowledged notifications behind a cut's floor: the queue no longer
//!   holds them for a later attach, so the cut counts them as owed; the owner lowers the count as
//!   it acknowledges, and what is still owed when the next session attaches becomes its gap.
//! - A cutter killed halfway: a cut writes its outcome whole into the slot's journal before
//!   applying it, and the next holder of the tail lock (which learns of the death from the robust
//!   mutex) applies a journal that belongs to an unfinished cut, or finishes the cut as empty.

use super::pattern::Spec;
use super::read::Meta;
use super::{Queue, Segments};
use crate::error::Result;
use crate::layout::*;
use crate::sys::mutex::Guard;
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

/// A slot's gap record (the fields a cut writes), in journal order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct GapState {
    pub count: u64,
    pub from: u64,
    pub first_txn: u64,
    pub last_txn: u64,
    pub cut_to: u64,
    pub hole_from: u64,
    pub hole_to: u64,
    pub owed_to: u64,
    pub owed_count: u64,
    pub owed_first_txn: u64,
    pub owed_last_txn: u64,
}

impl GapState {
    fn fields(s: &Slot) -> [&std::sync::atomic::AtomicU64; JOURNAL_LEN - 1] {
        [
            &s.gap_count,
            &s.gap_from,
            &s.gap_first_txn,
            &s.gap_last_txn,
            &s.cut_to,
            &s.hole_from,
            &s.hole_to,
            &s.owed_to,
            &s.owed_count,
            &s.owed_first_txn,
            &s.owed_last_txn,
        ]
    }

    fn to_array(self) -> [u64; JOURNAL_LEN - 1] {
        [
            self.count,
            self.from,
            self.first_txn,
            self.last_txn,
            self.cut_to,
            self.hole_from,
            self.hole_to,
            self.owed_to,
            self.owed_count,
            self.owed_first_txn,
            self.owed_last_txn,
        ]
    }

    fn from_array(a: [u64; JOURNAL_LEN - 1]) -> GapState {
        let [count, from, first_txn, last_txn, cut_to, hole_from, hole_to, owed_to, owed_count, owed_first_txn, owed_last_txn] =
            a;
        GapState {
            count,
            from,
            first_txn,
            last_txn,
            cut_to,
            hole_from,
            hole_to,
            owed_to,
            owed_count,
            owed_first_txn,
            owed_last_txn,
        }
    }

    pub fn load(s: &Slot) -> GapState {
        GapState::from_array(Self::fields(s).map(|f| f.load(SeqCst)))
    }

    /// Stores every field (tail lock held); `cut_to` only ever moves forward. `halfway` runs
    /// after the count is stored and before the floor is (a test's crash point).
    fn store(self, s: &Slot, halfway: impl Fn()) {
        for (k, (f, v)) in Self::fields(s).into_iter().zip(self.to_array()).enumerate() {
            if k == 1 {
                halfway();
            }
            if std::ptr::eq(f, &s.cut_to) {
                f.fetch_max(v, SeqCst);
            } else {
                f.store(v, SeqCst);
            }
        }
    }
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

    /// Takes the tail lock, finishing first the cuts of a holder that died with it.
    pub(crate) fn lock_tail(&self) -> Result<Guard<'_>> {
        let g = self.tail_lock.lock()?;
        if g.recovered {
            self.finish_interrupted_cuts();
        }
        Ok(g)
    }

    /// The tail lock if it is free now (see [`Queue::lock_tail`]).
    pub(crate) fn try_lock_tail(&self) -> Result<Option<Guard<'_>>> {
        let g = self.tail_lock.try_lock()?;
        if g.as_ref().is_some_and(|g| g.recovered) {
            self.finish_interrupted_cuts();
        }
        Ok(g)
    }

    /// Every slot whose `cuts` is odd lost its cutter (we hold the tail lock, so none runs):
    /// applies the cut's journal if it was written whole, then ends the cut.
    fn finish_interrupted_cuts(&self) {
        let hwm = (self.shared().slot_hwm.load(SeqCst) as usize).min(SLOT_COUNT);
        for i in 0..hwm {
            let slot = self.slot(i);
            let cuts = slot.cuts.load(SeqCst);
            if cuts % 2 == 0 {
                continue;
            }
            if slot.journal[0].load(SeqCst) == cuts {
                let mut a = [0u64; JOURNAL_LEN - 1];
                for (v, j) in a.iter_mut().zip(&slot.journal[1..]) {
                    *v = j.load(SeqCst);
                }
                GapState::from_array(a).store(slot, || {});
            }
            slot.cuts.fetch_add(1, SeqCst);
            self.wake(i);
        }
    }

    /// Begins a change of slot `i`'s gap record (tail lock held): `cuts` odd. Returns the mark
    /// that [`Queue::commit_gap`] needs.
    fn begin_gap_change(&self, i: usize) -> u64 {
        self.slot(i).cuts.fetch_add(1, SeqCst) + 1
    }

    /// Writes `new` into slot `i`'s journal, then into its record, then ends the change begun
    /// with `mark` (`cuts` even). A death anywhere in here is finished by the next locker.
    fn commit_gap(&self, i: usize, mark: u64, new: GapState) {
        let slot = self.slot(i);
        for (j, v) in slot.journal[1..].iter().zip(new.to_array()) {
            j.store(v, SeqCst);
        }
        slot.journal[0].store(mark, SeqCst); // the journal is whole
        new.store(slot, || crate::sys::fault::park(crate::sys::fault::Point::Cut));
        slot.cuts.fetch_add(1, SeqCst); // done: even
    }

    /// Cuts slot `i` (tail lock held) to the first entry from its floor for which `keep` holds
    /// (or to the head). Returns the slot's floor afterwards.
    pub(crate) fn cut(&self, segs: &mut Segments, i: usize, head: u64, keep: impl Fn(&Meta) -> bool) -> Result<u64> {
        let slot = self.slot(i);
        let mark = self.begin_gap_change(i); // announced: the owner's reads from here are suspect
        let old = GapState::load(slot);
        let floor = self.slot_floor(i).min(head);
        // An attached subscriber has read (not acknowledged) up to read_pos: those are its, and
        // owed if it does not acknowledge them.
        let from = if slot.state.load(SeqCst) == SLOT_SUBSCRIPTION && self.slot_alive(i) {
            floor.max(slot.read_pos.load(SeqCst).min(head))
        } else {
            floor
        };
        // With a gap pending, a start past the last cut's floor is the owner's read between the
        // two cuts: the owner drops it with the gap and counts it (the module's comment).
        let hole = old.count > 0 && from > old.cut_to;
        let matcher = self.slot_matcher(i);
        let (mut stop, mut count, mut first, mut last) = (None, 0u64, 0u64, 0u64);
        let (mut owed, mut owed_first, mut owed_last) = (0u64, 0u64, 0u64);
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
                if !matcher.matches(channel) {
                    return true;
                }
                if m.pos >= from {
                    if count == 0 {
                        first = m.txn;
                    }
                    count += 1;
                    last = m.txn;
                } else if !hole {
                    if owed == 0 {
                        owed_first = m.txn;
                    }
                    owed += 1;
                    owed_last = m.txn;
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
        let mut new = old;
        if to > floor {
            if count > 0 {
                if old.count == 0 {
                    new.from = from;
                    new.first_txn = first;
                    new.hole_from = 0;
                    new.hole_to = 0;
                }
                new.last_txn = last;
                new.count = old.count + count;
            }
            if hole {
                debug_assert!(old.hole_from == old.hole_to, "one hole per pending gap");
                new.hole_from = old.cut_to;
                new.hole_to = from;
            }
            if owed > 0 {
                if old.owed_to == 0 {
                    new.owed_count = 0;
                    new.owed_first_txn = owed_first;
                }
                new.owed_count += owed;
                new.owed_last_txn = owed_last;
                new.owed_to = old.owed_to.max(from.min(to));
            }
            new.cut_to = old.cut_to.max(to);
        }
        self.commit_gap(i, mark, new);
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

    /// Whether the owner of slot `i`, about to read, must check its lag limits under the tail
    /// lock: it is past its byte limit by a lock-free look, or `age_due` and it has an age limit
    /// (checking age costs a walk, so the caller asks at most once a millisecond).
    pub(crate) fn past_own_limits(&self, i: usize, age_due: bool) -> bool {
        let slot = self.slot(i);
        let (max_bytes, max_age) = (slot.max_lag_bytes.load(SeqCst), slot.max_lag_age_ns.load(SeqCst));
        let head = self.shared().head.load(SeqCst);
        (max_bytes != 0 && head.saturating_sub(self.slot_floor(i)) > max_bytes) || (max_age != 0 && age_due)
    }

    /// The owner of slot `i` takes its gap (waits for the tail lock: a cut under way finishes
    /// first): the slot's gap record as it was (`count` skipped, from `first_txn` to `last_txn`;
    /// entries in `[from, cut_to)` not yet handed out are dropped, and the owner adds to the
    /// count what it drops from `[hole_from, hole_to)`, which no cutter counted), and the slot's
    /// `cuts` count it covers. With `own_segs`, the owner first cuts itself if it is past its
    /// limits (a limit holds at each read even when no tail advance checked it), in the same
    /// hold of the lock, so that what a cutter skipped while it was away and what it skips now
    /// make one gap, never two in a row.
    pub(crate) fn take_gap(&self, i: usize, own_segs: Option<&mut Segments>) -> Result<(GapState, u64)> {
        let _g = self.lock_tail()?;
        if let Some(segs) = own_segs {
            let head = self.head()?;
            self.enforce_lag_limits(segs, i, head, crate::sys::proc::realtime_ns())?;
        }
        let slot = self.slot(i);
        let old = GapState::load(slot);
        if old.count != 0 || old.hole_from != old.hole_to {
            let mark = self.begin_gap_change(i);
            self.commit_gap(i, mark, GapState { count: 0, hole_from: 0, hole_to: 0, ..old });
        }
        Ok((old, slot.cuts.load(SeqCst)))
    }

    /// The owner of subscription slot `i` acknowledged `acked` notifications read before the
    /// position `through`: lowers what a cut left owed (tail lock taken only when something is).
    pub(crate) fn settle_owed(&self, i: usize, acked_before_owed: impl Fn(u64) -> u64, through: u64) -> Result<()> {
        let slot = self.slot(i);
        if slot.owed_to.load(SeqCst) == 0 {
            return Ok(());
        }
        let _g = self.lock_tail()?;
        let old = GapState::load(slot);
        if old.owed_to == 0 {
            return Ok(());
        }
        let mut new = old;
        if through >= old.owed_to {
            new.owed_to = 0;
            new.owed_count = 0;
        } else {
            new.owed_count = old.owed_count.saturating_sub(acked_before_owed(old.owed_to));
        }
        if new != old {
            let mark = self.begin_gap_change(i);
            self.commit_gap(i, mark, new);
        }
        Ok(())
    }

    /// What slot `i`'s next gap will count as far as it is known now (`alive`: a session owns
    /// it, which may still acknowledge what it owes).
    pub(crate) fn gap_pending(&self, i: usize, alive: bool) -> u64 {
        let g = GapState::load(self.slot(i));
        g.count + if alive || g.owed_to == 0 { 0 } else { g.owed_count }
    }

    /// Clears slot `i`'s gap record for a new owner (tail lock held, no cut under way).
    pub(crate) fn reset_gap(&self, i: usize) {
        for f in GapState::fields(self.slot(i)) {
            f.store(0, SeqCst);
        }
    }

    /// What a subscription owed when its last session went away becomes the gap of the session
    /// attaching now (tail lock held), before what cuts skipped since.
    pub(crate) fn owed_into_gap(&self, i: usize) {
        let slot = self.slot(i);
        let old = GapState::load(slot);
        if old.owed_to == 0 {
            return;
        }
        let mut new = GapState { owed_to: 0, owed_count: 0, owed_first_txn: 0, owed_last_txn: 0, ..old };
        if old.owed_count > 0 {
            new.first_txn = old.owed_first_txn;
            if old.count == 0 {
                new.last_txn = old.owed_last_txn;
                new.from = 0;
                new.hole_from = 0;
                new.hole_to = 0;
            }
            new.count = old.count + old.owed_count;
        }
        let mark = self.begin_gap_change(i);
        self.commit_gap(i, mark, new);
    }
}
