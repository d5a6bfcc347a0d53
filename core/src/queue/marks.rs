//! Publication marks: for a source of notifications outside hark (a SQLite database's outbox),
//! the highest item it has published, advanced by the very head store that publishes the items.
//!
//! A source numbers its items in its own commit order and publishes them after its own commit;
//! a process killed between the source's commit and the head store leaves items that the next
//! publisher must publish, and one killed after the head store leaves items that it must not
//! publish again. The mark tells the two apart without scanning the queue.
//!
//! A mark (`layout::Mark`) holds `committed`, `pending` and `pending_head`; every field changes
//! under the writer lock. Its *value* is `pending` when the head has reached `pending_head` (the
//! append that set it published), else `committed`. An append that advances a mark, under the
//! writer lock: reads the value and leaves out the items at or below it; stores that value in
//! `committed`; sets `pending_head` to `u64::MAX`, `pending` to the new value and `pending_head`
//! to the head it is about to store; stores the head (the commit); sets `committed` to the new
//! value. Killed at any point before the head store, the value read by the next writer is the old
//! one (the head is below `pending_head`); killed after it, the new one. Heads only grow, so a
//! later append never makes an old `pending_head` look unreached.
//!
//! Marks live in the control file, so a wiped queue (after a reboot) forgets them along with
//! every notification, as PostgreSQL forgets its queue at start.

use super::Queue;
use crate::error::{Error, ErrorKind, Result};
use crate::layout::{Mark, MARK_COUNT};
use std::cell::Cell;
use std::sync::atomic::Ordering::SeqCst;

/// A mark to advance with an append: items whose number is at or below the mark's value (read
/// under the writer lock into `floor`) are left out by the caller's item iterator.
pub(crate) struct MarkedAppend {
    pub key: u64,
    /// The value the mark takes when the append publishes.
    pub value: u64,
    /// The mark's value before the append, set by `begin`.
    pub floor: Cell<u64>,
    index: Cell<usize>,
}

impl MarkedAppend {
    pub(crate) fn new(key: u64, value: u64) -> MarkedAppend {
        MarkedAppend { key, value, floor: Cell::new(0), index: Cell::new(usize::MAX) }
    }
}

impl Queue {
    fn mark_at(&self, i: usize) -> &Mark {
        assert!(i < MARK_COUNT);
        // SAFETY: i < MARK_COUNT keeps the mark inside the mapping (layout.marks + MARK_COUNT
        // marks is within layout.size); Mark is all atomics.
        unsafe { &*(self.control.as_ptr().add(self.layout.marks) as *const Mark).add(i) }
    }

    /// The index of `key`'s mark; with `claim` (under the writer lock), a free one is taken for
    /// it. Marks are never given back, so probing from the key's home stops at its mark or at a
    /// free one.
    fn find_mark(&self, key: u64, claim: bool) -> Result<Option<usize>> {
        let home = (key % MARK_COUNT as u64) as usize;
        for n in 0..MARK_COUNT {
            let i = (home + n) % MARK_COUNT;
            let m = self.mark_at(i);
            match m.key.load(SeqCst) {
                k if k == key => return Ok(Some(i)),
                0 if claim => {
                    m.committed.store(0, SeqCst);
                    m.pending.store(0, SeqCst);
                    m.pending_head.store(u64::MAX, SeqCst);
                    m.key.store(key, SeqCst);
                    return Ok(Some(i));
                }
                0 => return Ok(None),
                _ => {}
            }
        }
        if claim {
            return Err(Error::new(
                ErrorKind::TooManyListeners,
                "53400",
                "too many publication marks in the NOTIFY queue",
            )
            .with_detail(format!("The queue holds {MARK_COUNT} marks, one per database that publishes into it.")));
        }
        Ok(None)
    }

    /// A mark's value as the writer lock's holder sees it (see the module's prose).
    fn mark_value(&self, m: &Mark, head: u64) -> u64 {
        let ph = m.pending_head.load(SeqCst);
        if ph != u64::MAX && head >= ph {
            m.pending.load(SeqCst)
        } else {
            m.committed.load(SeqCst)
        }
    }

    /// The queue's random id, drawn when it was created: a queue wiped and created anew (after a
    /// reboot) has another one.
    pub fn queue_id(&self) -> u64 {
        // SAFETY: the header lies at the start of the mapping and is never written after creation.
        unsafe { (*(self.control.as_ptr() as *const crate::layout::Header)).queue_id }
    }

    /// `key`'s mark (0 for a key never published), read without the lock: a value every reader
    /// may rely on having been published, possibly lower than the mark's latest.
    pub fn published_mark(&self, key: u64) -> Result<u64> {
        self.check_damage(None)?;
        Ok(match self.find_mark(key, false)? {
            Some(i) => self.mark_at(i).committed.load(SeqCst),
            None => 0,
        })
    }

    /// Under the writer lock, before the items are laid out: finds (or claims) the mark and
    /// records its value in `m.floor`.
    pub(crate) fn mark_begin(&self, m: &MarkedAppend, head: u64) -> Result<()> {
        if m.key == 0 {
            return Err(Error::invalid("a publication mark's key must not be 0"));
        }
        let i = self.find_mark(m.key, true)?.expect("claimed");
        m.index.set(i);
        m.floor.set(self.mark_value(self.mark_at(i), head));
        Ok(())
    }

    /// Under the writer lock, just before the head store that publishes up to `end`.
    pub(crate) fn mark_prepare(&self, m: &MarkedAppend, end: u64) {
        let mark = self.mark_at(m.index.get());
        mark.committed.store(m.floor.get(), SeqCst);
        mark.pending_head.store(u64::MAX, SeqCst);
        crate::sys::fault::park(crate::sys::fault::Point::MarkPending);
        mark.pending.store(m.value.max(m.floor.get()), SeqCst);
        mark.pending_head.store(end, SeqCst);
    }

    /// Under the writer lock, just after the head store.
    pub(crate) fn mark_finish(&self, m: &MarkedAppend) {
        crate::sys::fault::park(crate::sys::fault::Point::AfterHead);
        let mark = self.mark_at(m.index.get());
        mark.committed.store(m.value.max(m.floor.get()), SeqCst);
    }
}
