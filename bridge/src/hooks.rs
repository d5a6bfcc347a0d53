//! Test hooks that stop the bridge at a chosen point, so that crash tests can kill it exactly
//! there. Compiled only with the `test-hooks` cargo feature: a release build reads no
//! `HARK_BRIDGE_FAULT_*` variable.
//!
//! `HARK_BRIDGE_FAULT_PARK_BEFORE_ACK=<file>`: once PostgreSQL reported the COMMIT of a
//! transaction the bridge sent, and before the bridge acknowledges it locally, the bridge writes
//! `<file>` and sleeps for ever (a kill then makes the next run send that transaction again).
//! `HARK_BRIDGE_FAULT_PARK_BEFORE_ORIGINS=<file>`: the same before the bridge saves the origins
//! file and acknowledges transactions it committed from PostgreSQL (`origins.rs`): a run killed
//! there must learn their commit numbers from the queue.
//! `HARK_BRIDGE_FAULT_FAIL_BATCH=<file>`: the first message of several transactions the bridge
//! sends has a failing statement (`SELECT 1/0`) in its second transaction, and the bridge writes
//! `<file>`: PostgreSQL commits the first, stops there, and leaves the session in a failed
//! transaction block.

/// Where the bridge can be parked.
#[derive(Clone, Copy)]
pub enum Point {
    BeforeAck,
    BeforeOrigins,
}

pub fn park(point: Point) {
    use std::path::PathBuf;
    use std::sync::OnceLock;
    static BEFORE_ACK: OnceLock<Option<PathBuf>> = OnceLock::new();
    static BEFORE_ORIGINS: OnceLock<Option<PathBuf>> = OnceLock::new();
    let (cell, var) = match point {
        Point::BeforeAck => (&BEFORE_ACK, "HARK_BRIDGE_FAULT_PARK_BEFORE_ACK"),
        Point::BeforeOrigins => (&BEFORE_ORIGINS, "HARK_BRIDGE_FAULT_PARK_BEFORE_ORIGINS"),
    };
    if let Some(marker) = cell.get_or_init(|| std::env::var_os(var).map(PathBuf::from)) {
        let _ = std::fs::write(marker, std::process::id().to_string());
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// Whether to make the batch being built fail in its second transaction (once, when
/// `HARK_BRIDGE_FAULT_FAIL_BATCH` is set).
pub fn fail_batch() -> bool {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;
    static MARKER: OnceLock<Option<PathBuf>> = OnceLock::new();
    static DONE: AtomicBool = AtomicBool::new(false);
    match MARKER.get_or_init(|| std::env::var_os("HARK_BRIDGE_FAULT_FAIL_BATCH").map(PathBuf::from)) {
        Some(marker) if !DONE.swap(true, Ordering::SeqCst) => {
            let _ = std::fs::write(marker, std::process::id().to_string());
            true
        }
        _ => false,
    }
}
