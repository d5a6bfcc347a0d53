//! The bridge's reserved channels and what their payloads say. Every name starts with
//! `hark.bridge`, which the bridge refuses to carry as a user channel.
//!
//! On PostgreSQL:
//! * [`PG_TXN`] (`hark.bridge`): each transaction a bridge sends ends with `end ORIGIN TXN`, its
//!   origin and local commit number. PostgreSQL's protocol does not say where one transaction's
//!   notifications end, but it delivers each transaction's together, in send order, and a
//!   bridge's connection sends nothing else: the mark lets another bridge commit exactly that
//!   transaction as one local transaction, even when it listens on only some of its channels,
//!   and recognise a transaction sent again.
//! * [`PG_GAP`] (`hark.bridge.gap`): the local queue dropped notifications the bridge had not
//!   sent yet (its durable subscription passed a lag limit). The payload is JSON.
//! * [`PG_DROPPED`] (`hark.bridge.dropped`): a local notification PostgreSQL cannot carry (a
//!   payload of 8,000 bytes or more) was not sent; JSON `{"origin","channel","bytes","txn"}`.
//!
//! In the local queue:
//! * [`LOCAL_ORIGIN`] (`hark.bridge.origin`): the first notification of every transaction the
//!   bridge commits from PostgreSQL, its payload the bridge's name, followed, for another
//!   bridge's marked transaction, by that transaction's origin and commit number
//!   (`NAME ORIGIN TXN`). It is how the bridge knows, even after a crash and a replay, that a
//!   local transaction came from PostgreSQL through it and must not be sent back, and, after a
//!   restart, which commit number of each origin it already committed.
//! * [`LOCAL_GAP`] (`hark.bridge.gap`): PostgreSQL may have delivered notifications while the
//!   bridge was not listening (it reconnected, or it restarted); they are lost. JSON
//!   `{"bridge","reason","disconnected_at","reconnected_at"}` (Unix seconds).
//! * [`LOCAL_DROPPED`] (`hark.bridge.dropped`): a notification from PostgreSQL whose payload is
//!   longer than the queue's `max_payload` (a queue created with a smaller one than
//!   PostgreSQL's), in its place in its transaction; JSON `{"bridge","channel","bytes","pid"}`
//!   (`pid`: the sending backend's).

pub const PG_TXN: &str = "hark.bridge";
pub const PG_GAP: &str = "hark.bridge.gap";
pub const PG_DROPPED: &str = "hark.bridge.dropped";
pub const LOCAL_ORIGIN: &str = "hark.bridge.origin";
pub const LOCAL_GAP: &str = "hark.bridge.gap";
pub const LOCAL_DROPPED: &str = "hark.bridge.dropped";
pub const RESERVED_PREFIX: &str = "hark.bridge";

/// PostgreSQL's largest payload is 7,999 bytes (its `NOTIFY_PAYLOAD_MAX_LENGTH` less one).
pub const PG_MAX_PAYLOAD: usize = 7999;

pub fn end_mark(origin: &str, txn: u64) -> String {
    format!("end {origin} {txn}")
}

/// Reads an end mark: its origin and commit number; `None` for a payload that is not one
/// (someone else's NOTIFY on the channel).
pub fn parse_end_mark(payload: &str) -> Option<(&str, u64)> {
    let rest = payload.strip_prefix("end ")?;
    let (origin, txn) = rest.rsplit_once(' ')?;
    Some((origin, txn.parse().ok()?))
}

/// The payload of a [`LOCAL_ORIGIN`] notification: the bridge's name (which has no space), then
/// the origin and commit number of the marked transaction it commits, if any.
pub fn origin_payload(name: &str, mark: Option<(&str, u64)>) -> String {
    match mark {
        Some((origin, txn)) => format!("{name} {origin} {txn}"),
        None => name.to_owned(),
    }
}

/// Reads an [`origin_payload`]: the bridge's name and the mark it carries.
pub fn parse_origin_payload(payload: &str) -> (&str, Option<(&str, u64)>) {
    match payload.split_once(' ') {
        None => (payload, None),
        Some((name, rest)) => {
            let mark = rest.rsplit_once(' ').and_then(|(o, t)| Some((o, t.parse().ok()?)));
            (name, mark)
        }
    }
}

/// Whether a channel is the bridge's own.
pub fn is_reserved(channel: &str) -> bool {
    channel.starts_with(RESERVED_PREFIX)
}

/// A JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_marks_read_back_and_other_payloads_are_not_marks() {
        assert_eq!(parse_end_mark(&end_mark("host a/b", 7)), Some(("host a/b", 7)));
        assert_eq!(parse_end_mark("hello"), None);
        assert_eq!(parse_end_mark("end x y"), None);
        assert_eq!(parse_end_mark("begin x 1"), None);
    }

    #[test]
    fn origin_payloads_read_back() {
        assert_eq!(parse_origin_payload(&origin_payload("b1", None)), ("b1", None));
        assert_eq!(parse_origin_payload(&origin_payload("b1", Some(("a@h x#1", 9)))), ("b1", Some(("a@h x#1", 9))));
    }

    #[test]
    fn json_strings_escape_what_json_requires() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}
