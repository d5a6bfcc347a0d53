//! Exact channel lists beside the buckets: which channels (as 64-bit hashes) each listener
//! listens on, and which channels each segment holds notifications for. Tail advance uses them to
//! move an idle listener past segments it does not care about even when one of its channels
//! shares a bucket with a busy channel; when a list overflows, the buckets decide, as before.

use super::Queue;
use crate::layout::*;
use std::sync::atomic::Ordering::SeqCst;

/// A listener's channel hashes as read at one moment.
pub(crate) struct SlotHashes {
    hashes: [u64; SLOT_HASHES],
    len: usize,
}

impl Queue {
    fn slot_channels(&self, i: usize) -> &ChannelList<SLOT_HASHES> {
        assert!(i < SLOT_COUNT);
        // SAFETY: i < SLOT_COUNT keeps it inside the mapping (layout); 64-byte aligned atomics.
        unsafe { &*(self.control.as_ptr().add(self.layout.slot_channels) as *const ChannelList<SLOT_HASHES>).add(i) }
    }

    fn segment_channels(&self, seg: u64) -> &ChannelList<SEGMENT_HASHES> {
        let i = (seg % self.layout.summary_count as u64) as usize;
        // SAFETY: i < summary_count keeps it inside the mapping (layout); 64-byte aligned atomics.
        unsafe {
            &*(self.control.as_ptr().add(self.layout.segment_channels) as *const ChannelList<SEGMENT_HASHES>).add(i)
        }
    }

    /// Publishes the channels of slot `i` (its owner only). Readers meanwhile see an odd
    /// generation and treat the listener as interested in everything. An owner killed halfway
    /// left the generation odd: the next owner starts from there, so parity stays right.
    #[cfg(test)]
    pub(crate) fn set_slot_channels(&self, i: usize, hashes: &[u64]) {
        self.with_channels_gen(i, || self.store_slot_hashes(i, hashes));
    }

    /// Runs `write` with slot `i`'s generation odd (see `set_slot_channels`).
    pub(crate) fn with_channels_gen(&self, i: usize, write: impl FnOnce()) {
        let l = self.slot_channels(i);
        let writing = l.gen.load(SeqCst) | 1;
        l.gen.store(writing, SeqCst);
        write();
        l.gen.store(writing.wrapping_add(1), SeqCst);
    }

    /// What `read` returns if slot `i`'s generation was even and unchanged around it.
    pub(crate) fn read_under_channels_gen<T>(&self, i: usize, read: impl FnOnce() -> T) -> Option<T> {
        let l = self.slot_channels(i);
        let gen = l.gen.load(SeqCst);
        if gen % 2 == 1 {
            return None;
        }
        let v = read();
        (l.gen.load(SeqCst) == gen).then_some(v)
    }

    pub(crate) fn store_slot_hashes(&self, i: usize, hashes: &[u64]) {
        let l = self.slot_channels(i);
        if hashes.len() > SLOT_HASHES {
            l.count.store(HASHES_MANY, SeqCst);
        } else {
            for (slot, &h) in l.hashes.iter().zip(hashes) {
                slot.store(h, SeqCst);
            }
            l.count.store(hashes.len() as u32, SeqCst);
        }
    }

    /// The channels of slot `i`, or `None` when they are too many to list or being rewritten.
    pub(crate) fn slot_hashes(&self, i: usize) -> Option<SlotHashes> {
        let l = self.slot_channels(i);
        self.read_under_channels_gen(i, || {
            let len = l.count.load(SeqCst) as usize;
            if len > SLOT_HASHES {
                return None; // HASHES_MANY, or a damaged count
            }
            let mut hashes = [0; SLOT_HASHES];
            for (h, a) in hashes.iter_mut().zip(&l.hashes).take(len) {
                *h = a.load(SeqCst);
            }
            Some(SlotHashes { hashes, len })
        })
        .flatten()
    }

    /// Empties segment `seg`'s list before its first entry is written (writer lock held).
    pub(crate) fn reset_segment_channels(&self, seg: u64) {
        self.segment_channels(seg).count.store(0, SeqCst);
    }

    /// Records that segment `seg` holds a notification on the channel with hash `h` (writer lock
    /// held). The hash is stored before the count that covers it.
    pub(crate) fn note_segment_channel(&self, seg: u64, h: u64) {
        let l = self.segment_channels(seg);
        let n = l.count.load(SeqCst);
        if n as usize > SEGMENT_HASHES {
            return; // HASHES_MANY (or damaged: the buckets decide)
        }
        if l.hashes[..n as usize].iter().any(|a| a.load(SeqCst) == h) {
            return;
        }
        if n as usize == SEGMENT_HASHES {
            l.count.store(HASHES_MANY, SeqCst);
            return;
        }
        l.hashes[n as usize].store(h, SeqCst);
        l.count.store(n + 1, SeqCst);
    }

    /// Whether segment `seg` holds a notification on one of `slot`'s channels, or `None` when
    /// the segment's channels were too many to list.
    pub(crate) fn segment_has_any(&self, seg: u64, slot: &SlotHashes) -> Option<bool> {
        let l = self.segment_channels(seg);
        let n = l.count.load(SeqCst) as usize;
        if n > SEGMENT_HASHES {
            return None;
        }
        Some(l.hashes[..n].iter().any(|a| slot.hashes[..slot.len].contains(&a.load(SeqCst))))
    }
}

#[cfg(test)]
mod tests {
    use crate::{Options, Queue};
    use std::sync::atomic::Ordering::SeqCst;

    #[test]
    fn lists_read_back_overflow_to_buckets_and_survive_a_writer_killed_halfway() {
        let dir = std::env::temp_dir().join(format!("hark-unit-channels-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let q = Queue::open(&dir, &Options::new()).unwrap();
        q.set_slot_channels(3, &[10, 20]);
        let h = q.slot_hashes(3).unwrap();
        assert_eq!(&h.hashes[..h.len], [10, 20]);
        q.reset_segment_channels(7);
        q.note_segment_channel(7, 20);
        q.note_segment_channel(7, 20);
        assert_eq!(q.segment_channels(7).count.load(SeqCst), 1, "a channel is listed once");
        assert_eq!(q.segment_has_any(7, &h), Some(true));
        q.set_slot_channels(3, &[11]);
        assert_eq!(q.segment_has_any(7, &q.slot_hashes(3).unwrap()), Some(false));
        // Too many channels: no list, the buckets decide.
        q.set_slot_channels(3, &(0..16).collect::<Vec<u64>>());
        assert!(q.slot_hashes(3).is_none());
        for c in 0..40 {
            q.note_segment_channel(7, 100 + c);
        }
        assert_eq!(q.segment_has_any(7, &h), None);
        // An owner killed while rewriting leaves the generation odd: unreadable (conservative)
        // until the next owner writes, which must leave it readable again.
        q.slot_channels(3).gen.fetch_add(1, SeqCst);
        assert!(q.slot_hashes(3).is_none());
        q.set_slot_channels(3, &[12]);
        assert_eq!(q.slot_hashes(3).map(|h| h.hashes[0]), Some(12));
        drop(q);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
