//! The integration tests of fn-publish: one test binary, a module per topic; the
//! shared support is the `test-support` crate (`tests/`).

mod lambda_emulator;
