//! The little JSON hark writes: notifications as `{"channel","payload","pid"}` and `stat --json`.

/// `s` as a JSON string literal, quotes included.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A notification as one JSON object.
pub fn notification(n: &hark::NotificationRef<'_>) -> String {
    format!("{{\"channel\":{},\"payload\":{},\"pid\":{}}}", string(n.channel), string(n.payload), n.pid)
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes() {
        assert_eq!(super::string("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
        let n = hark::NotificationRef {
            channel: "c",
            payload: "{\"x\":1}",
            pid: 7,
            position: 0,
            txn: 0,
            commit_time: std::time::UNIX_EPOCH,
        };
        assert_eq!(super::notification(&n), r#"{"channel":"c","payload":"{\"x\":1}","pid":7}"#);
    }
}
