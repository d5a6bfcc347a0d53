//! Fuzz target `read_segment`: see `hark_hardening::read_segment` for what it feeds hark and what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = hark_hardening::read_segment(data);
});
