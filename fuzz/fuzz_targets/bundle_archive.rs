//! Fuzz target `bundle_archive`: see `fuzz_checks::bundle_archive` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::bundle_archive(data));
