//! Park points for crash tests, compiled only with the `test-hooks` feature: the released
//! extension reads no `HARK_SQLITE_FAULT_*` variable.
//!
//! `HARK_SQLITE_FAULT_PARK_BEFORE_PUBLISH=<file>`: after a SQLite commit that wrote outbox rows,
//! before publishing them, the process writes `<file>` and sleeps for ever.

#[cfg(feature = "test-hooks")]
pub fn park_before_publish() {
    use std::path::PathBuf;
    use std::sync::OnceLock;
    static MARKER: OnceLock<Option<PathBuf>> = OnceLock::new();
    if let Some(marker) =
        MARKER.get_or_init(|| std::env::var_os("HARK_SQLITE_FAULT_PARK_BEFORE_PUBLISH").map(PathBuf::from))
    {
        let _ = std::fs::write(marker, std::process::id().to_string());
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn park_before_publish() {}
