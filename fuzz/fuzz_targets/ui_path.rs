//! Fuzz target `ui_path`: see `fuzz_checks::ui_path` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::ui_path(data));
