//! Two connections to PostgreSQL, one link. The first LISTENs on the bridged channels and the
//! mark channel, and sends messages of several transactions (streaming); the second listens to
//! nothing and sends a transaction that goes alone (the latency path). A backend that listens on
//! a channel it notifies delivers its own notifications to itself before it reads the next
//! command; the second backend, listening to nothing, is free for the next one at once, and
//! PostgreSQL's listeners (the other bridges) have the machine to themselves sooner. Sending
//! streams through it too was slower: each of its commits then also woke the listening
//! backend, where the listening sender delivers to itself in the same process. The order of
//! transactions holds across the two: a message is sent only once the one before it was
//! answered. A task drives each connection; the listening one's passes its notifications on in
//! the order PostgreSQL sent them, less those of either of the bridge's backends (its own), all
//! that had arrived when it looked going as one message (one wake-up of the bridge's loop, not
//! one a notification); when either connection ends, the receiver sees the end, after what
//! arrived before it, and the link is reopened whole.

use crate::conninfo::Target;
use crate::wire;
use futures_util::future::poll_fn;
use futures_util::FutureExt;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client};

/// A notification as PostgreSQL delivered it.
#[derive(Debug, Clone)]
pub struct PgNote {
    pub channel: String,
    pub payload: String,
    pub pid: i32,
}

/// At most this many notifications go to the bridge's loop in one message: a stream arriving
/// without a pause still reaches it in pieces, in order.
const ARRIVED_AT_MOST: usize = 1024;

/// A live link: the listening connection and the sending one.
pub struct Link {
    /// The connection that listens to nothing, for a transaction sent alone.
    pub client: Client,
    /// The listening connection's backend PID.
    pub backend_pid: i32,
    /// The other connection's backend PID. Notifications carrying either PID are the bridge's
    /// own.
    pub sender_pid: i32,
    /// PostgreSQL's notifications, in order, as many at a time as arrived together; `Err` once
    /// either connection ended.
    pub notes: mpsc::UnboundedReceiver<Result<Vec<PgNote>, String>>,
    /// One transaction's notifications in one statement, prepared once on the sending
    /// connection: channels and payloads as two arrays, notified in order.
    pub notify_many: tokio_postgres::Statement,
    /// The listening connection, which also sends batches of several transactions.
    pub listener: Client,
    drivers: [tokio::task::JoinHandle<()>; 2],
}

impl Drop for Link {
    fn drop(&mut self) {
        for d in &self.drivers {
            d.abort();
        }
    }
}

/// Connects twice (`connect.rs`: hosts and TLS as libpq), learns both backend PIDs, LISTENs on
/// every channel (names verbatim, quoted) on the first, and prepares the sending statement on
/// the second.
pub async fn connect(target: &Target, channels: &[String]) -> Result<Link, String> {
    let (listener, mut connection) = crate::connect::open(target).await?;
    let (tx, notes) = mpsc::unbounded_channel();
    // Both backends' PIDs once known: the bridge's own notifications (every one it sends comes
    // back, its listening backend hearing the channels it sends on) are dropped here, without
    // waking the bridge's loop for each.
    let own_pid = Arc::new([AtomicI32::new(0), AtomicI32::new(0)]);
    let own = own_pid.clone();
    let ended = tx.clone();
    let listening = tokio::spawn(async move {
        // What arrived together goes to the bridge's loop as one message: one wake-up of it,
        // and one pass through the channel, for a whole read from the socket.
        let mut arrived: Vec<PgNote> = Vec::new();
        loop {
            if arrived.len() >= ARRIVED_AT_MOST && tx.send(Ok(std::mem::take(&mut arrived))).is_err() {
                return;
            }
            let message = if arrived.is_empty() {
                poll_fn(|cx| connection.poll_message(cx)).await
            } else {
                match poll_fn(|cx| connection.poll_message(cx)).now_or_never() {
                    Some(m) => m,
                    None => {
                        if tx.send(Ok(std::mem::take(&mut arrived))).is_err() {
                            return;
                        }
                        continue;
                    }
                }
            };
            let ended = match message {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if !own.iter().any(|p| n.process_id() == p.load(Ordering::Relaxed)) {
                        arrived.push(PgNote {
                            channel: n.channel().to_owned(),
                            payload: n.payload().to_owned(),
                            pid: n.process_id(),
                        });
                    }
                    continue;
                }
                Some(Ok(AsyncMessage::Notice(notice))) => {
                    eprintln!("hark bridge: PostgreSQL says: {}: {}", notice.severity(), notice.message());
                    continue;
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => describe_error(&e),
                None => "the connection to PostgreSQL was closed".to_owned(),
            };
            // What arrived before the end is the bridge's, in order, then the end.
            if !arrived.is_empty() {
                let _ = tx.send(Ok(std::mem::take(&mut arrived)));
            }
            let _ = tx.send(Err(ended));
            return;
        }
    });
    let (client, mut connection) = match crate::connect::open(target).await {
        Ok(c) => c,
        Err(e) => {
            listening.abort();
            return Err(e);
        }
    };
    // The second connection carries no notifications; its end (or error) ends the link.
    let sending = tokio::spawn(async move {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notice(notice))) => {
                    eprintln!("hark bridge: PostgreSQL says: {}: {}", notice.severity(), notice.message());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let _ = ended.send(Err(describe_error(&e)));
                    return;
                }
                None => {
                    let _ = ended.send(Err("the sending connection to PostgreSQL was closed".to_owned()));
                    return;
                }
            }
        }
    });
    let drivers = [listening, sending];
    let set_up = async {
        let backend_pid: i32 = listener.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
        let sender_pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
        own_pid[0].store(backend_pid, Ordering::Relaxed);
        own_pid[1].store(sender_pid, Ordering::Relaxed);
        let mut listen = format!("LISTEN {};", quote_ident(wire::PG_TXN));
        for ch in channels {
            listen.push_str(&format!(" LISTEN {};", quote_ident(ch)));
        }
        listener.batch_execute(&listen).await?;
        let notify_many =
            client.prepare("SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS v(c, p)").await?;
        Ok::<_, tokio_postgres::Error>((backend_pid, sender_pid, notify_many))
    };
    match set_up.await {
        Ok((backend_pid, sender_pid, notify_many)) => {
            Ok(Link { client, backend_pid, sender_pid, notes, notify_many, listener, drivers })
        }
        Err(e) => {
            for d in &drivers {
                d.abort();
            }
            Err(describe_error(&e))
        }
    }
}

/// PostgreSQL's SQLSTATE and message when it sent one, else the client's description.
pub fn describe_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(src) => format!("{e}: {src}"),
            None => e.to_string(),
        },
    }
}

/// An identifier quoted as `PQescapeIdentifier` quotes it, so a channel is taken verbatim.
pub fn quote_ident(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_ident(&mut out, s);
    out
}

/// [`quote_ident`], appended to `out` (no allocation of its own: the bridge quotes every
/// notification it sends).
pub fn push_ident(out: &mut String, s: &str) {
    out.push('"');
    push_doubling(out, s, |c| c == '"');
    out.push('"');
}

/// A string literal for a simple-query text (standard_conforming_strings is on since 9.1; an
/// `E''` literal is used when there is a backslash, so the text means the same either way).
pub fn quote_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 3);
    push_literal(&mut out, s);
    out
}

/// [`quote_literal`], appended to `out`.
pub fn push_literal(out: &mut String, s: &str) {
    if s.contains('\\') {
        out.push_str("E'");
        push_doubling(out, s, |c| c == '\\' || c == '\'');
    } else {
        out.push('\'');
        push_doubling(out, s, |c| c == '\'');
    }
    out.push('\'');
}

/// Appends `s` with every character that `special` picks written twice.
fn push_doubling(out: &mut String, s: &str, special: impl Fn(char) -> bool) {
    for piece in s.split_inclusive(&special) {
        out.push_str(piece);
        if let Some(c) = piece.chars().next_back().filter(|c| special(*c)) {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_names_and_payloads_verbatim() {
        assert_eq!(quote_ident("Orders\"x"), "\"Orders\"\"x\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b'c"), "E'a\\\\b''c'");
        assert_eq!(quote_ident(""), "\"\"");
        assert_eq!(quote_ident("\"\"a\""), "\"\"\"\"\"a\"\"\"");
        assert_eq!(quote_literal("''"), "''''''");
        assert_eq!(quote_literal("\\'x\\"), "E'\\\\''x\\\\'");
        assert_eq!(quote_literal("é'ü"), "'é''ü'");
    }
}
