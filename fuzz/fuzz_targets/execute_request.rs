//! Fuzz target `execute_request`: see `fuzz_checks::execute_request` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::execute_request(data));
