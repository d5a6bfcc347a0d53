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
