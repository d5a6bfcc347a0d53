//! PostgreSQL to the local queue: notifications are grouped back into their PostgreSQL
//! transactions and each group is committed as one local transaction, in PostgreSQL's order, by
//! the bridge's session (the one attached to its subscription), which marks each of its
//! transactions with [`wire::LOCAL_ORIGIN`].
//!
//! Where a transaction ends: PostgreSQL delivers a transaction's notifications together and in
//! order, but its protocol does not mark the end. A bridge's transactions end with an end mark
//! (`wire::PG_TXN`), and a bridge's connection sends nothing else: once a backend PID has sent an
//! end mark, its groups end only at one, so they are committed exactly (or after [`MARK_WAIT`]
//! without one: then the PID is no longer a bridge's, see there). For any other sender
//! (psql, an application) the group is the run of notifications from one backend PID that arrive together: it ends at a
//! notification from another backend, at a repeated (channel, payload) (PostgreSQL folded
//! duplicates within a transaction, so a repeat is a new transaction, and hark would fold it),
//! or when nothing more arrives within [`QUIET`]. Two transactions one backend commits back to back
//! may therefore be committed locally as one: still in order, and nothing folded.

use crate::pg::PgNote;
use crate::wire;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// How long a group of a client other than a bridge waits for more of its transaction before it is committed.
pub const QUIET: Duration = Duration::from_millis(2);

/// How long a group of a backend PID taken for a bridge's waits for its end mark. A bridge's
/// transaction arrives whole, mark last, so a group still open after this is not a bridge's:
/// the PID was a bridge's and PostgreSQL gave it to a new client, or a client sent an end mark
/// itself. It is committed, and the PID is no longer taken for a bridge's.
pub const MARK_WAIT: Duration = Duration::from_secs(1);

/// How a group that waited past its deadline is ended ([`Inbound::group_deadline`]).
pub type GroupEnd = fn(&mut Inbound) -> hark::Result<()>;

pub struct Inbound {
    /// The bridge's session, shared with its subscription (`outbound::Shared`).
    conn: crate::outbound::Shared,
    name: String,
    /// The bridge's origin in its end marks.
    origin: String,
    /// The bridge's two backend PIDs (listening, sending): what it hears from either is its own.
    pub own_pg_pids: [i32; 2],
    group: Vec<PgNote>,
    group_pid: i32,
    /// The local queue's longest payload.
    max_payload: usize,
    /// When the group's last notification arrived.
    last_arrival: tokio::time::Instant,
    /// Backend PIDs that sent an end mark on this connection: bridges.
    bridges: HashSet<i32>,
    seen: HashSet<(String, String)>,
    /// The last transaction committed from each framing origin: a transaction a sender repeats
    /// (it crashed between PostgreSQL's commit and its local acknowledgement) is skipped. Kept
    /// across restarts of the bridge: `origins.rs`.
    last_txn: HashMap<String, u64>,
    pub transactions: u64,
    pub notifications: u64,
    pub repeats_skipped: u64,
}

impl Inbound {
    /// `origin`: the bridge's own, as its end marks name it.
    pub fn new(conn: crate::outbound::Shared, name: &str, origin: &str) -> Inbound {
        let max_payload = conn.lock().unwrap_or_else(|e| e.into_inner()).queue().max_payload();
        Inbound {
            max_payload,
            conn,
            name: name.to_owned(),
            origin: origin.to_owned(),
            own_pg_pids: [0; 2],
            group: Vec::new(),
            group_pid: 0,
            last_arrival: tokio::time::Instant::now(),
            bridges: HashSet::new(),
            seen: HashSet::new(),
            last_txn: HashMap::new(),
            transactions: 0,
            notifications: 0,
            repeats_skipped: 0,
        }
    }

    /// Takes the next notification from PostgreSQL out of `slot`; commits the group it ends, if
    /// any. On an error the group, and the notification, are kept (the notification in `slot`):
    /// call again later.
    pub fn push(&mut self, slot: &mut Option<PgNote>) -> hark::Result<()> {
        let Some(n) = slot.as_ref() else { return Ok(()) };
        if self.own_pg_pids.contains(&n.pid) {
            *slot = None;
            return Ok(());
        }
        if n.channel == wire::PG_TXN {
            // A mark whose origin the local queue could not hold in the transaction's origin
            // notification is no bridge's (their origins are short): a client's.
            let fits =
                |origin: &str, txn| wire::origin_payload(&self.name, Some((origin, txn))).len() <= self.max_payload;
            let Some((origin, txn)) = wire::parse_end_mark(&n.payload).filter(|(o, t)| fits(o, *t)) else {
                *slot = None;
                return Ok(()); // someone else's NOTIFY on the mark channel
            };
            self.bridges.insert(n.pid);
            if self.group.is_empty() || self.group_pid != n.pid {
                // The transaction carried nothing on our channels; what is pending is another's.
                self.commit_pending()?;
                *slot = None;
                return Ok(());
            }
            // Its own origin: the bridge's own transaction under a PID no longer its own (a
            // backend of an earlier connection or run, killed or cut off, committed it late).
            if origin == self.origin || self.last_txn.get(origin).is_some_and(|last| *last >= txn) {
                self.repeats_skipped += 1;
                self.group.clear();
                self.seen.clear();
                *slot = None;
                return Ok(());
            }
            // Remembered only once committed: a commit the local queue refused is tried again.
            self.commit_group(Some((origin, txn)))?;
            self.last_txn.insert(origin.to_owned(), txn);
            *slot = None;
            return Ok(());
        }
        if !self.group.is_empty() {
            let other_backend = self.group_pid != n.pid;
            let repeat = !self.bridges.contains(&n.pid) && self.seen.contains(&(n.channel.clone(), n.payload.clone()));
            if other_backend || repeat {
                self.commit_pending()?;
            }
        }
        let Some(n) = slot.take() else { return Ok(()) };
        self.group_pid = n.pid;
        if !self.bridges.contains(&n.pid) {
            self.seen.insert((n.channel.clone(), n.payload.clone()));
        }
        let n = self.fit(n);
        self.group.extend(n);
        self.last_arrival = tokio::time::Instant::now();
        Ok(())
    }

    /// A notification whose payload the local queue cannot hold (it was created with a smaller
    /// `max_payload` than PostgreSQL's) is replaced by one on `hark.bridge.dropped` saying so,
    /// and said on standard error: committed as it is, it would fail its whole transaction.
    fn fit(&self, n: PgNote) -> Option<PgNote> {
        if n.payload.len() <= self.max_payload {
            return Some(n);
        }
        eprintln!(
            "hark bridge: not committed locally: a payload of {} bytes on channel \"{}\" (the queue's max_payload is {} bytes)",
            n.payload.len(),
            n.channel,
            self.max_payload
        );
        let payload = format!(
            "{{\"bridge\":{},\"channel\":{},\"bytes\":{},\"pid\":{}}}",
            wire::json_string(&self.name),
            wire::json_string(&n.channel),
            n.payload.len(),
            n.pid
        );
        (payload.len() <= self.max_payload).then(|| PgNote {
            channel: wire::LOCAL_DROPPED.to_owned(),
            payload,
            pid: n.pid,
        })
    }

    /// Takes what an earlier run of the bridge committed from `origin` (read back from the queue
    /// or the origins file, `origins.rs`).
    pub fn learn(&mut self, origin: &str, txn: u64) {
        let last = self.last_txn.entry(origin.to_owned()).or_insert(txn);
        *last = (*last).max(txn);
    }

    /// Whether a group of a client other than a bridge waits for the quiet moment that ends it.
    pub fn waits_for_quiet(&self) -> bool {
        !self.group.is_empty() && !self.bridges.contains(&self.group_pid)
    }

    /// When the group gathered so far ends without an end mark, counted from its last
    /// notification, and how: a client other than a bridge's after `QUIET` (committed), a PID
    /// taken for a bridge's after `MARK_WAIT` ([`Inbound::end_unmarked`]). `None`: no group.
    pub fn group_deadline(&self) -> Option<(tokio::time::Instant, GroupEnd)> {
        if self.group.is_empty() {
            return None;
        }
        Some(if self.bridges.contains(&self.group_pid) {
            (self.last_arrival + MARK_WAIT, Inbound::end_unmarked)
        } else {
            (self.last_arrival + QUIET, Inbound::commit_pending)
        })
    }

    /// The group's end mark did not come (`MARK_WAIT`): commits it as a plain client's, and no
    /// longer takes its PID for a bridge's.
    pub fn end_unmarked(&mut self) -> hark::Result<()> {
        self.commit_pending()?;
        self.bridges.remove(&self.group_pid);
        Ok(())
    }

    /// Commits the group gathered so far (also a bridge's transaction cut short by a lost
    /// connection).
    pub fn commit_pending(&mut self) -> hark::Result<()> {
        self.commit_group(None)
    }

    /// Commits the group, its origin notification carrying `mark` (the end mark that closed it).
    fn commit_group(&mut self, mark: Option<(&str, u64)>) -> hark::Result<()> {
        if self.group.is_empty() {
            self.seen.clear();
            return Ok(());
        }
        let origin = wire::origin_payload(&self.name, mark);
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let result = (|| {
            conn.begin()?;
            conn.notify(wire::LOCAL_ORIGIN, &origin)?;
            for n in &self.group {
                conn.notify(&n.channel, &n.payload)?;
            }
            conn.commit()
        })();
        if let Err(e) = result {
            if conn.transaction_status() != hark::TransactionStatus::Idle {
                let _ = conn.rollback();
            }
            // Refused by a queue that holds nothing: the transaction is larger than the whole
            // queue and would wait for ever. It is left out, and local listeners told (a gap).
            let empty = || conn.queue().stats().is_ok_and(|s| s.head == s.tail);
            if e.kind() != hark::ErrorKind::QueueFull || !empty() {
                return Err(e);
            }
            let bytes: usize = self.group.iter().map(|n| n.channel.len() + n.payload.len()).sum();
            eprintln!(
                "hark bridge: not committed locally: a transaction of {} notifications ({bytes} bytes) from PostgreSQL, larger than the queue",
                self.group.len()
            );
            let payload = format!(
                "{{\"bridge\":{},\"reason\":\"too_large\",\"notifications\":{},\"bytes\":{bytes},\"pid\":{}}}",
                wire::json_string(&self.name),
                self.group.len(),
                self.group_pid
            );
            conn.notify(wire::LOCAL_GAP, &payload)?;
            drop(conn);
            self.group.clear();
            self.seen.clear();
            return Ok(());
        }
        drop(conn);
        self.transactions += 1;
        self.notifications += self.group.len() as u64;
        self.group.clear();
        self.seen.clear();
        Ok(())
    }

    /// The connection to PostgreSQL ended: what came of a transaction is committed, and the next
    /// one starts afresh.
    pub fn disconnected(&mut self) -> hark::Result<()> {
        // Backend PIDs are the old connection's view; the next one learns them again.
        self.bridges.clear();
        self.commit_pending()
    }

    /// Tells local listeners that PostgreSQL may have delivered notifications nobody received.
    pub fn signal_gap(&mut self, reason: &str, disconnected_at: u64, reconnected_at: u64) -> hark::Result<()> {
        let payload = format!(
            "{{\"bridge\":{},\"reason\":{},\"disconnected_at\":{},\"reconnected_at\":{}}}",
            wire::json_string(&self.name),
            wire::json_string(reason),
            disconnected_at,
            reconnected_at
        );
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).notify(wire::LOCAL_GAP, &payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_notification_whose_commit_the_full_queue_refused_is_kept_and_committed_once_at_the_next_try() {
        let dir = std::env::temp_dir().join(format!("hark-bridge-inbound-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let options = hark::Options { max_queue_size: Some(1 << 20), ..hark::Options::new() }.segment_size(64 << 10);
        let mut session = hark::Connection::with_options(&dir, &options).unwrap();
        let explicit = hark::SubscribeOptions::new().ack(hark::AckMode::Explicit);
        session.subscribe("bridge.t", &["ev", wire::LOCAL_ORIGIN], &explicit).unwrap();
        let shared = Arc::new(Mutex::new(session));
        // The bridge's own subscription, never acknowledged, holds the queue full.
        let mut app = hark::Connection::with_options(&dir, &options).unwrap();
        let filler = "f".repeat(1000);
        loop {
            match app.notify("ev", &filler) {
                Ok(()) => {}
                Err(e) if e.kind() == hark::ErrorKind::QueueFull => break,
                Err(e) => panic!("{e}"),
            }
        }
        let mut listener = hark::Connection::with_options(&dir, &options).unwrap();
        listener.listen("ev").unwrap();
        let mut inbound = Inbound::new(shared.clone(), "t", "t@here#1");
        let note = |channel: &str, payload: &str| PgNote { channel: channel.into(), payload: payload.into(), pid: 7 };
        let mut first = Some(note("ev", "from postgresql"));
        inbound.push(&mut first).unwrap();
        assert!(first.is_none(), "held in its group");
        let mut mark = Some(note(wire::PG_TXN, &wire::end_mark("a@h#1", 1)));
        let refused = inbound.push(&mut mark).unwrap_err();
        assert_eq!(refused.kind(), hark::ErrorKind::QueueFull);
        assert!(mark.is_some(), "the end mark is kept for the next try");
        {
            let mut s = shared.lock().unwrap();
            let mut last = None;
            while let Some(e) = s.next_event().unwrap() {
                if let hark::Event::Notification(n) = e {
                    last = Some(n.position);
                }
            }
            s.ack(last.unwrap()).unwrap();
        }
        inbound.push(&mut mark).unwrap();
        assert!(mark.is_none());
        assert_eq!(inbound.transactions, 1);
        let mut got = Vec::new();
        while let Some(n) = listener.notifies().unwrap() {
            if n.payload != filler {
                got.push(n.payload);
            }
        }
        assert_eq!(got, ["from postgresql"], "committed once, whole");
        drop((inbound, shared, app, listener));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
