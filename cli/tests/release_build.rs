//! The `hark` binary that `make` builds carries no test hook: crash and stall hooks live behind
//! the core's `test-hooks` cargo feature, which only the core's tests and the hardening crate
//! enable, so no environment variable can park a release build holding a queue lock.

#[test]
fn the_release_binary_reads_no_fault_hook_variable() {
    let bin = std::fs::read(env!("CARGO_BIN_EXE_hark")).unwrap();
    let needle = b"HARK_FAULT";
    assert!(bin.len() > 100_000, "not the hark binary?");
    assert!(!bin.windows(needle.len()).any(|w| w == needle), "the hark binary contains a HARK_FAULT_* hook");
}
