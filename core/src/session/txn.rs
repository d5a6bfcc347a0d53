//! A transaction's pending work: notifications (deduplicated, in first-occurrence order) and
//! listen actions, with savepoints (R7–R9, R16).

use super::fxhash::{Fx, FxBuild};
use crate::error::{Error, ErrorKind, Result};
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

/// A pending notification: its channel and payload lie back to back in `Txn::text` from `at`.
#[derive(Clone, Copy)]
struct Pending {
    at: usize,
    channel_len: usize,
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

    /// Pending notifications, in order: (channel, payload).
    pub fn notifies(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone {
        self.notifies.iter().map(|p| self.get(p))
    }

    fn get(&self, p: &Pending) -> (&str, &str) {
        let c = &self.text[p.at..p.at + p.channel_len];
        let q = &self.text[p.at + p.channel_len..p.at + p.channel_len + p.payload_len];
        (c, q)
    }

    /// Adds a notification unless an equal one is pending in this transaction (R16). Pending
    /// entries of enclosing savepoints count: releasing a savepoint would drop the duplicate
    /// anyway, keeping the earlier position, and rolling back drops both.
    pub fn notify(&mut self, channel: &str, payload: &str) {
        let equal = |p: &Pending| self.get(p) == (channel, payload);
        let k = self.hashing().then(|| key(channel, payload));
        let dup = match k {
            Some(k) => match self.dedup.get(&k) {
                None => false,
                // Equal hashes: the same notification, or (rarely) a collision to scan past.
                Some(&i) => equal(&self.notifies[i as usize]) || self.notifies.iter().any(equal),
            },
            None => self.notifies.iter().any(equal),
        };
        if dup {
            return;
        }
        let at = self.text.len();
        self.text.push_str(channel);
        self.text.push_str(payload);
        self.notifies.push(Pending { at, channel_len: channel.len(), payload_len: payload.len() });
        match k {
            Some(k) => {
                self.dedup.entry(k).or_insert((self.notifies.len() - 1) as u32);
            }
            None if self.hashing() => self.reindex(),
            None => {}
        }
    }

    /// Whether the duplicate index is in use (PostgreSQL's switch from a list scan to a hash).
    fn hashing(&self) -> bool {
        self.notifies.len() >= DEDUP_HASH_FROM
    }

    /// Rebuilds the duplicate index from the pending notifications, reusing its allocation.
    fn reindex(&mut self) {
        let mut map = std::mem::take(&mut self.dedup);
        map.clear();
        for (i, (c, p)) in self.notifies().enumerate() {
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
        self.savepoints
            .iter()
            .rposition(|s| s.name == name)
            .ok_or_else(|| Error::new(ErrorKind::TransactionState, "3B001", format!("savepoint \"{name}\" does not exist")))
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
        if let Some(first_undone) = self.notifies.get(sp.notifies) {
            self.text.truncate(first_undone.at);
        }
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

fn key(channel: &str, payload: &str) -> u64 {
    let mut h = Fx::default();
    h.write(channel.as_bytes());
    h.write_u8(0);
    h.write(payload.as_bytes());
    h.finish()
}
