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
}
