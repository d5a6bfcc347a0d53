//! `hark stat`: a queue's size, positions, segment files and listeners, as text with sizes a
//! person reads at a glance, or as one JSON object with every number exact.
//!
//! The report is built from `Report`, the one place that turns the core's statistics into what is
//! shown; both renderings follow it. Each listener or durable subscription shows its lag three
//! ways: in bytes of queue, in unread notifications on its channels, and as the age of the oldest
//! of them, with its channel names (or patterns).

use hark::QueueStats;
use serde::Serialize;
use std::path::Path;

#[derive(Serialize)]
struct Report<'a> {
    dir: String,
    head: u64,
    tail: u64,
    size: u64,
    max_queue_size: u64,
    usage: f64,
    max_payload: usize,
    segment_size: u64,
    segment_files: &'a [String],
    spare_file: bool,
    listeners: Vec<Listener>,
}

#[derive(Serialize)]
struct Listener {
    pid: i32,
    os_pid: i32,
    slot: usize,
    /// The durable subscription's name; `None` for a plain listener.
    subscription: Option<String>,
    /// How many channels (and patterns) it listens on.
    channels: u32,
    /// Their names, when the core could keep them.
    channel_names: Option<Vec<String>>,
    position: u64,
    /// Bytes of the queue it has yet to read.
    lag: u64,
    /// Notifications on its channels it has yet to read.
    lag_notifications: u64,
    /// Milliseconds since the oldest of them was committed.
    lag_age_ms: Option<u64>,
    /// Its lag limits (0: none).
    max_lag_bytes: u64,
    max_lag_age_ms: u64,
    /// Notifications skipped by a cut, not yet reported to it.
    gap_pending: u64,
    alive: bool,
}

impl<'a> Report<'a> {
    fn new(dir: &Path, s: &'a QueueStats) -> Report<'a> {
        let listeners = s
            .listeners
            .iter()
            .map(|l| Listener {
                pid: l.pid,
                os_pid: l.os_pid,
                slot: l.slot,
                subscription: l.subscription.clone(),
                channels: l.channels,
                channel_names: l.channel_names.clone(),
                position: l.position,
                lag: l.lag,
                lag_notifications: l.lag_notifications,
                lag_age_ms: l.lag_age.map(|d| d.as_millis() as u64),
                max_lag_bytes: l.max_lag_bytes,
                max_lag_age_ms: l.max_lag_age.as_millis() as u64,
                gap_pending: l.gap_pending,
                alive: l.alive,
            })
            .collect();
        Report {
            dir: dir.display().to_string(),
            head: s.head,
            tail: s.tail,
            size: s.head - s.tail,
            max_queue_size: s.max_queue_size,
            usage: s.usage,
            max_payload: s.max_payload,
            segment_size: s.segment_size,
            segment_files: &s.segment_files,
            spare_file: s.spare_file,
            listeners,
        }
    }
}

/// A byte count as a person reads it: `512 bytes`, `1.5 KiB`, `8 GiB`.
pub fn bytes(n: u64) -> String {
    if n < 1024 {
        return format!("{n} byte{}", if n == 1 { "" } else { "s" });
    }
    format!("{} {}", scaled(n).0, scaled(n).1)
}

/// The same without a space, for a table column: `512B`, `1.5KiB`.
pub fn bytes_compact(n: u64) -> String {
    if n < 1024 {
        return format!("{n}B");
    }
    let (v, unit) = scaled(n);
    format!("{v}{unit}")
}

fn scaled(n: u64) -> (String, &'static str) {
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    let text = format!("{v:.1}");
    (text.strip_suffix(".0").unwrap_or(&text).to_owned(), units[i])
}

/// The human-readable report.
pub fn render_text(dir: &Path, s: &QueueStats) -> String {
    let r = Report::new(dir, s);
    let mut out = String::new();
    out.push_str(&format!("queue        {}\n", r.dir));
    out.push_str(&format!(
        "size         {} of {} in use ({})\n",
        bytes(r.size),
        bytes(r.max_queue_size),
        percent(r.usage)
    ));
    out.push_str(&format!("head         {}\n", r.head));
    out.push_str(&format!("tail         {}\n", r.tail));
    out.push_str(&format!("max payload  {}\n", bytes(r.max_payload as u64)));
    out.push_str(&format!(
        "segments     {} file{} of {}: {}{}\n",
        r.segment_files.len(),
        if r.segment_files.len() == 1 { "" } else { "s" },
        bytes(r.segment_size),
        if r.segment_files.is_empty() { "(none)".to_owned() } else { r.segment_files.join(" ") },
        if r.spare_file { ", and a spare for reuse" } else { "" }
    ));
    out.push_str(&format!("listeners    {}\n", r.listeners.len()));
    if !r.listeners.is_empty() {
        out.push_str(&format!(
            "  {:>10}  {:>8}  {:>5}  {:>14}  {:>9}  {:>8}  {:>7}  {:<5}  {}\n",
            "pid", "os_pid", "slot", "position", "lag", "unread", "oldest", "state", "channels"
        ));
        for l in &r.listeners {
            let state = match (l.alive, &l.subscription) {
                (true, _) => "alive",
                (false, Some(_)) => "detached",
                (false, None) => "dead",
            };
            let names = match &l.channel_names {
                Some(names) => names.iter().map(|n| shown(n)).collect::<Vec<_>>().join(" "),
                None => format!("({} channels)", l.channels),
            };
            let names = match &l.subscription {
                Some(sub) => format!("subscription {}: {names}", shown(sub)),
                None => names,
            };
            out.push_str(&format!(
                "  {:>10}  {:>8}  {:>5}  {:>14}  {:>9}  {:>8}  {:>7}  {:<5}  {}\n",
                l.pid,
                l.os_pid,
                l.slot,
                l.position,
                bytes_compact(l.lag),
                l.lag_notifications,
                l.lag_age_ms.map_or_else(|| "-".to_owned(), age),
                state,
                names
            ));
        }
    }
    out
}

/// A channel or subscription name as the text report shows it: control characters (an escape
/// sequence, a newline) as Rust escapes them (`\u{1b}`), so that a name cannot move the cursor,
/// recolour the terminal or fake a line of the report; `--json` keeps names exact.
fn shown(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A lag in time as a person reads it: `350ms`, `12s`, `3m05s`, `2h03m`, `4d02h`.
pub fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// A fraction as a percentage with enough digits to show a queue that is barely used.
fn percent(f: f64) -> String {
    let p = f * 100.0;
    if p == 0.0 {
        "0%".to_owned()
    } else if p < 0.01 {
        format!("{p:.6}%")
    } else {
        format!("{p:.2}%")
    }
}

/// The same as one JSON object, every number exact.
pub fn render_json(dir: &Path, s: &QueueStats) -> String {
    let mut text = serde_json::to_string(&Report::new(dir, s)).expect("JSON of the report");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_at_a_glance() {
        assert_eq!(bytes(0), "0 bytes");
        assert_eq!(bytes(1), "1 byte");
        assert_eq!(bytes(1023), "1023 bytes");
        assert_eq!(bytes(1024), "1 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(8 << 30), "8 GiB");
        assert_eq!(bytes(7999), "7.8 KiB");
        assert_eq!(bytes_compact(300), "300B");
        assert_eq!(bytes_compact(3 << 20), "3MiB");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.5), "50.00%");
        assert_eq!(percent(1e-7), "0.000010%");
        assert_eq!(age(350), "350ms");
        assert_eq!(age(12_400), "12s");
        assert_eq!(age(185_000), "3m05s");
        assert_eq!(age(7_380_000), "2h03m");
        assert_eq!(age(352_800_000), "4d02h");
    }
}
