//! One module per group of subcommands; each only translates arguments into
//! runtime-core calls.

pub mod bundle;
pub mod completions;
pub mod emit;
pub mod installs;
pub mod invoke;
pub mod keys;
pub mod new;
pub mod publish;
pub mod request;
pub mod run;
pub mod up;
