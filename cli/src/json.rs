//! Notifications as JSON lines (`hark listen --json`), written by serde_json.

use serde::Serialize;

/// A notification as `hark listen --json` prints it: `{"channel","payload","pid"}`.
#[derive(Serialize)]
struct Line<'a> {
    channel: &'a str,
    payload: &'a str,
    pid: i32,
}

/// A notification as one JSON object.
pub fn notification(n: &hark::NotificationRef<'_>) -> String {
    serde_json::to_string(&Line { channel: n.channel, payload: n.payload, pid: n.pid }).expect("JSON of strings")
}

/// A notification of a durable subscription (`hark listen --subscription --json`): a plain
/// listener's fields, then where and when it was committed: `position` (the key for idempotent
/// processing), `txn` and `commit_time` (milliseconds since the Unix epoch, as `hark serve`'s).
#[derive(Serialize)]
struct SubscriptionLine<'a> {
    channel: &'a str,
    payload: &'a str,
    pid: i32,
    position: u64,
    txn: u64,
    commit_time: u64,
}

/// A durable subscription's notification as one JSON object.
pub fn subscription_notification(n: &hark::NotificationRef<'_>) -> String {
    let commit_time =
        n.commit_time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis().min(u64::MAX as u128) as u64);
    serde_json::to_string(&SubscriptionLine {
        channel: n.channel,
        payload: n.payload,
        pid: n.pid,
        position: n.position,
        txn: n.txn,
        commit_time,
    })
    .expect("JSON of strings")
}

#[derive(Serialize)]
struct GapFields {
    skipped: u64,
    first_txn: u64,
    last_txn: u64,
    resumed_at: u64,
}

#[derive(Serialize)]
struct GapLine {
    gap: GapFields,
}

/// A gap (the receiver was cut) as one JSON object, `{"gap":{"skipped","first_txn","last_txn",
/// "resumed_at"}}`: the only line with a `gap` key, so a reader tells it from a notification.
pub fn gap(g: &hark::Gap) -> String {
    let gap = GapFields { skipped: g.skipped, first_txn: g.first_txn, last_txn: g.last_txn, resumed_at: g.resumed_at };
    serde_json::to_string(&GapLine { gap }).expect("JSON of numbers")
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        let n = hark::NotificationRef {
            channel: "c",
            payload: "{\"x\":1}\n\u{1}",
            pid: 7,
            position: 0,
            txn: 0,
            commit_time: std::time::UNIX_EPOCH,
        };
        assert_eq!(super::notification(&n), r#"{"channel":"c","payload":"{\"x\":1}\n\u0001","pid":7}"#);
    }

    #[test]
    fn subscription_lines_and_gaps() {
        let n = hark::NotificationRef {
            channel: "orders.paid",
            payload: "42",
            pid: 7,
            position: 4096,
            txn: 12,
            commit_time: std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_123_456),
        };
        assert_eq!(
            super::subscription_notification(&n),
            r#"{"channel":"orders.paid","payload":"42","pid":7,"position":4096,"txn":12,"commit_time":1700000000123}"#
        );
        let g = hark::Gap { skipped: 3, first_txn: 5, last_txn: 7, resumed_at: 8192 };
        assert_eq!(super::gap(&g), r#"{"gap":{"skipped":3,"first_txn":5,"last_txn":7,"resumed_at":8192}}"#);
    }
}
