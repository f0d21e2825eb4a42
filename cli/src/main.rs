//! `alga-lambda`: the command line of alga-lambda.
//!
//! Each subcommand only translates arguments into runtime-core calls. Exit codes:
//! 0 success; 1 the operation was refused or failed (a bad signature, an execution
//! error, not found); 2 usage, I/O or configuration errors.

mod backends;
mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run multi-tenant WebAssembly extensions, locally or on AWS Lambda.
#[derive(Parser)]
#[command(name = "alga-lambda", version, about)]
struct Cli {
    /// Local data directory (registry, bundles, artifacts, trust bundle).
    #[arg(long, global = true, env = "ALGA_DATA", default_value = ".alga")]
    data: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile a component in-process and run one request through its handler.
    Run(commands::run::RunArgs),
    /// Generate an ed25519 signing key.
    Keygen(commands::keys::KeygenArgs),
    /// Pack an extension directory into bundle.tar.zst.
    Pack(commands::bundle::PackArgs),
    /// Sign a bundle (writes the signature sidecar).
    Sign(commands::bundle::SignArgs),
    /// Verify a bundle's signature against the trust bundle.
    Verify(commands::bundle::VerifyArgs),
    /// Verify, precompile and register a signed bundle.
    Publish(commands::publish::PublishArgs),
    /// Compile a published version again (repairs a lost artifact; needed after a
    /// wasmtime upgrade).
    Recompile(commands::publish::RecompileArgs),
    /// Install an extension for a tenant (or change its version, grants or config).
    Install(commands::installs::InstallArgs),
    /// Remove a tenant's install.
    Uninstall(commands::installs::TargetArgs),
    /// Enable a tenant's install.
    Enable(commands::installs::TargetArgs),
    /// Disable a tenant's install.
    Disable(commands::installs::TargetArgs),
    /// Change the capabilities granted to a tenant's install.
    Grant(commands::installs::GrantArgs),
    /// List published extensions, or a tenant's installs.
    List(commands::installs::ListArgs),
    /// Run one request against a tenant's install, through the registry.
    Invoke(commands::invoke::InvokeArgs),
    /// Build, publish and install an extension locally and serve it on localhost
    /// through the same handlers as the Lambda functions.
    Up(commands::up::UpArgs),
    /// Post an event to a running `up`; subscribed installs receive it.
    Emit(commands::emit::EmitArgs),
}

/// A failure with its exit code.
pub struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    /// The operation was refused (exit 1).
    pub fn refused(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: 1,
            error: error.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            code: 2,
            error: e.into(),
        }
    }
}

/// What a command returns.
pub type Outcome = Result<ExitCode, Failure>;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ALGA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let data = cli.data;
    let result = runtime.block_on(async move {
        use commands::*;
        match cli.command {
            Command::Run(a) => run::run(a).await,
            Command::Keygen(a) => keys::keygen(a, &data),
            Command::Pack(a) => bundle::pack(a),
            Command::Sign(a) => bundle::sign(a),
            Command::Verify(a) => bundle::verify(a, &data),
            Command::Publish(a) => publish::publish(a, &data).await,
            Command::Recompile(a) => publish::recompile(a, &data).await,
            Command::Install(a) => installs::install(a, &data).await,
            Command::Uninstall(a) => installs::uninstall(a, &data).await,
            Command::Enable(a) => installs::set_enabled(a, &data, true).await,
            Command::Disable(a) => installs::set_enabled(a, &data, false).await,
            Command::Grant(a) => installs::grant(a, &data).await,
            Command::List(a) => installs::list(a, &data).await,
            Command::Invoke(a) => invoke::invoke(a, &data).await,
            Command::Up(a) => up::up(a, &data).await,
            Command::Emit(a) => emit::emit(a).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}
