//! The integration tests of stores-aws: one test binary, a module per topic; the
//! shared support is the `test-support` crate (`tests/`).

mod conformance;
mod faults;
mod round_trip;
