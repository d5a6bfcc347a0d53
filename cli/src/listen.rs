//! `hark listen`'s receive loop, for a listener and for a durable subscription's consumer.
//!
//! Each notification is printed as one line (psql's, or JSON) and flushed; a subscription's is
//! then acknowledged, so that a consumer killed at any instruction receives again, at its next
//! attach, only what it had not printed, plus at most the one line it printed last (killed
//! between the flush and the acknowledgement). A gap (the receiver was cut) is a line on standard
//! error, and in JSON mode also a `{"gap":…}` object in its place among the notifications.
//!
//! The core's automatic acknowledgement (`AckMode::Auto`) is not used: it acknowledges a
//! notification at the next receive, so a consumer killed after printing one but before asking
//! for the next would print it again; acknowledging explicitly once the line is flushed narrows
//! that to a kill between the flush and the acknowledgement.

use crate::format::{notification_line, render_error};
use crate::json;
use hark::{Connection, ErrorKind, Gap};
use std::io::Write;
use std::time::{Duration, Instant};

/// How `hark listen` prints, acknowledges and stops.
pub struct Receive {
    /// One JSON object per line instead of psql's line.
    pub json: bool,
    /// A durable subscription's consumer: its JSON lines carry position, txn and commit time.
    pub subscription: bool,
    /// Acknowledge each notification once its line is flushed (a subscription's consumer).
    pub ack: bool,
    /// Stop after this many notifications.
    pub count: Option<u64>,
    /// Stop after this long.
    pub timeout: Option<Duration>,
}

/// Prints what `conn` receives until the count, the timeout, or a closed standard output (a
/// pipe to `head -1`) ends it; returns the exit status: 0, or 1 when `count` was not reached in
/// time or a call failed.
pub fn run(conn: &mut Connection, r: &Receive, out: &mut impl Write) -> u8 {
    // A timeout too far to be told from none is none.
    let deadline = r.timeout.and_then(|t| Instant::now().checked_add(t));
    let mut received = 0u64;
    let done = |received: u64| r.count.is_some_and(|c| received >= c);
    loop {
        if done(received) {
            return 0;
        }
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match conn.wait(timeout) {
            Ok(true) => {}
            Ok(false) => {
                return match r.count {
                    Some(c) if received < c => {
                        eprintln!("hark listen: timed out after {received} of {c} notifications");
                        1
                    }
                    _ => 0,
                };
            }
            Err(e) if e.kind() == ErrorKind::Gap => {
                if gap(e.gap(), r, out).is_err() {
                    return 0;
                }
                continue;
            }
            Err(e) => return fail(&e),
        }
        while !done(received) {
            let position = match conn.notifies_ref() {
                Ok(Some(n)) => {
                    let line = match (r.json, r.subscription) {
                        (true, true) => json::subscription_notification(&n),
                        (true, false) => json::notification(&n),
                        (false, _) => notification_line(&n),
                    };
                    // A closed pipe (`| head -1`) ends listening quietly, and acknowledges
                    // nothing it could not print.
                    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                        return 0;
                    }
                    n.position
                }
                Ok(None) => break,
                Err(e) if e.kind() == ErrorKind::Gap => {
                    if gap(e.gap(), r, out).is_err() {
                        return 0;
                    }
                    continue;
                }
                Err(e) => return fail(&e),
            };
            received += 1;
            if r.ack {
                if let Err(e) = conn.ack(position) {
                    return fail(&e);
                }
            }
        }
    }
}

/// Reports a gap: a line on standard error, and the JSON object in JSON mode.
fn gap(g: Option<&Gap>, r: &Receive, out: &mut impl Write) -> std::io::Result<()> {
    let Some(g) = g else { return Ok(()) };
    eprintln!("{}", gap_line(g));
    if r.json {
        writeln!(out, "{}", json::gap(g))?;
        out.flush()?;
    }
    Ok(())
}

/// The line `hark listen` writes on standard error for a gap.
pub fn gap_line(g: &Gap) -> String {
    format!(
        "hark listen: gap: {} notification{} skipped (commits {} to {}); resuming at position {}",
        g.skipped,
        if g.skipped == 1 { " was" } else { "s were" },
        g.first_txn,
        g.last_txn,
        g.resumed_at
    )
}

fn fail(e: &hark::Error) -> u8 {
    eprint!("{}", render_error(e, None));
    1
}

#[cfg(test)]
mod tests {
    #[test]
    fn gap_line_says_what_was_skipped() {
        let g = hark::Gap { skipped: 1, first_txn: 9, last_txn: 9, resumed_at: 4096 };
        assert_eq!(
            super::gap_line(&g),
            "hark listen: gap: 1 notification was skipped (commits 9 to 9); resuming at position 4096"
        );
    }
}
