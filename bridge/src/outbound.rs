//! Local to PostgreSQL: the bridge's durable subscription (`bridge.NAME`) hands out the local
//! transactions on the bridged channels in commit order; each is sent as one PostgreSQL
//! transaction, closed by an end mark (`wire::PG_TXN`), and acknowledged locally only after PostgreSQL's COMMIT
//! succeeded.
//!
//! * Transactions the bridge itself committed from PostgreSQL begin with its own
//!   `hark.bridge.origin` notification: they are skipped (acknowledged, never sent). That mark is
//!   part of the transaction in the queue, so it survives a crash of the bridge and a replay.
//!   Those another bridge on this queue committed are skipped too: two bridges on one database
//!   would otherwise send each other's back and forth for ever.
//! * A transaction is sent as NOTIFY statements (`NOTIFY "channel", 'payload'`, names and
//!   payloads verbatim), which PostgreSQL runs without planning a query: alone, they are one
//!   implicit transaction; several transactions go in one simple-query message
//!   (`BEGIN; NOTIFY …; COMMIT; BEGIN; …`), one round trip; PostgreSQL commits each on its own
//!   and stops at the first failure, and the bridge counts the statements that completed, so it
//!   acknowledges exactly the transactions PostgreSQL committed. A long transaction alone goes
//!   through a statement prepared once per connection (`unnest` of two arrays).
//! * **When a duplicate can occur**: a transaction is sent again only if PostgreSQL committed it
//!   but the bridge did not learn it, or did not store the acknowledgement: the connection was lost
//!   after COMMIT was sent and before its reply arrived, or the bridge was killed between the
//!   reply and the acknowledgement. The end marks carry the local commit number, and a bridge that
//!   receives from PostgreSQL skips a transaction it already committed from that origin, so other
//!   hosts' bridges drop such a repeat, also after they restarted (`origins.rs`); a plain
//!   PostgreSQL client receives it twice.
//! * The bridge's own transactions carry the origin and commit number of what they committed:
//!   before acknowledging any, the bridge saves them to its origins file.
//! * A payload PostgreSQL cannot carry (8,000 bytes or more: a queue created with a larger
//!   `max_payload`) is not sent: the rest of its transaction is, with a notification on
//!   `hark.bridge.dropped` saying which channel and how long, and the bridge counts it and says so
//!   on standard error.
//! * A gap (the subscription passed its lag limit) is sent as a notification on
//!   `hark.bridge.gap`, in order.

use crate::pg::Link;
use crate::pg::{push_ident, push_literal};
use crate::wire;
use futures_util::{pin_mut, TryStreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The bridge's one local session: its subscription, and the inbound side's commits.
pub type Shared = Arc<Mutex<hark::Connection>>;
use tokio_postgres::{Client, SimpleQueryMessage};

/// At most this many notifications (and this much SQL text) go in one message to PostgreSQL.
const BATCH_NOTIFICATIONS: usize = 5000;
const BATCH_BYTES: usize = 1 << 20;

/// A transaction alone of at most this many notifications (its end mark included) goes as that
/// many NOTIFY statements in one simple-query message, which PostgreSQL runs as one implicit
/// transaction with less work than binding and executing the prepared `unnest` statement (about
/// 20 µs less a round trip here, the latency path); a longer one goes through the statement.
const NOTIFY_STATEMENTS: usize = 16;

/// `NOTIFY "channel", 'payload'; …`: one implicit transaction (a simple-query message without
/// BEGIN commits as a whole or not at all), notified in order; names and payloads verbatim.
fn notify_statements(channels: &[&str], payloads: &[&str]) -> String {
    let mut sql = String::new();
    for (c, p) in channels.iter().zip(payloads) {
        push_notify(&mut sql, c, p);
    }
    sql
}

fn push_notify(sql: &mut String, channel: &str, payload: &str) {
    sql.push_str("NOTIFY ");
    push_ident(sql, channel);
    sql.push(',');
    push_literal(sql, payload);
    sql.push(';');
}

/// The statements a unit is sent as in a batch: BEGIN, one NOTIFY a row and one for its end
/// mark, COMMIT; none for a unit only to acknowledge.
fn statements(u: &Unit) -> usize {
    if u.rows.is_empty() {
        0
    } else {
        u.rows.len() + usize::from(u.txn.is_some()) + 2
    }
}

/// One PostgreSQL transaction to send (or, with no rows, a local transaction only to
/// acknowledge).
struct Unit {
    /// `(channel, payload)` rows, without the end mark.
    rows: Vec<(String, String)>,
    /// The local commit number its end mark carries; `None` for a unit sent without one (a gap).
    txn: Option<u64>,
    /// Local notifications in it (notices excluded).
    notifications: u64,
    /// The position to acknowledge once it is committed (`None`: a gap, which has none).
    ack: Option<u64>,
    /// For the bridge's own transaction of a marked PostgreSQL one: its origin and commit number,
    /// saved to the origins file before the transaction is acknowledged (`origins.rs`).
    received: Option<(String, u64)>,
}

pub struct Outbound {
    /// The subscription's session, shared with the inbound side, which commits through it (a
    /// session's own commit does not wake it: see `lib.rs`).
    conn: Shared,
    origins: crate::origins::Origins,
    name: String,
    origin: String,
    units: Vec<Unit>,
    /// Whether the last unit's transaction may have more to read.
    open_tail: bool,
    /// Whether the queue was read without draining the wake-up socket (`read_woken`): a full
    /// `read_local` follows within the send (draining it, then reading what came meanwhile).
    socket_unread: bool,
    /// The local transaction being gathered: its commit number, and whether it is the bridge's
    /// own (skipped).
    current: Option<(u64, bool)>,
    /// The origins file's content: the last commit number received from each origin in the own
    /// transactions acknowledged so far.
    saved: HashMap<String, u64>,
    /// Whether `saved` changed since the file was written (it must be written before an ack).
    unsaved: bool,
    /// Origins and commit numbers read in own transactions, for the inbound side to learn.
    heard: Vec<(String, u64)>,
    pub transactions: u64,
    pub notifications: u64,
    pub too_long: u64,
    pub gaps: u64,
}

/// Why a send did not go through.
pub enum SendError {
    /// The connection is gone: reconnect, then send again.
    Lost(String),
    /// PostgreSQL refused (its queue is full, say): wait, then send again.
    Refused(String),
    /// The local queue failed: the bridge cannot go on.
    Local(String),
}

impl Outbound {
    /// `saved`: the origins file as loaded at start.
    pub fn new(
        conn: Shared,
        origins: crate::origins::Origins,
        name: &str,
        origin: &str,
        saved: HashMap<String, u64>,
    ) -> Outbound {
        Outbound {
            conn,
            origins,
            name: name.to_owned(),
            origin: origin.to_owned(),
            units: Vec::new(),
            open_tail: false,
            socket_unread: false,
            current: None,
            saved,
            unsaved: false,
            heard: Vec::new(),
            transactions: 0,
            notifications: 0,
            too_long: 0,
            gaps: 0,
        }
    }

    pub fn fd(&self) -> std::os::fd::RawFd {
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).as_raw_fd()
    }

    /// Whether transactions wait to be sent.
    pub fn has_work(&self) -> bool {
        self.units.len() > usize::from(self.open_tail)
    }

    /// Takes what the subscription has, into units; `false` when it stopped early and there is
    /// more to read. When nothing is left, the last transaction is whole (a commit is published
    /// at once).
    pub fn read_local(&mut self) -> hark::Result<bool> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner()).consume_input()?;
        self.socket_unread = false;
        self.read_events()
    }

    /// The local queue refused a commit for want of room, which may be all the subscription's:
    /// reads what it holds and sends a batch of it, whose acknowledgement frees room.
    pub async fn make_room(&mut self, link: &Link) -> Result<(), SendError> {
        if !self.has_work() {
            self.read_local().map_err(|e| SendError::Local(format!("local queue: {e}")))?;
        }
        if self.has_work() {
            self.send(link).await?;
        }
        Ok(())
    }

    /// [`Outbound::read_local`] woken by the subscription's descriptor, with something to send:
    /// reads the queue first and leaves the wake-up socket to drain while PostgreSQL runs the
    /// send (two system calls off the latency path); with nothing to send, drains it now.
    pub fn read_woken(&mut self) -> hark::Result<bool> {
        self.socket_unread = true;
        let drained = self.read_events()?;
        if self.has_work() {
            Ok(drained)
        } else {
            self.read_local()
        }
    }

    /// Takes the subscription's events into units (see `read_local`).
    fn read_events(&mut self) -> hark::Result<bool> {
        let mut taken = 0;
        // Read in place (`notifies_ref`): what the bridge skips (its own transactions, read
        // back) is never copied; a gap comes as an error that carries it.
        let conn = self.conn.clone();
        let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let event = match conn.notifies_ref() {
                Ok(Some(n)) => Ok(n),
                Ok(None) => break,
                Err(e) => match e.gap() {
                    Some(g) => Err(*g),
                    None => return Err(e),
                },
            };
            match event {
                Ok(n) => self.take(n),
                Err(g) => {
                    self.current = None;
                    self.gaps += 1;
                    let payload = format!(
                        "{{\"origin\":{},\"skipped\":{},\"first_txn\":{},\"last_txn\":{}}}",
                        wire::json_string(&self.origin),
                        g.skipped,
                        g.first_txn,
                        g.last_txn
                    );
                    eprintln!("hark bridge: the local queue skipped {} notifications before they were sent", g.skipped);
                    self.units.push(Unit {
                        rows: vec![(wire::PG_GAP.to_owned(), payload)],
                        txn: None,
                        notifications: 0,
                        ack: None,
                        received: None,
                    });
                }
            }
            taken += 1;
            if taken >= BATCH_NOTIFICATIONS * 4 {
                // Let the loop send; the rest (perhaps of this very transaction) comes next turn.
                self.open_tail = true;
                return Ok(false);
            }
        }
        self.open_tail = false;
        Ok(true)
    }

    fn take(&mut self, n: hark::NotificationRef<'_>) {
        let new_txn = self.current.is_none_or(|(t, _)| t != n.txn);
        if new_txn {
            // Any bridge's commit from PostgreSQL is skipped, not only this one's: another bridge
            // on this queue and database would send this one's back, and this one its, for ever.
            let (own, received) = if n.channel == wire::LOCAL_ORIGIN {
                match wire::parse_origin_payload(n.payload) {
                    (name, mark) if name == self.name => (true, mark.map(|(o, t)| (o.to_owned(), t))),
                    _ => (true, None),
                }
            } else {
                (false, None)
            };
            if let Some(r) = &received {
                self.heard.push(r.clone());
            }
            self.current = Some((n.txn, own));
            self.units.push(Unit {
                rows: Vec::new(),
                txn: (!own).then_some(n.txn),
                notifications: 0,
                ack: Some(n.position),
                received,
            });
        }
        let own = self.current.is_some_and(|(_, own)| own);
        let unit = self.units.last_mut().expect("a unit for the current transaction");
        unit.ack = Some(n.position);
        if own || wire::is_reserved(n.channel) {
            return;
        }
        if n.payload.len() > wire::PG_MAX_PAYLOAD {
            self.too_long += 1;
            eprintln!(
                "hark bridge: not sent to PostgreSQL: a payload of {} bytes on channel \"{}\" (PostgreSQL's limit is {} bytes)",
                n.payload.len(),
                n.channel,
                wire::PG_MAX_PAYLOAD
            );
            let notice = format!(
                "{{\"origin\":{},\"channel\":{},\"bytes\":{},\"txn\":{}}}",
                wire::json_string(&self.origin),
                wire::json_string(n.channel),
                n.payload.len(),
                n.txn
            );
            unit.rows.push((wire::PG_DROPPED.to_owned(), notice));
            return;
        }
        unit.rows.push((n.channel.to_owned(), n.payload.to_owned()));
        unit.notifications += 1;
    }

    /// Sends the first waiting units, in order, as one batch (one round trip), and acknowledges
    /// the transactions PostgreSQL committed locally. While PostgreSQL runs a batch of several,
    /// what committed locally meanwhile is read, so that the next batch is ready when the reply
    /// comes (the caller sends it after taking what PostgreSQL delivered).
    pub async fn send(&mut self, link: &Link) -> Result<(), SendError> {
        let client = &link.client;
        {
            let sendable = self.units.len() - usize::from(self.open_tail);
            let (mut count, mut bytes) = (0, 0);
            let mut taken = 0;
            let mut batch: Vec<usize> = Vec::new();
            for (i, u) in self.units[..sendable].iter().enumerate() {
                let size: usize = u.rows.iter().map(|(c, p)| c.len() + p.len() + 16).sum();
                if count > 0 && (count + u.rows.len() > BATCH_NOTIFICATIONS || bytes + size > BATCH_BYTES) {
                    break;
                }
                if !u.rows.is_empty() {
                    batch.push(i);
                    count += u.rows.len();
                    bytes += size;
                }
                taken += 1;
            }
            // One transaction alone is its own implicit transaction, without BEGIN and COMMIT
            // (less for PostgreSQL to do: the latency path); several are each between BEGIN and
            // COMMIT in one simple-query message, which PostgreSQL stops at the first failure,
            // so that what commits is always a prefix, in order. NOTIFY statements, not
            // `SELECT pg_notify(…)`: PostgreSQL runs them without planning or executing a query,
            // two to three times the notifications a second for transactions of 1 to 10.
            let alone = batch.len() == 1;
            if alone {
                let u = &self.units[batch[0]];
                let mut channels: Vec<&str> = u.rows.iter().map(|(c, _)| c.as_str()).collect();
                let mut payloads: Vec<&str> = u.rows.iter().map(|(_, p)| p.as_str()).collect();
                let mark = u.txn.map(|t| wire::end_mark(&self.origin, t));
                if let Some(m) = &mark {
                    channels.push(wire::PG_TXN);
                    payloads.push(m);
                }
                let r = if channels.len() <= NOTIFY_STATEMENTS {
                    let sql = notify_statements(&channels, &payloads);
                    let (r, read) =
                        futures_util::future::join(client.batch_execute(&sql), self.read_ahead(taken)).await;
                    read?;
                    r
                } else {
                    client.execute(&link.notify_many, &[&channels, &payloads]).await.map(drop)
                };
                let committed = match r {
                    Ok(_) => taken,
                    Err(e) if batch[0] > 0 => {
                        // The acknowledgement-only units before it are done; the rest waits.
                        self.settle(batch[0])?;
                        return Err(lost_or_refused(e));
                    }
                    Err(e) => return Err(lost_or_refused(e)),
                };
                self.settle(committed)?;
                return self.drain_socket();
            }
            let mut sql = String::new();
            #[cfg(feature = "test-hooks")]
            let fail_second = crate::hooks::fail_batch();
            for (_k, &i) in batch.iter().enumerate() {
                let u = &self.units[i];
                sql.push_str("BEGIN;");
                #[cfg(feature = "test-hooks")]
                if fail_second && _k == 1 {
                    sql.push_str("SELECT 1/0;");
                }
                for (c, p) in &u.rows {
                    push_notify(&mut sql, c, p);
                }
                if let Some(txn) = u.txn {
                    push_notify(&mut sql, wire::PG_TXN, &wire::end_mark(&self.origin, txn));
                }
                sql.push_str("COMMIT;");
            }
            let committed = if sql.is_empty() { taken } else { self.run(&link.listener, &sql, taken).await? };
            self.settle(committed)?;
            if committed < taken {
                return Err(SendError::Refused("PostgreSQL did not commit every transaction".to_owned()));
            }
        }
        self.drain_socket()
    }

    /// While PostgreSQL runs a send of the first `taken` units: lets the connection's task write
    /// it, then reads the local queue, up to one batch ahead (the rest waits in the queue, not in
    /// memory), and always when the wake-up socket was left to drain.
    async fn read_ahead(&mut self, taken: usize) -> Result<(), SendError> {
        tokio::task::yield_now().await;
        let ahead: usize = self.units[taken..].iter().map(|u| u.rows.len()).sum();
        if ahead < BATCH_NOTIFICATIONS || self.socket_unread {
            self.read_local().map_err(|e| SendError::Local(format!("local queue: {e}")))?;
        }
        Ok(())
    }

    /// Drains the wake-up socket if a read left it (and reads what came since).
    fn drain_socket(&mut self) -> Result<(), SendError> {
        if self.socket_unread {
            self.read_local().map_err(|e| SendError::Local(format!("local queue: {e}")))?;
        }
        Ok(())
    }

    /// Whether the last read took everything the subscription had.
    pub fn drained(&self) -> bool {
        !self.open_tail
    }

    /// The origins and commit numbers read in the bridge's own transactions since the last call.
    pub fn take_heard(&mut self) -> Vec<(String, u64)> {
        std::mem::take(&mut self.heard)
    }

    /// The first `committed` units are in PostgreSQL: counts them and acknowledges them locally,
    /// after saving the origins of the own transactions among them (once acknowledged, the
    /// subscription no longer hands those out at start).
    fn settle(&mut self, committed: usize) -> Result<(), SendError> {
        let ack = self.units[..committed].iter().rev().find_map(|u| u.ack);
        #[cfg(feature = "test-hooks")]
        if self.units[..committed].iter().any(|u| !u.rows.is_empty()) {
            crate::hooks::park(crate::hooks::Point::BeforeAck);
        }
        for u in self.units.drain(..committed) {
            if u.txn.is_some() && !u.rows.is_empty() {
                self.transactions += 1;
                self.notifications += u.notifications;
            }
            if let Some((origin, txn)) = u.received {
                let last = self.saved.entry(origin).or_insert(txn);
                *last = (*last).max(txn);
                self.unsaved = true;
            }
        }
        if self.unsaved && ack.is_some() {
            #[cfg(feature = "test-hooks")]
            crate::hooks::park(crate::hooks::Point::BeforeOrigins);
            self.origins.save(&self.saved).map_err(|e| {
                SendError::Refused(format!(
                    "could not save what the bridge received (bridge.{}.origins): {e}",
                    self.name
                ))
            })?;
            self.unsaved = false;
        }
        match ack {
            Some(position) => self
                .conn
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .ack(position)
                .map_err(|e| SendError::Refused(format!("local queue: could not acknowledge: {e}"))),
            None => Ok(()),
        }
    }

    /// Runs `sql` (each of the `taken` units as [`statements`] says); how many of them PostgreSQL
    /// committed (a unit's last statement, COMMIT, completes after its commit), or the error
    /// when it committed none.
    async fn run(&mut self, client: &Client, sql: &str, taken: usize) -> Result<usize, SendError> {
        let stream = client.simple_query_raw(sql).await.map_err(lost_or_refused)?;
        self.read_ahead(taken).await?;
        pin_mut!(stream);
        let mut completed = 0usize;
        let mut error = None;
        loop {
            match stream.try_next().await {
                Ok(Some(SimpleQueryMessage::CommandComplete(_))) => completed += 1,
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        // Map completed statements back to units.
        let mut left = completed;
        let mut committed = 0;
        for u in self.units.iter().take(taken) {
            let per_unit = statements(u);
            if left >= per_unit {
                left -= per_unit;
                committed += 1;
            } else {
                break;
            }
        }
        if error.is_some() {
            // PostgreSQL stopped at the failure, inside that transaction's BEGIN: the session
            // is in a failed transaction block, where it would refuse every later statement
            // (25P02) until a ROLLBACK. (Without a block open, or on a lost connection, this
            // does nothing.)
            let _ = client.batch_execute("ROLLBACK").await;
        }
        match error {
            None => Ok(committed),
            Some(e) if committed > 0 => {
                eprintln!("hark bridge: {}", crate::pg::describe_error(&e));
                Ok(committed)
            }
            Some(e) => Err(lost_or_refused(e)),
        }
    }
}

fn lost_or_refused(e: tokio_postgres::Error) -> SendError {
    let text = crate::pg::describe_error(&e);
    if e.as_db_error().is_some() {
        SendError::Refused(text)
    } else {
        SendError::Lost(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_sent_alone_acknowledges_nothing_and_a_transaction_after_it_is_acknowledged() {
        let dir = std::env::temp_dir().join(format!("hark-bridge-outbound-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut sub = hark::Connection::open(&dir).unwrap();
        sub.subscribe("bridge.t", &["ev"], &hark::SubscribeOptions::new()).unwrap();
        let mut app = hark::Connection::open(&dir).unwrap();
        app.notify("ev", "x").unwrap();
        let origins = crate::origins::Origins::load(&dir, "t").unwrap().0;
        let mut out = Outbound::new(Arc::new(Mutex::new(sub)), origins, "t", "t@here", HashMap::new());
        // What a gap used to acknowledge when nothing was left before it: refused, which made the
        // bridge send the gap again every second.
        assert!(out.conn.lock().unwrap().ack(0).is_err());
        out.units.push(Unit {
            rows: vec![(wire::PG_GAP.into(), "{}".into())],
            txn: None,
            notifications: 0,
            ack: None,
            received: None,
        });
        assert!(out.settle(1).is_ok(), "a gap has no position to acknowledge");
        assert!(out.read_local().unwrap());
        assert_eq!(out.units.len(), 1);
        assert!(out.settle(1).is_ok());
        assert_eq!((out.transactions, out.notifications), (1, 1));
        drop(out);
        // Acknowledged: a new attachment receives nothing again.
        let mut again = hark::Connection::open(&dir).unwrap();
        again.subscribe("bridge.t", &["ev"], &hark::SubscribeOptions::new()).unwrap();
        assert!(again.notifies().unwrap().is_none());
        drop((again, app));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
