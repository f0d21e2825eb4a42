//! Shared test support for every crate's integration tests, benches and
//! examples: guests built from WAT against our WIT, an in-memory harness, a real
//! moto server, cargo-lambda's emulator, the backend conformance suites, small
//! HTTP servers and clients. A dev-dependency only; nothing ships it.

pub mod alga_host_stub;
pub mod conformance;
pub mod event_fleet;
pub use fuzz_checks;
pub mod guests;
mod harness;
pub mod hostile_guests;
pub mod http_client;
pub mod http_server;
pub mod lambda_emulator;
pub mod moto;
pub mod schedule_conformance;
pub mod signer;
pub mod vault_stub;
pub mod writer;

pub use harness::*;
