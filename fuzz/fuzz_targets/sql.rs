//! Fuzz target `sql`: see `hark_hardening::sql` for what it feeds hark and what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hark_hardening::sql(data);
});
