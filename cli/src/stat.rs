//! `hark stat`: a queue's size, positions, segment files and listeners.

use crate::json;
use hark::QueueStats;
use std::path::Path;

/// The human-readable report.
pub fn render_text(dir: &Path, s: &QueueStats) -> String {
    let mut out = String::new();
    let used = s.head - s.tail;
    out.push_str(&format!("queue        {}\n", dir.display()));
    out.push_str(&format!(
        "size         {} of {} bytes ({:.6} of the maximum in use)\n",
        used, s.max_queue_size, s.usage
    ));
    out.push_str(&format!("head         {}\n", s.head));
    out.push_str(&format!("tail         {}\n", s.tail));
    out.push_str(&format!("max payload  {} bytes\n", s.max_payload));
    out.push_str(&format!(
        "segments     {} file{} of {} bytes: {}{}\n",
        s.segment_files.len(),
        if s.segment_files.len() == 1 { "" } else { "s" },
        s.segment_size,
        if s.segment_files.is_empty() { "(none)".to_owned() } else { s.segment_files.join(" ") },
        if s.spare_file { ", and a spare for reuse" } else { "" }
    ));
    out.push_str(&format!("listeners    {}\n", s.listeners.len()));
    if !s.listeners.is_empty() {
        out.push_str(&format!(
            "  {:>10}  {:>8}  {:>5}  {:>8}  {:>14}  {:>12}  {}\n",
            "pid", "os_pid", "slot", "channels", "position", "lag", "state"
        ));
        for l in &s.listeners {
            out.push_str(&format!(
                "  {:>10}  {:>8}  {:>5}  {:>8}  {:>14}  {:>12}  {}\n",
                l.pid,
                l.os_pid,
                l.slot,
                l.channels,
                l.position,
                l.lag,
                if l.alive { "alive" } else { "dead" }
            ));
        }
    }
    out
}

/// The same as one JSON object.
pub fn render_json(dir: &Path, s: &QueueStats) -> String {
    let listeners: Vec<String> = s
        .listeners
        .iter()
        .map(|l| {
            format!(
                "{{\"pid\":{},\"os_pid\":{},\"slot\":{},\"channels\":{},\"position\":{},\"lag\":{},\"alive\":{}}}",
                l.pid, l.os_pid, l.slot, l.channels, l.position, l.lag, l.alive
            )
        })
        .collect();
    let files: Vec<String> = s.segment_files.iter().map(|f| json::string(f)).collect();
    format!(
        "{{\"dir\":{},\"head\":{},\"tail\":{},\"size\":{},\"max_queue_size\":{},\"usage\":{},\"max_payload\":{},\"segment_size\":{},\"segment_files\":[{}],\"spare_file\":{},\"listeners\":[{}]}}\n",
        json::string(&dir.display().to_string()),
        s.head,
        s.tail,
        s.head - s.tail,
        s.max_queue_size,
        s.usage,
        s.max_payload,
        s.segment_size,
        files.join(","),
        s.spare_file,
        listeners.join(",")
    )
}
