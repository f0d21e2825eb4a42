//! Fuzz target `endpoint_match`: see `fuzz_checks::endpoint_match` for what it checks.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../tests/src/fuzz_checks/mod.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::endpoint_match(data));
