//! Channels by pattern (`orders.*`, Redis' globs as the core takes them), added from a page.
//!
//! Plain LISTEN takes exact channels only; the core matches patterns for durable subscriptions.
//! So each pattern gets a connection of its own, attached to a subscription named
//! `hark-serve.<process id>.<n>` with automatic acknowledgement and a lag limit (a dashboard is
//! no reason to hold the queue back: past the limit the subscription is cut), and a thread that
//! hands what it receives to the hub. A subscription outlives its process: one left detached by
//! a server that was killed is dropped by the next server that starts on the queue.

use super::hub::Hub;
use hark::{AckMode, Connection, Event, SubscribeOptions};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const PREFIX: &str = "hark-serve.";
/// Past this lag a pattern's subscription is cut instead of holding the queue back.
const MAX_LAG_AGE: Duration = Duration::from_secs(600);

/// Whether a channel name given from a page is a pattern (`*`, `?` or `\` in it).
pub fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?', '\\'])
}

/// Drops the subscriptions of servers that are gone (detached, with this server's prefix).
pub fn sweep(conn: &mut Connection) -> Result<(), String> {
    let subs = conn.subscriptions().map_err(|e| e.to_string())?;
    for s in subs.iter().filter(|s| !s.alive) {
        if let Some(name) = s.subscription.as_deref().filter(|n| n.starts_with(PREFIX)) {
            // Another server may have dropped it first.
            let _ = conn.unsubscribe(name);
        }
    }
    Ok(())
}

/// Subscribes to `pattern` on a connection of its own, and forwards what it receives from a
/// thread of its own, for as long as the server runs.
pub fn follow(dir: &Path, options: &hark::Options, pattern: &str, hub: Arc<Hub>) -> Result<(), String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!("{PREFIX}{}.{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
    let mut conn = Connection::with_options(dir, options).map_err(|e| e.to_string())?;
    let sub = SubscribeOptions::new().ack(AckMode::Auto).max_lag_age(MAX_LAG_AGE);
    conn.subscribe(&name, &[pattern], &sub).map_err(|e| e.to_string())?;
    thread::Builder::new()
        .name("hark-pattern".into())
        .spawn(move || loop {
            let fatal = |e: hark::Error| -> ! {
                eprintln!("hark serve: error: {e}");
                std::process::exit(1);
            };
            if let Err(e) = conn.wait(None) {
                fatal(e);
            }
            loop {
                match conn.next_event() {
                    Ok(Some(Event::Notification(n))) => {
                        hub.notification(&n.channel, &n.payload, n.pid, n.commit_time, n.position)
                    }
                    // Cut for lagging: what was skipped is gone; what follows goes on.
                    Ok(Some(Event::Gap(_))) => {}
                    Ok(None) => break,
                    Err(e) => fatal(e),
                }
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}
