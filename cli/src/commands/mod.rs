//! One module per subcommand; each only translates arguments into runtime-core calls.

pub mod run;
