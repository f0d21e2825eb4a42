//! The integration tests of runtime-core: one test binary, a module per topic; the
//! shared support is the `test-support` crate (`tests/`).

mod artifacts;
mod egress;
mod events;
mod execute;
mod faults;
mod fuzz_corpus;
mod host_api;
mod host_gates;
mod hostile;
mod js_example;
mod metrics;
mod publish;
mod schedules;
mod ui_assets;
mod vault_secrets;
mod warm_path;
