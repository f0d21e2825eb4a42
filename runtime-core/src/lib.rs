//! runtime-core: everything platform-neutral in alga-lambda.
//!
//! Engine and artifacts, the host side of the `alga:extension` world, the execute
//! pipeline, and the backend traits with their local implementations. No Lambda
//! types here: the function crates translate events into calls on this crate.

pub mod artifact;
pub mod backends;
pub mod bundle;
pub mod capability;
pub mod clock;
pub mod config;
pub mod content;

pub mod engine;
pub mod events;
pub mod execute;
pub mod gateway;
pub mod host;
pub mod loader;
pub mod manifest;
#[cfg(feature = "compiler")]
pub mod publish;
pub mod schedule;
pub mod store;
pub mod ui;
pub mod vault;

pub use capability::{Capability, CapabilitySet};
pub use config::RuntimeConfig;
pub use execute::{Envelope, ExecError, ExecuteRequest, Executor, Outcome, RoutingHeaders};
