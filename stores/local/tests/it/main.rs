//! The integration tests of stores-local: one test binary, a module per topic; the
//! shared support is the `test-support` crate (`tests/`).

mod conformance;
mod faults;
