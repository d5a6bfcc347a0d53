//! Each slot's names in the control file (`SlotText`): a subscription's name, and the channels
//! and patterns of a listener or subscription, for `hark stat` and for counting what a cut skips.
//! Written by the slot's owner under its channel list's generation (a seqlock, `channels.rs`).

use super::Queue;
use crate::layout::*;
use std::sync::atomic::Ordering::SeqCst;

/// A slot's names as read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Names {
    pub name: String,
    /// Channels and patterns; `None` when they did not fit in the slot's text.
    pub channels: Option<Vec<String>>,
}

impl Queue {
    fn slot_text(&self, i: usize) -> &SlotText {
        assert!(i < SLOT_COUNT);
        // SAFETY: i < SLOT_COUNT keeps it inside the mapping (layout); 8-byte aligned atomics.
        unsafe { &*(self.control.as_ptr().add(self.layout.slot_text) as *const SlotText).add(i) }
    }

    /// Writes slot `i`'s names (its owner, or a registrant holding its byte lock). Called inside
    /// `write_channels`, between the generation's two increments.
    pub(crate) fn write_names(&self, i: usize, name: &str, channels: &[&str]) {
        let t = self.slot_text(i);
        let mut at = 0;
        let put = |b: &[u8], at: &mut usize| -> bool {
            if *at + b.len() > SLOT_TEXT_LEN {
                return false;
            }
            for (k, &c) in b.iter().enumerate() {
                t.bytes[*at + k].store(c, SeqCst);
            }
            *at += b.len();
            true
        };
        put(name.as_bytes(), &mut at);
        let name_len = at;
        let fits = channels.iter().all(|c| put(c.as_bytes(), &mut at) && put(b"\n", &mut at));
        t.name_len.store(name_len as u32, SeqCst);
        t.len.store(if fits { at as u32 } else { u32::MAX }, SeqCst);
    }

    /// Publishes slot `i`'s channel hashes and names together (see `set_slot_channels`).
    pub(crate) fn write_channels(&self, i: usize, hashes: &[u64], name: &str, channels: &[&str]) {
        self.with_channels_gen(i, || {
            self.store_slot_hashes(i, hashes);
            crate::sys::fault::park(crate::sys::fault::Point::Names);
            self.write_names(i, name, channels);
        });
    }

    /// The name of subscription slot `i`, read under the tail lock, which every writer of a
    /// subscription's text holds: no generation check, so that a writer killed halfway (the
    /// generation left odd, the name rewritten with the same bytes) leaves it findable.
    pub(crate) fn subscription_name_locked(&self, i: usize) -> Vec<u8> {
        let t = self.slot_text(i);
        let name_len = (t.name_len.load(SeqCst) as usize).min(SLOT_TEXT_LEN);
        text_bytes(t, 0..name_len)
    }

    /// Slot `i`'s names, or `None` while they are being rewritten.
    pub(crate) fn read_names(&self, i: usize) -> Option<Names> {
        self.read_under_channels_gen(i, || {
            let t = self.slot_text(i);
            let name_len = (t.name_len.load(SeqCst) as usize).min(SLOT_TEXT_LEN);
            let len = t.len.load(SeqCst);
            let name = String::from_utf8_lossy(&text_bytes(t, 0..name_len)).into_owned();
            let channels = (len as usize <= SLOT_TEXT_LEN && len as usize >= name_len).then(|| {
                let raw = text_bytes(t, name_len..len as usize);
                raw.split(|&b| b == b'\n')
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            });
            Names { name, channels }
        })
    }

    /// Word `w` of prefix bucket `b`'s bitmap of slots (`b == BUCKET_COUNT`: the slots whose
    /// patterns every commit wakes).
    pub(crate) fn prefix_word(&self, b: usize, w: usize) -> &std::sync::atomic::AtomicU64 {
        assert!(b <= BUCKET_COUNT && w < BUCKET_WORDS);
        // SAFETY: in bounds by the assertion and the layout; 8-byte aligned atomics.
        unsafe {
            &*(self.control.as_ptr().add(self.layout.prefix_buckets) as *const std::sync::atomic::AtomicU64)
                .add(b * BUCKET_WORDS + w)
        }
    }
}

/// The bytes of `t` in `range`, each an atomic load.
fn text_bytes(t: &SlotText, range: std::ops::Range<usize>) -> Vec<u8> {
    range.map(|k| t.bytes[k].load(SeqCst)).collect()
}
