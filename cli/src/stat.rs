//! `hark stat`: a queue's size, positions, segment files and listeners, as text with sizes a
//! person reads at a glance, or as one JSON object with every number exact.
//!
//! The report is built from `Report`, the one place that turns the core's statistics into what is
//! shown: what the core adds (a listener's channel names, its lag in notifications and in time)
//! goes there, and both renderings follow.

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
    /// How many channels it listens on.
    channels: u32,
    position: u64,
    /// Bytes of the queue it has yet to read.
    lag: u64,
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
                channels: l.channels,
                position: l.position,
                lag: l.lag,
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
            "  {:>10}  {:>8}  {:>5}  {:>8}  {:>14}  {:>10}  {}\n",
            "pid", "os_pid", "slot", "channels", "position", "lag", "state"
        ));
        for l in &r.listeners {
            out.push_str(&format!(
                "  {:>10}  {:>8}  {:>5}  {:>8}  {:>14}  {:>10}  {}\n",
                l.pid,
                l.os_pid,
                l.slot,
                l.channels,
                l.position,
                bytes_compact(l.lag),
                if l.alive { "alive" } else { "dead" }
            ));
        }
    }
    out
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
    }
}
