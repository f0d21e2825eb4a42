//! Fuzz target `egress`: see `fuzz_checks::egress` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::egress(data));
