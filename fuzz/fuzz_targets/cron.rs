//! Fuzz target `cron`: see `fuzz_checks::cron` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::cron(data));
