//! Fuzz target `ui_path`: see `fuzz_checks::ui_path` for what it checks.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../tests/src/fuzz_checks/mod.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::ui_path(data));
