//! Fuzz target `bundle_archive`: see `fuzz_checks::bundle_archive` for what it checks.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../tests/src/fuzz_checks/mod.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::bundle_archive(data));
