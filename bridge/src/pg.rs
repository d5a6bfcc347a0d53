//! One connection to PostgreSQL: it LISTENs on the bridged channels and the mark channel, and
//! sends the local transactions. A task drives the connection and passes its notifications on in
//! the order PostgreSQL sent them, less the connection's own; when the connection ends, the
//! receiver sees the end.

use crate::conninfo::Target;
use crate::wire;
use futures_util::future::poll_fn;
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

/// A live connection.
pub struct Link {
    pub client: Client,
    /// The connection's backend PID: notifications carrying it are the bridge's own.
    pub backend_pid: i32,
    /// PostgreSQL's notifications, in order; `None` once the connection ended.
    pub notes: mpsc::UnboundedReceiver<Result<PgNote, String>>,
    /// One transaction's notifications in one statement, prepared once per connection: channels
    /// and payloads as two arrays, notified in order.
    pub notify_many: tokio_postgres::Statement,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Connects (`connect.rs`: hosts and TLS as libpq), learns the backend PID and LISTENs on every
/// channel (names verbatim, quoted).
pub async fn connect(target: &Target, channels: &[String]) -> Result<Link, String> {
    let (client, mut connection) = crate::connect::open(target).await?;
    let (tx, notes) = mpsc::unbounded_channel();
    // The backend PID once known: the connection's own notifications (every one the bridge
    // sends comes back, PostgreSQL delivering to its own listening backend too) are dropped
    // here, without waking the bridge's loop for each.
    let own_pid = Arc::new(AtomicI32::new(0));
    let own = own_pid.clone();
    let driver = tokio::spawn(async move {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if n.process_id() == own.load(Ordering::Relaxed) {
                        continue;
                    }
                    let note = PgNote {
                        channel: n.channel().to_owned(),
                        payload: n.payload().to_owned(),
                        pid: n.process_id(),
                    };
                    if tx.send(Ok(note)).is_err() {
                        return;
                    }
                }
                Some(Ok(AsyncMessage::Notice(notice))) => {
                    eprintln!("hark bridge: PostgreSQL says: {}: {}", notice.severity(), notice.message());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let _ = tx.send(Err(describe_error(&e)));
                    return;
                }
                None => {
                    let _ = tx.send(Err("the connection to PostgreSQL was closed".to_owned()));
                    return;
                }
            }
        }
    });
    let pid_row = client.query_one("SELECT pg_backend_pid()", &[]).await.map_err(|e| describe_error(&e))?;
    let backend_pid: i32 = pid_row.get(0);
    own_pid.store(backend_pid, Ordering::Relaxed);
    let mut listen = format!("LISTEN {};", quote_ident(wire::PG_TXN));
    for ch in channels {
        listen.push_str(&format!(" LISTEN {};", quote_ident(ch)));
    }
    client.batch_execute(&listen).await.map_err(|e| describe_error(&e))?;
    let notify_many = client
        .prepare("SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS v(c, p)")
        .await
        .map_err(|e| describe_error(&e))?;
    Ok(Link { client, backend_pid, notes, notify_many, driver })
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
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A string literal for a simple-query text (standard_conforming_strings is on since 9.1; an
/// `E''` literal is used when there is a backslash, so the text means the same either way).
pub fn quote_literal(s: &str) -> String {
    if s.contains('\\') {
        format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "''"))
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
    }
}
