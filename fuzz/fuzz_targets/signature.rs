//! Fuzz target `signature`: see `fuzz_checks::signature` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::signature(data));
