//! The integration tests of fn-execute: one test binary, a module per topic; the
//! shared support is the `test-support` crate (`tests/`).

mod lambda_emulator;
mod round_trips;
