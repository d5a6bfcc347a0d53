//! A session's inbox: notifications copied out of the queue and not yet handed to the caller.
//!
//! Channels and payloads lie back to back in one byte buffer, so that copying a notification out
//! of the queue costs one copy and no allocation; [`Inbox::pop`] lends them as `&str` until the
//! next call. Only [`crate::Connection::notifies`] allocates, to build an owned [`Notification`].

use super::event::Gap;
use super::Notification;
use crate::queue::Meta;
use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A notification lent by [`crate::Connection::notifies_ref`]: the fields of [`Notification`],
/// borrowed from the session until its next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NotificationRef<'a> {
    /// The channel name (libpq's `relname`).
    pub channel: &'a str,
    /// The payload, `""` when none was given (libpq's `extra`).
    pub payload: &'a str,
    /// PID of the process whose session sent it (libpq's `be_pid`).
    pub pid: i32,
    /// See [`Notification::position`].
    pub position: u64,
    /// See [`Notification::txn`].
    pub txn: u64,
    /// See [`Notification::commit_time`].
    pub commit_time: SystemTime,
}

impl NotificationRef<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> Notification {
        Notification {
            channel: self.channel.to_owned(),
            payload: self.payload.to_owned(),
            pid: self.pid,
            position: self.position,
            txn: self.txn,
            commit_time: self.commit_time,
        }
    }
}

/// What the inbox hands out next.
pub(crate) enum Item<'a> {
    Notification(NotificationRef<'a>),
    Gap(Gap),
}

#[derive(Clone, Copy)]
struct Entry {
    at: usize,
    channel_len: usize,
    payload_len: usize,
    meta: Meta,
}

#[derive(Default)]
pub(crate) struct Inbox {
    /// Channel and payload bytes of every entry; each range is valid UTF-8 (checked on the way in).
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    /// Entries before this one were handed out.
    next: usize,
    /// Gaps to hand out just before entry `.0` (in order; at most the entries' length).
    gaps: VecDeque<(usize, Gap)>,
}

/// The bytes of an entry were not UTF-8: the queue holds something no session wrote.
pub(crate) struct NotUtf8;

impl Inbox {
    pub fn len(&self) -> usize {
        self.entries.len() - self.next + self.gaps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.next == self.entries.len() && self.gaps.is_empty()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
        self.next = 0;
        self.gaps.clear();
    }

    /// Entries pushed so far.
    #[cfg(test)]
    pub fn pushed(&self) -> usize {
        self.entries.len()
    }

    /// Drops the entries not yet handed out whose positions lie in `[from, to)`, and puts `gap`
    /// where they were: before the first remaining entry at or past `to`.
    pub fn cut(&mut self, from: u64, to: u64, gap: Option<Gap>) {
        let keep_from = self.next;
        let mut kept = Vec::with_capacity(self.entries.len());
        kept.extend_from_slice(&self.entries[..keep_from]);
        for e in &self.entries[keep_from..] {
            if !(from..to).contains(&e.meta.pos) {
                kept.push(*e);
            }
        }
        self.entries = kept;
        // Gaps queued earlier stay before the entries they preceded.
        let last = self.entries.len();
        for g in self.gaps.iter_mut() {
            g.0 = g.0.min(last);
        }
        if let Some(gap) = gap {
            let at = self.entries[keep_from..].iter().position(|e| e.meta.pos >= to).map_or(last, |k| keep_from + k);
            self.gaps.push_back((at, gap));
        }
    }

    /// Makes room before a refill: forgets what was handed out (the last lent entry's bytes are
    /// no longer borrowed once the caller can call us again).
    pub fn compact(&mut self) {
        if self.next == 0 {
            return;
        }
        if self.is_empty() {
            self.clear();
            return;
        }
        if self.next * 2 < self.entries.len() || self.next == self.entries.len() {
            return; // cheap enough to keep: the buffer is mostly unread (or only gaps are)
        }
        let from = self.entries[self.next].at;
        self.bytes.drain(..from);
        self.entries.drain(..self.next);
        for e in &mut self.entries {
            e.at -= from;
        }
        for g in self.gaps.iter_mut() {
            g.0 -= self.next;
        }
        self.next = 0;
    }

    /// How many entries not yet handed out lie in `[from, to)`, with the commit sequence numbers
    /// of the first and last of them.
    pub fn count_unread(&self, from: u64, to: u64) -> (u64, u64, u64) {
        let mut hits = self.entries[self.next..].iter().filter(|e| (from..to).contains(&e.meta.pos));
        let Some(first) = hits.next() else { return (0, 0, 0) };
        let (n, last) = hits.fold((1, first.meta.txn), |(n, _), e| (n + 1, e.meta.txn));
        (n, first.meta.txn, last)
    }

    /// Appends a notification. `channel` is one the session listens on (so it is UTF-8);
    /// `copy_payload` appends the payload's bytes to the vector it is given. The payload is checked
    /// after the copy, never in shared memory that another process could change meanwhile.
    pub fn push(&mut self, channel: &[u8], meta: Meta, copy_payload: impl FnOnce(&mut Vec<u8>)) -> Result<(), NotUtf8> {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(channel);
        let payload_at = self.bytes.len();
        copy_payload(&mut self.bytes);
        if std::str::from_utf8(&self.bytes[at..]).is_err() {
            self.bytes.truncate(at);
            return Err(NotUtf8);
        }
        let payload_len = self.bytes.len() - payload_at;
        self.entries.push(Entry { at, channel_len: channel.len(), payload_len, meta });
        Ok(())
    }

    /// Where the notification [`Inbox::pop`] hands out next ends in the queue (`None` if a gap
    /// or nothing comes next).
    pub fn next_end(&self) -> Option<u64> {
        if self.gaps.front().is_some_and(|g| g.0 <= self.next) {
            return None;
        }
        self.entries.get(self.next).map(|e| e.meta.end)
    }

    /// Hands out the oldest notification or gap.
    pub fn pop(&mut self) -> Option<Item<'_>> {
        if self.gaps.front().is_some_and(|g| g.0 <= self.next) {
            return self.gaps.pop_front().map(|g| Item::Gap(g.1));
        }
        let e = *self.entries.get(self.next)?;
        self.next += 1;
        let text = &self.bytes[e.at..e.at + e.channel_len + e.payload_len];
        // SAFETY: push checked that these bytes are UTF-8, and channel_len is at a character
        // boundary (the channel alone is UTF-8).
        let text = unsafe { std::str::from_utf8_unchecked(text) };
        let (channel, payload) = text.split_at(e.channel_len);
        Some(Item::Notification(NotificationRef {
            channel,
            payload,
            pid: e.meta.pid,
            position: e.meta.pos,
            txn: e.meta.txn,
            commit_time: UNIX_EPOCH + Duration::from_nanos(e.meta.time),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(i: &mut Inbox, c: &str, p: &[u8]) -> bool {
        let pos = i.pushed() as u64 * 8;
        i.push(c.as_bytes(), Meta { pos, end: pos + 8, pid: 7, txn: 1, time: 0 }, |v| v.extend_from_slice(p)).is_ok()
    }

    fn pop(i: &mut Inbox) -> Option<NotificationRef<'_>> {
        match i.pop()? {
            Item::Notification(n) => Some(n),
            Item::Gap(g) => panic!("unexpected gap {g:?}"),
        }
    }

    #[test]
    fn hands_out_in_order_and_compacts() {
        let mut i = Inbox::default();
        for k in 0..10 {
            assert!(push(&mut i, "ch", format!("p{k}").as_bytes()));
        }
        for k in 0..6 {
            let n = pop(&mut i).unwrap();
            assert_eq!((n.channel, n.payload.to_owned(), n.pid), ("ch", format!("p{k}"), 7));
        }
        i.compact();
        assert_eq!(i.len(), 4);
        assert!(push(&mut i, "other", b"last"));
        let rest: Vec<_> = std::iter::from_fn(|| pop(&mut i).map(|n| n.to_owned())).collect();
        let got: Vec<_> = rest.iter().map(|n| (n.channel.as_str(), n.payload.as_str())).collect();
        assert_eq!(got, [("ch", "p6"), ("ch", "p7"), ("ch", "p8"), ("ch", "p9"), ("other", "last")]);
        assert!(i.is_empty());
        i.compact();
        assert!(i.bytes.is_empty() && i.entries.is_empty());
    }

    #[test]
    fn refuses_bytes_that_are_not_utf8_and_keeps_the_rest() {
        let mut i = Inbox::default();
        assert!(push(&mut i, "ch", "ok é".as_bytes()));
        assert!(!push(&mut i, "ch", b"bad \xff"));
        assert!(push(&mut i, "ch", b""));
        assert_eq!(i.len(), 2);
        assert_eq!(pop(&mut i).unwrap().payload, "ok é");
        assert_eq!(pop(&mut i).unwrap().payload, "");
        assert!(i.pop().is_none());
    }

    #[test]
    fn a_cut_drops_the_skipped_range_and_puts_its_gap_in_order() {
        let mut i = Inbox::default();
        for k in 0..6 {
            assert!(push(&mut i, "ch", format!("p{k}").as_bytes())); // positions 0, 8, …, 40
        }
        assert_eq!(pop(&mut i).unwrap().payload, "p0");
        let gap = Gap { skipped: 3, first_txn: 1, last_txn: 1, resumed_at: 32 };
        i.cut(0, 32, Some(gap)); // p0 was handed out: kept; p1..p3 dropped
        match i.pop() {
            Some(Item::Gap(g)) => assert_eq!(g, gap),
            _ => panic!("the gap comes first"),
        }
        assert_eq!(pop(&mut i).unwrap().payload, "p4");
        i.compact();
        assert_eq!(pop(&mut i).unwrap().payload, "p5");
        assert!(i.pop().is_none() && i.is_empty());
    }
}
