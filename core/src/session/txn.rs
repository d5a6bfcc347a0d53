//! A transaction's pending work: notifications (deduplicated, in first-occurrence order) and
//! listen actions, with savepoints (R7–R9, R16).

use super::fxhash::{Fx, FxBuild};
use crate::error::{Error, ErrorKind, Result};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::Hasher;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListenAction {
    Listen(String),
    Unlisten(String),
    UnlistenAll,
}

struct Savepoint {
    name: String,
    notifies: usize,
    actions: usize,
}

/// PostgreSQL scans the pending list until it is this long, then builds a hash table.
const DEDUP_HASH_FROM: usize = 16;

/// A pending notification: its channel and payload bytes in `Txn::text`. A run of notifications
/// on one channel shares the channel's bytes (`chan_at` is the same), which also tells the commit
/// that they share a channel bucket.
#[derive(Clone, Copy)]
struct Pending {
    chan_at: usize,
    chan_len: usize,
    at: usize,
    payload_len: usize,
}

#[derive(Default)]
pub(crate) struct Txn {
    /// Channels and payloads of pending notifications, in one buffer (no allocation per entry).
    text: String,
    notifies: Vec<Pending>,
    /// Hash of (channel, payload) → index of its first occurrence. It is kept up to date only
    /// while 16 or more notifications are pending; below that a scan is used, and the map only
    /// keeps its allocation for the next transaction.
    dedup: HashMap<u64, u32, FxBuild>,
    pub actions: Vec<ListenAction>,
    savepoints: Vec<Savepoint>,
}

impl Txn {
    /// Empties the transaction, keeping its allocations for the next one.
    pub fn clear(&mut self) {
        self.text.clear();
        self.notifies.clear();
        self.actions.clear();
        self.savepoints.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.notifies.is_empty() && self.actions.is_empty()
    }

    pub fn has_notifies(&self) -> bool {
        !self.notifies.is_empty()
    }

    /// Pending notifications, in order: (channel, payload). Consecutive notifications on one
    /// channel yield the very same channel slice (same address).
    pub fn notifies(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + Clone {
        let text = self.text.as_bytes();
        self.notifies.iter().map(move |p| get(text, p))
    }

    /// Adds a notification unless an equal one is pending in this transaction (R16). Pending
    /// entries of enclosing savepoints count: releasing a savepoint would drop the duplicate
    /// anyway, keeping the earlier position, and rolling back drops both.
    pub fn notify(&mut self, channel: &str, payload: &str) {
        let want = (channel.as_bytes(), payload.as_bytes());
        let text = self.text.as_bytes();
        let equal = |p: &Pending| get(text, p) == want;
        if self.hashing() {
            match self.dedup.entry(key(want.0, want.1)) {
                Entry::Vacant(v) => {
                    v.insert(self.notifies.len() as u32);
                }
                // Equal hashes: the same notification, or (rarely) a collision to scan past; the
                // index keeps pointing at the first of them.
                Entry::Occupied(o) => {
                    if equal(&self.notifies[*o.get() as usize]) || self.notifies.iter().any(equal) {
                        return;
                    }
                }
            }
            self.push(channel, payload);
        } else {
            if self.notifies.iter().any(equal) {
                return;
            }
            self.push(channel, payload);
            if self.hashing() {
                self.reindex();
            }
        }
    }

    fn push(&mut self, channel: &str, payload: &str) {
        let chan_at = match self.notifies.last() {
            Some(p) if &self.text.as_bytes()[p.chan_at..p.chan_at + p.chan_len] == channel.as_bytes() => p.chan_at,
            _ => {
                self.text.push_str(channel);
                self.text.len() - channel.len()
            }
        };
        let at = self.text.len();
        self.text.push_str(payload);
        self.notifies.push(Pending { chan_at, chan_len: channel.len(), at, payload_len: payload.len() });
    }

    /// Whether the duplicate index is in use (PostgreSQL's switch from a list scan to a hash).
    fn hashing(&self) -> bool {
        self.notifies.len() >= DEDUP_HASH_FROM
    }

    /// Rebuilds the duplicate index from the pending notifications, reusing its allocation.
    fn reindex(&mut self) {
        let mut map = std::mem::take(&mut self.dedup);
        map.clear();
        let text = self.text.as_bytes();
        for (i, (c, p)) in self.notifies.iter().map(|p| get(text, p)).enumerate() {
            map.entry(key(c, p)).or_insert(i as u32);
        }
        self.dedup = map;
    }

    pub fn savepoint(&mut self, name: &str) {
        self.savepoints.push(Savepoint {
            name: name.to_owned(),
            notifies: self.notifies.len(),
            actions: self.actions.len(),
        });
    }

    fn find(&self, name: &str) -> Result<usize> {
        self.savepoints.iter().rposition(|s| s.name == name).ok_or_else(|| {
            Error::new(ErrorKind::TransactionState, "3B001", format!("savepoint \"{name}\" does not exist"))
        })
    }

    /// `RELEASE name`: the savepoint and every later one end; their work passes to the parent.
    pub fn release(&mut self, name: &str) -> Result<()> {
        let i = self.find(name)?;
        self.savepoints.truncate(i);
        Ok(())
    }

    /// `ROLLBACK TO name`: undoes everything since the savepoint, which stays.
    pub fn rollback_to(&mut self, name: &str) -> Result<()> {
        let i = self.find(name)?;
        let sp = &self.savepoints[i];
        // The kept notifications' bytes end where the last kept payload ends (a later one may
        // share its channel, never the other way round).
        let keep = match sp.notifies {
            0 => 0,
            n => self.notifies[n - 1].at + self.notifies[n - 1].payload_len,
        };
        self.text.truncate(keep);
        self.notifies.truncate(sp.notifies);
        self.actions.truncate(sp.actions);
        self.savepoints.truncate(i + 1);
        if self.hashing() {
            self.reindex();
        }
        Ok(())
    }

    /// Replays the listen actions over the committed set (R9), keeping LISTEN order.
    pub fn final_channels(&self, committed: &[String]) -> Vec<String> {
        let mut order: Vec<String> = committed.to_vec();
        let mut on: HashSet<String> = committed.iter().cloned().collect();
        for a in &self.actions {
            match a {
                ListenAction::Listen(c) => {
                    if on.insert(c.clone()) {
                        order.push(c.clone());
                    }
                }
                ListenAction::Unlisten(c) => {
                    on.remove(c);
                }
                ListenAction::UnlistenAll => on.clear(),
            }
        }
        // A channel turned off and on again keeps its first place, as PostgreSQL's list did.
        order.retain(|c| on.remove(c));
        order
    }
}

fn get<'a>(text: &'a [u8], p: &Pending) -> (&'a [u8], &'a [u8]) {
    (&text[p.chan_at..p.chan_at + p.chan_len], &text[p.at..p.at + p.payload_len])
}

fn key(channel: &[u8], payload: &[u8]) -> u64 {
    let mut h = Fx::default();
    h.write(channel);
    h.write_u8(0);
    h.write(payload);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(t: &Txn) -> Vec<(String, String)> {
        t.notifies()
            .map(|(c, p)| (String::from_utf8(c.to_vec()).unwrap(), String::from_utf8(p.to_vec()).unwrap()))
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(c, p)| (c.to_string(), p.to_string())).collect()
    }

    #[test]
    fn a_run_on_one_channel_shares_its_bytes_and_rolls_back_cleanly() {
        let mut t = Txn::default();
        t.notify("a", "1");
        t.notify("a", "2");
        let chans: Vec<*const u8> = t.notifies().map(|(c, _)| c.as_ptr()).collect();
        assert_eq!(chans[0], chans[1]);
        t.savepoint("s");
        t.notify("a", "3");
        t.notify("b", "4");
        t.notify("a", "5");
        t.rollback_to("s").unwrap();
        assert_eq!(pending(&t), pairs(&[("a", "1"), ("a", "2")]));
        t.notify("a", "6");
        t.notify("bb", "7");
        assert_eq!(pending(&t), pairs(&[("a", "1"), ("a", "2"), ("a", "6"), ("bb", "7")]));
    }

    #[test]
    fn duplicates_fold_below_and_above_the_hashing_threshold() {
        let mut t = Txn::default();
        for round in 0..2 {
            for i in 0..40 {
                t.notify(if i % 3 == 0 { "x" } else { "y" }, &format!("{i}"));
            }
            assert_eq!(t.notifies().len(), 40, "round {round}");
        }
        t.savepoint("s");
        for i in 40..60 {
            t.notify("x", &format!("{i}"));
        }
        t.rollback_to("s").unwrap();
        assert_eq!(t.notifies().len(), 40);
        t.notify("x", "0"); // still folded after the index was rebuilt
        t.notify("x", "40"); // undone before, so new again
        assert_eq!(t.notifies().len(), 41);
        let want: Vec<_> = (0..40).map(|i| ((if i % 3 == 0 { "x" } else { "y" }).to_string(), i.to_string())).collect();
        assert_eq!(pending(&t)[..40], want[..]);
    }
}
