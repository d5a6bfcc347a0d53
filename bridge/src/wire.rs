//! The bridge's reserved channels and what their payloads say. Every name starts with
//! `hark.bridge`, which the bridge refuses to carry as a user channel.
//!
//! On PostgreSQL:
//! * [`PG_TXN`] (`hark.bridge`): each transaction a bridge sends is framed by `begin ORIGIN TXN`
//!   and `end ORIGIN TXN`, its first and last notification. PostgreSQL's protocol does not say
//!   where one transaction's notifications end, but it delivers each transaction's together, in
//!   send order: the frames let another bridge commit exactly that transaction as one local
//!   transaction, even when it listens on only some of its channels.
//! * [`PG_GAP`] (`hark.bridge.gap`): the local queue dropped notifications the bridge had not
//!   sent yet (its durable subscription passed a lag limit). The payload is JSON.
//! * [`PG_DROPPED`] (`hark.bridge.dropped`): a local notification PostgreSQL cannot carry (a
//!   payload of 8,000 bytes or more) was not sent; JSON `{"origin","channel","bytes","txn"}`.
//!
//! In the local queue:
//! * [`LOCAL_ORIGIN`] (`hark.bridge.origin`): the first notification of every transaction the
//!   bridge commits from PostgreSQL, its payload the bridge's name. It is how the bridge knows,
//!   even after a crash and a replay, that a local transaction came from PostgreSQL through it
//!   and must not be sent back.
//! * [`LOCAL_GAP`] (`hark.bridge.gap`): PostgreSQL may have delivered notifications while the
//!   bridge was not listening (it reconnected, or it restarted); they are lost. JSON
//!   `{"bridge","reason","disconnected_at","reconnected_at"}` (Unix seconds).

pub const PG_TXN: &str = "hark.bridge";
pub const PG_GAP: &str = "hark.bridge.gap";
pub const PG_DROPPED: &str = "hark.bridge.dropped";
pub const LOCAL_ORIGIN: &str = "hark.bridge.origin";
pub const LOCAL_GAP: &str = "hark.bridge.gap";
pub const RESERVED_PREFIX: &str = "hark.bridge";

/// PostgreSQL's largest payload is 7,999 bytes (its `NOTIFY_PAYLOAD_MAX_LENGTH` less one).
pub const PG_MAX_PAYLOAD: usize = 7999;

/// What a frame on [`PG_TXN`] says.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Begin { origin: &'a str, txn: u64 },
    End { origin: &'a str, txn: u64 },
}

pub fn begin_frame(origin: &str, txn: u64) -> String {
    format!("begin {origin} {txn}")
}

pub fn end_frame(origin: &str, txn: u64) -> String {
    format!("end {origin} {txn}")
}

/// Reads a frame; `None` for a payload that is not one (someone else's NOTIFY on the channel).
pub fn parse_frame(payload: &str) -> Option<Frame<'_>> {
    let (kind, rest) = payload.split_once(' ')?;
    let (origin, txn) = rest.rsplit_once(' ')?;
    let txn = txn.parse().ok()?;
    match kind {
        "begin" => Some(Frame::Begin { origin, txn }),
        "end" => Some(Frame::End { origin, txn }),
        _ => None,
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
    fn frames_read_back_and_other_payloads_are_not_frames() {
        assert_eq!(parse_frame(&begin_frame("host a/b", 7)), Some(Frame::Begin { origin: "host a/b", txn: 7 }));
        assert_eq!(parse_frame(&end_frame("x", 0)), Some(Frame::End { origin: "x", txn: 0 }));
        assert_eq!(parse_frame("hello"), None);
        assert_eq!(parse_frame("end x y"), None);
    }

    #[test]
    fn json_strings_escape_what_json_requires() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    }
}
