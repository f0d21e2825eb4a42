//! Fuzz target `endpoint_match`: see `fuzz_checks::endpoint_match` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::endpoint_match(data));
