//! The integration tests of fn-events: one test binary, a module per topic; the
//! shared support is the `test-support` crate (`tests/`).

mod eventbridge_sqs;
mod lambda_emulator;
