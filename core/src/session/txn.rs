//! A transaction's pending work: notifications (deduplicated, in first-occurrence order) and
//! listen actions, with savepoints (R7–R9, R16).

use crate::error::{Error, ErrorKind, Result};
use std::collections::HashSet;

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

#[derive(Default)]
pub(crate) struct Txn {
    pub notifies: Vec<(String, String)>,
    dedup: Option<HashSet<(String, String)>>,
    pub actions: Vec<ListenAction>,
    savepoints: Vec<Savepoint>,
}

impl Txn {
    pub fn is_empty(&self) -> bool {
        self.notifies.is_empty() && self.actions.is_empty()
    }

    /// Adds a notification unless an equal one is pending in this transaction (R16). Pending
    /// entries of enclosing savepoints count: releasing a savepoint would drop the duplicate
    /// anyway, keeping the earlier position, and rolling back drops both.
    pub fn notify(&mut self, channel: &str, payload: &str) {
        let dup = match &self.dedup {
            Some(set) => set.contains(&(channel.to_owned(), payload.to_owned())),
            None => self.notifies.iter().any(|(c, p)| c == channel && p == payload),
        };
        if dup {
            return;
        }
        self.notifies.push((channel.to_owned(), payload.to_owned()));
        if let Some(set) = &mut self.dedup {
            set.insert((channel.to_owned(), payload.to_owned()));
        } else if self.notifies.len() >= DEDUP_HASH_FROM {
            self.dedup = Some(self.notifies.iter().cloned().collect());
        }
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
        self.notifies.truncate(sp.notifies);
        self.actions.truncate(sp.actions);
        self.savepoints.truncate(i + 1);
        self.dedup = (self.notifies.len() >= DEDUP_HASH_FROM).then(|| self.notifies.iter().cloned().collect());
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
