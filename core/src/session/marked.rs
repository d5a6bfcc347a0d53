//! Publishing numbered items from a source outside hark (a SQLite database's outbox) exactly
//! once, with the source's publication mark (`queue/marks.rs`).

use super::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::layout::{bucket_of, BUCKET_COUNT};
use crate::queue::pattern::channel_prefix_bucket;
use crate::queue::MarkedAppend;

/// One numbered item of a source: (number, channel, payload). Numbers grow in the source's
/// commit order.
pub type MarkedItem<'a> = (u64, &'a str, &'a str);

impl Connection {
    /// Publishes, as one transaction of this session, the `items` (in increasing number order)
    /// that the publication mark `key` has not covered yet, and advances the mark to the last
    /// item's number with the very store that makes them visible. Items at or below the mark
    /// (published before, by any process, even one killed right after) are left out, so calling
    /// this again with the same items, after a crash or from a racing process, publishes nothing
    /// twice. Returns the number of items published.
    ///
    /// Outside a transaction block only. `key` names the source (any value but 0); a queue holds
    /// up to 1024 marks, for as long as it lives.
    pub fn publish_marked(&mut self, key: u64, items: &[MarkedItem]) -> Result<usize> {
        self.check_usable()?;
        if !self.block.is_idle() {
            return Err(Error::new(
                ErrorKind::TransactionState,
                "25001",
                "publish_marked cannot run inside a transaction block",
            ));
        }
        let Some(last) = items.last() else { return Ok(0) };
        for w in items.windows(2) {
            if w[0].0 >= w[1].0 {
                return Err(Error::invalid("publish_marked needs items in increasing number order"));
            }
        }
        for &(_, channel, payload) in items {
            self.check_notify(channel, payload)?;
        }
        let mark = MarkedAppend::new(key, last.0);
        let floor = &mark.floor;
        let pending = items.iter().filter(move |it| it.0 > floor.get()).map(|&(_, c, p)| (c.as_bytes(), p.as_bytes()));
        let pid = self.backend_pid();
        let o = self.queue.append(&mut self.rx.segs, pid, Some(&mark), pending.clone())?;
        if o.end == o.start {
            return Ok(0);
        }
        // Wake as a commit does (session/commit.rs): the channels' buckets and prefix buckets;
        // one notification (a SQLite transaction's usual event) without building bucket sets.
        let patterns = self.queue.shared().patterns_used.load(std::sync::atomic::Ordering::SeqCst) != 0;
        let mut it = pending.peekable();
        let first = it.next().map(|(c, _)| c);
        let count = match (first, it.peek()) {
            (Some(c), None) => {
                let prefix = if patterns { channel_prefix_bucket(c) } else { None };
                self.queue.wake_buckets(&[bucket_of(c)], prefix.as_slice(), patterns, self.rx.slot);
                1
            }
            _ => {
                let mut seen = [0u64; BUCKET_COUNT / 64];
                let mut seen_prefix = [0u64; BUCKET_COUNT / 64];
                let mut count = 0;
                for c in first.into_iter().chain(it.map(|(c, _)| c)) {
                    let b = bucket_of(c);
                    seen[b / 64] |= 1 << (b % 64);
                    if let Some(b) = channel_prefix_bucket(c) {
                        seen_prefix[b / 64] |= 1 << (b % 64);
                    }
                    count += 1;
                }
                let set = |seen: &[u64]| -> Vec<usize> {
                    (0..BUCKET_COUNT).filter(|b| seen[b / 64] & (1 << (b % 64)) != 0).collect()
                };
                self.queue.wake_buckets(&set(&seen), &set(&seen_prefix), patterns, self.rx.slot);
                count
            }
        };
        if o.crossed_segment {
            if let Some(n) = super::receiver::truncate_after_the_fact(&self.queue) {
                self.notice(n);
            }
        }
        if let Some(w) = o.warning {
            self.notice(w);
        }
        Ok(count)
    }

    /// The publication mark `key`'s value as far as it is known to be published (0 if never).
    pub fn published_mark(&self, key: u64) -> Result<u64> {
        self.check_usable()?;
        self.queue.published_mark(key)
    }
}

impl Connection {
    /// PostgreSQL's checks on `pg_notify`'s arguments against this session's queue (empty or too
    /// long channel, too long payload, NUL), with its messages: what a notification must pass to
    /// be published, for a caller that stores it before publishing it.
    pub fn check_notification(&self, channel: &str, payload: &str) -> Result<()> {
        self.check_notify(channel, payload)
    }
}
