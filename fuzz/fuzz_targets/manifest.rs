//! Fuzz target `manifest`: see `fuzz_checks::manifest` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::manifest(data));
