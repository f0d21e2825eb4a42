//! The integration tests of alga-lambda (the CLI): one test binary, a module per topic; the
//! shared support is the `test-support` crate (`tests/`).

mod errors;
mod help;
mod new;
mod registry;
mod run;
mod schedules;
mod up;
