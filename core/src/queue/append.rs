//! The commit path: append a transaction's entries under the writer lock and publish them by
//! moving the head once.

use super::marks::MarkedAppend;
use super::{Queue, Segments};
use crate::error::{Error, ErrorKind, Notice, Result, Severity};
use crate::layout::*;
use crate::sys::proc;
use std::sync::atomic::Ordering;

/// One notification to append: (channel, payload), both checked. Consecutive items whose
/// channel is the very same slice (same address and length) are known to share a channel.
type Item<'a> = (&'a [u8], &'a [u8]);

pub(crate) struct AppendOutcome {
    /// Where this transaction's entries start and end.
    pub start: u64,
    pub end: u64,
    /// The head moved into a new segment: time to try advancing the tail.
    pub crossed_segment: bool,
    /// PostgreSQL's half-full warning, when due.
    pub warning: Option<Notice>,
}

/// Rate limit of the half-full warning, for the whole queue (PostgreSQL: 5 s).
const WARNING_INTERVAL_NS: u64 = 5_000_000_000;

impl Queue {
    /// Appends `items` (already checked, deduplicated, non-empty) as one transaction from `pid`.
    /// Either every entry becomes visible at once or none does (I1): entries are written past the
    /// head and the head is moved last, under the writer lock.
    pub(crate) fn append<'a>(
        &self,
        segs: &mut Segments,
        pid: i32,
        mark: Option<&MarkedAppend>,
        items: impl Iterator<Item = Item<'a>> + Clone,
    ) -> Result<AppendOutcome> {
        let s = self.shared();
        let seg_size = self.geo.segment_size;
        let guard = self.write_lock.lock()?;
        // A holder that died mid-append left bytes past the head and nothing else: the head is
        // the truth, so recovery is to carry on (guard.recovered needs no action).
        let _ = guard.recovered;
        // The head and tail are checked before anything is laid out from them: a corrupted
        // control file fails the commit (releasing the lock), it never sends the tail advance
        // below walking billions of segments.
        let (head, mut tail) = self.head_and_tail()?;
        if let Some(m) = mark {
            // Sets the floor the items are filtered by: nothing is left when all were published.
            self.mark_begin(m, head)?;
        }

        // Lay the entries out first, to check the size limit before writing anything.
        let mut end = head;
        for (channel, payload) in items.clone() {
            end = place(end, entry_size(channel.len(), payload.len()) as u64, seg_size).1;
        }
        if end == head {
            return Ok(AppendOutcome { start: head, end, crossed_segment: false, warning: None });
        }
        if Self::page_of(end) - Self::page_of(tail) >= self.max_pages() {
            // The stored tail may be stale: recompute it, then decide.
            // (A segment file that could not be removed does not hold the tail back.)
            let _ = self.advance_tail(true)?;
            tail = self.head_and_tail()?.1;
            if Self::page_of(end) - Self::page_of(tail) >= self.max_pages() && self.geo.cut_laggards {
                // The cut policy: move the readers that hold the queue back far enough to leave
                // a quarter of it free, so that a stopped reader costs a cut per quarter-queue of
                // traffic, not one per commit.
                let keep_pages = self.max_pages() - self.max_pages() / 4;
                let target = (Self::page_of(end) + 1).saturating_sub(keep_pages) * PAGE_SIZE;
                let _ = self.cut_laggards(segs, head, target)?;
                tail = self.head_and_tail()?.1;
            }
            if Self::page_of(end) - Self::page_of(tail) >= self.max_pages() {
                return Err(Error::new(ErrorKind::QueueFull, "54000", "too many notifications in the NOTIFY queue")
                    .with_detail(format!(
                        "The queue holds {} of at most {} bytes; this transaction needs {} more.",
                        head - tail,
                        self.geo.max_queue_size,
                        end - head
                    )));
            }
        }
        let warning = self.fill_warning(head, tail);

        let txn = s.next_txn.load(Ordering::SeqCst);
        s.next_txn.store(txn + 1, Ordering::SeqCst);
        let time = proc::realtime_ns();
        let mut pos = head;
        // Carried from entry to entry: the mapping written into, the last channel's hash, and the
        // last (segment, channel hash) recorded in a segment's channel list.
        let mut map: Option<(u64, *mut u8)> = None;
        let mut last_channel: Option<(*const u8, usize, u64)> = None;
        let mut noted: Option<(u64, u64)> = None;
        for (channel, payload) in items {
            let size = entry_size(channel.len(), payload.len()) as u64;
            let (at, next) = place(pos, size, seg_size);
            let seg = self.seg_of(at);
            if at != pos && seg_size - pos % seg_size >= ENTRY_HEADER as u64 {
                // Cover the rest of the old segment with a filler so readers can walk it.
                let base = segs.get(self, self.seg_of(pos), true, false)?.as_ptr();
                let filler = (seg_size - pos % seg_size) as usize;
                write_header(base, (pos % seg_size) as usize, filler, KIND_FILLER, 0, 0, 0, txn, time);
            }
            if at % seg_size == 0 {
                // First entry in a fresh segment: reset its summary before recording into it.
                for w in 0..SUMMARY_WORDS {
                    self.summary_word(seg, w).store(0, Ordering::SeqCst);
                }
                self.reset_segment_channels(seg);
            }
            let base = match map {
                Some((s, base)) if s == seg => base,
                _ => {
                    let base = segs.get(self, seg, true, at % seg_size == 0)?.as_ptr();
                    map = Some((seg, base));
                    base
                }
            };
            let off = (at % seg_size) as usize;
            write_header(
                base,
                off,
                size as usize,
                KIND_NOTIFICATION,
                channel.len() as u8,
                pid,
                payload.len() as u32,
                txn,
                time,
            );
            // SAFETY: place() keeps [off, off + size) inside the segment, which is mapped with
            // segment_size bytes (and stays mapped: `segs` keeps its two latest mappings, and only
            // this segment and the previous one are touched here); nobody reads past the head, so
            // these bytes are ours alone.
            unsafe {
                let body = base.add(off + ENTRY_HEADER);
                std::ptr::copy_nonoverlapping(channel.as_ptr(), body, channel.len());
                std::ptr::copy_nonoverlapping(payload.as_ptr(), body.add(channel.len()), payload.len());
            }
            let h = match last_channel {
                Some((p, n, h)) if p == channel.as_ptr() && n == channel.len() => h,
                _ => {
                    let h = channel_hash(channel);
                    last_channel = Some((channel.as_ptr(), channel.len(), h));
                    h
                }
            };
            if noted != Some((seg, h)) {
                self.note_segment_channel(seg, h);
                noted = Some((seg, h));
            }
            let b = bucket_of_hash(h);
            let word = self.summary_word(seg, b / 64);
            let bit = 1u64 << (b % 64);
            if word.load(Ordering::Relaxed) & bit == 0 {
                word.fetch_or(bit, Ordering::SeqCst);
            }
            pos = next;
        }
        debug_assert_eq!(pos, end);
        crate::sys::fault::park(crate::sys::fault::Point::Append);
        // A file truncated under us took the bytes just written (they went to private zero
        // pages, see sys/guard.rs): fail the commit rather than publish them.
        self.check_damage(Some(segs))?;
        if let Some(m) = mark {
            self.mark_prepare(m, end);
        }
        // Publish: one store makes the whole transaction visible.
        s.head.store(end, Ordering::SeqCst);
        if let Some(m) = mark {
            self.mark_finish(m);
        }
        drop(guard);
        Ok(AppendOutcome { start: head, end, crossed_segment: self.seg_of(head) != self.seg_of(end), warning })
    }

    /// Cuts every reader whose floor lies before `target` to the first entry at or after it, then
    /// advances the tail (writer lock held; takes the tail lock).
    fn cut_laggards(&self, segs: &mut Segments, head: u64, target: u64) -> Result<Option<Error>> {
        let _g = self.lock_tail()?;
        let hwm = (self.shared().slot_hwm.load(Ordering::SeqCst) as usize).min(SLOT_COUNT);
        for i in 0..hwm {
            if self.slot_in_use(i) && self.slot_floor(i) < target {
                self.cut(segs, i, head, |m| m.pos >= target)?;
            }
        }
        self.advance_tail_locked(true)
    }

    /// PostgreSQL's `NOTIFY queue is N% full` warning, at most once per interval for the queue.
    fn fill_warning(&self, head: u64, tail: u64) -> Option<Notice> {
        let usage = (Self::page_of(head) - Self::page_of(tail)) as f64 / self.max_pages() as f64;
        if usage < 0.5 {
            return None;
        }
        let s = self.shared();
        let now = proc::monotonic_ns();
        let last = s.last_warning.load(Ordering::SeqCst);
        if last != 0 && now.saturating_sub(last) < WARNING_INTERVAL_NS {
            return None;
        }
        if s.last_warning.compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return None;
        }
        let mut n = Notice::new(Severity::Warning, "01000", format!("NOTIFY queue is {:.0}% full", usage * 100.0));
        if let Some(pid) = self.slowest_listener_pid() {
            n.detail = Some(format!("The server process with PID {pid} is among those with the oldest transactions."));
            // PostgreSQL's hint blames an open transaction; in hark the listener furthest behind is
            // usually one that is not reading (idle, or busy elsewhere), and never blocked by one.
            n.hint = Some(
                "The NOTIFY queue cannot be emptied until that session reads its notifications (a listener that is not reading holds it back) or stops listening.".into(),
            );
        }
        Some(n)
    }
}

/// Where an entry of `size` bytes goes if the free space starts at `pos`: the same segment when it
/// fits, else the start of the next one. Returns (entry start, position after it).
fn place(pos: u64, size: u64, seg_size: u64) -> (u64, u64) {
    let room = seg_size - pos % seg_size;
    let at = if room < size { pos + room } else { pos };
    (at, at + size)
}

#[allow(clippy::too_many_arguments)]
fn write_header(
    base: *mut u8,
    off: usize,
    len: usize,
    kind: u8,
    chan_len: u8,
    pid: i32,
    payload_len: u32,
    txn: u64,
    time: u64,
) {
    let mut h = [0u8; ENTRY_HEADER];
    h[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
    h[4] = kind;
    h[5] = chan_len;
    h[8..12].copy_from_slice(&pid.to_ne_bytes());
    h[12..16].copy_from_slice(&payload_len.to_ne_bytes());
    h[16..24].copy_from_slice(&txn.to_ne_bytes());
    h[24..32].copy_from_slice(&time.to_ne_bytes());
    // SAFETY: callers pass an offset with at least ENTRY_HEADER bytes left in the mapping.
    unsafe { std::ptr::copy_nonoverlapping(h.as_ptr(), base.add(off), ENTRY_HEADER) };
}
