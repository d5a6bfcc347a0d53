//! The read path: walk committed entries between a position and the head, checking every length
//! read from the shared file before using it, and whether the file was truncated under its
//! mapping meanwhile (I9).

use super::{Queue, Segments};
use crate::error::Error;
use crate::layout::*;

/// The payload of an entry being scanned, still in the shared mapping.
pub(crate) struct Payload {
    src: *const u8,
    len: usize,
}

impl Payload {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Appends a copy of the payload's bytes to `out`.
    pub fn copy_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.len);
        // SAFETY: scan checked that [src, src + len) lies inside a live mapping; `out` has room
        // for len more bytes, which are initialised by the copy before the length covers them.
        unsafe {
            std::ptr::copy_nonoverlapping(self.src, out.as_mut_ptr().add(out.len()), self.len);
            out.set_len(out.len() + self.len);
        }
    }
}

/// Where an entry lies and who committed it when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// The entry's position: unique in the queue's life, increasing in commit order.
    pub pos: u64,
    /// One past the entry.
    pub end: u64,
    /// The sender's backend PID.
    pub pid: i32,
    /// The commit sequence number.
    pub txn: u64,
    /// The commit time, in nanoseconds since the Unix epoch.
    pub time: u64,
}

/// What a scan produced.
pub(crate) struct Scanned {
    /// Where the next scan starts.
    pub pos: u64,
    /// Whether the scan stopped before `head` because the consumer asked it to.
    pub stopped_early: bool,
    /// Why the scan stopped at `pos` before `head`: a bad entry or segment file. What it copied
    /// out before that point is good, and `pos` is not past the bad entry.
    pub error: Option<Error>,
}

impl Queue {
    /// Walks entries in `[from, head)`. For each notification, `wants(channel)` decides whether to
    /// take it; `take(channel, payload, meta)` copies it out and returns `false` to stop after this
    /// entry. A bad entry ends the scan with [`Scanned::error`] set. When a segment file was found
    /// truncated under its mapping meanwhile, the error says so, and what was taken in this scan
    /// may hold zeros that were never written: the caller must drop it.
    pub(crate) fn scan(
        &self,
        segs: &mut Segments,
        from: u64,
        head: u64,
        wants: impl FnMut(&[u8]) -> bool,
        take: impl FnMut(&[u8], Payload, Meta) -> bool,
    ) -> Scanned {
        let mut scanned = self.scan_entries(segs, from, head, wants, take);
        if let Err(e) = self.check_damage(Some(segs)) {
            scanned.error = Some(e);
            scanned.stopped_early = false;
        }
        scanned
    }

    fn scan_entries(
        &self,
        segs: &mut Segments,
        from: u64,
        head: u64,
        mut wants: impl FnMut(&[u8]) -> bool,
        mut take: impl FnMut(&[u8], Payload, Meta) -> bool,
    ) -> Scanned {
        let seg_size = self.geo.segment_size;
        let mut pos = from;
        let mut chan = [0u8; MAX_CHANNEL_LEN];
        while pos < head {
            let off = (pos % seg_size) as usize;
            let room = seg_size as usize - off;
            if room < ENTRY_HEADER {
                pos += room as u64;
                continue;
            }
            let map = match segs.get(self, self.seg_of(pos), false, off == 0) {
                Ok(map) => map,
                Err(e) => return Scanned { pos, stopped_early: false, error: Some(e) },
            };
            let mut h = [0u8; ENTRY_HEADER];
            // SAFETY: off + ENTRY_HEADER <= segment_size, the mapping's length.
            unsafe { std::ptr::copy_nonoverlapping(map.as_ptr().add(off), h.as_mut_ptr(), ENTRY_HEADER) };
            let len = u32::from_ne_bytes(h[0..4].try_into().unwrap()) as usize;
            let kind = h[4];
            let chan_len = h[5] as usize;
            let pid = i32::from_ne_bytes(h[8..12].try_into().unwrap());
            let payload_len = u32::from_ne_bytes(h[12..16].try_into().unwrap()) as usize;
            let txn = u64::from_ne_bytes(h[16..24].try_into().unwrap());
            let time = u64::from_ne_bytes(h[24..32].try_into().unwrap());
            let bad = len < ENTRY_HEADER
                || len % ENTRY_ALIGN != 0
                || len > room
                || pos + len as u64 > head
                || match kind {
                    KIND_FILLER => len != room,
                    KIND_NOTIFICATION => {
                        chan_len == 0
                            || chan_len > MAX_CHANNEL_LEN
                            || payload_len > self.geo.max_payload
                            || ENTRY_HEADER + chan_len + payload_len > len
                    }
                    _ => true,
                };
            if bad {
                return Scanned { pos, stopped_early: false, error: Some(self.bad_entry(pos)) };
            }
            let next = pos + len as u64;
            if kind == KIND_NOTIFICATION {
                // SAFETY: ENTRY_HEADER + chan_len <= len <= room, inside the mapping.
                unsafe {
                    std::ptr::copy_nonoverlapping(map.as_ptr().add(off + ENTRY_HEADER), chan.as_mut_ptr(), chan_len)
                };
                let channel = &chan[..chan_len];
                if wants(channel) {
                    // SAFETY: the payload lies within the entry, checked above.
                    let payload =
                        Payload { src: unsafe { map.as_ptr().add(off + ENTRY_HEADER + chan_len) }, len: payload_len };
                    if !take(channel, payload, Meta { pos, end: next, pid, txn, time }) {
                        return Scanned { pos: next, stopped_early: next < head, error: None };
                    }
                }
            }
            pos = next;
        }
        Scanned { pos, stopped_early: false, error: None }
    }

    fn bad_entry(&self, pos: u64) -> Error {
        Error::corrupted(format!("invalid entry in the NOTIFY queue at position {pos}")).with_detail(format!(
            "Could not access async queue at page {}, offset {}.",
            pos / PAGE_SIZE,
            pos % PAGE_SIZE
        ))
    }
}
