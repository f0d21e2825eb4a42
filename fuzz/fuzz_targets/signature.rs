//! Fuzz target `signature`: see `fuzz_checks::signature` for what it checks.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../tests/src/fuzz_checks/mod.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::signature(data));
