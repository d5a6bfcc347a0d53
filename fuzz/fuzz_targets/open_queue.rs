//! Fuzz target `open_queue`: see `hark_hardening::open_queue` for what it feeds hark and what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hark_hardening::open_queue(data);
});
