//! `alga-lambda`: the command line of alga-lambda.
//!
//! Each subcommand only translates arguments into runtime-core calls. Exit codes:
//! 0 success; 1 the operation was refused or failed (a bad signature, an execution
//! error, not found); 2 usage, I/O or configuration errors. Every error is one line,
//! `error[code]: what happened — what to do` ([`errors`]); `-v` adds the detail.

mod backends;
mod commands;
mod errors;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

pub use errors::Failure;

/// Write, run and ship WebAssembly extensions: locally with `up`, on AWS Lambda
/// with `publish` and `install`.
#[derive(Parser)]
#[command(
    name = "alga-lambda",
    version,
    long_about = "Write, run and ship multi-tenant WebAssembly extensions (a component handler \
plus an iframe UI), locally with no AWS and no Docker, or on AWS Lambda.\n\n\
Commands that touch the registry use the local data directory (--data) unless \
ALGA_BACKEND=aws, which uses the stack's DynamoDB table and S3 buckets \
(ALGA_TABLE, ALGA_BUCKET, AWS_REGION and the usual AWS credentials).",
    after_help = "Start here:\n  \
alga-lambda new my-ext          a new extension folder (--template ts|js)\n  \
alga-lambda up my-ext           npm install, build, publish, install and serve it on localhost\n\n\
Ship it:\n  \
alga-lambda keygen --out key.json --trust; alga-lambda pack my-ext --out my-ext.tar.zst\n  \
alga-lambda sign my-ext.tar.zst --key key.json; ALGA_BACKEND=aws alga-lambda publish my-ext.tar.zst\n\n\
Errors print as `error[code]: what happened — what to do`; -v adds the detail.\n\
Shell completions: alga-lambda completions bash|zsh|fish."
)]
struct Cli {
    /// Local data directory (registry, bundles, artifacts, trust bundle).
    #[arg(long, global = true, env = "ALGA_DATA", default_value = ".alga")]
    data: PathBuf,
    /// Print the detail behind an error (the whole error chain, the AWS SDK's report).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new extension folder from a template (js or ts).
    New(commands::new::NewArgs),
    /// Build, publish and install an extension locally and serve it on localhost
    /// through the same handlers as the Lambda functions (like `spin up`).
    Up(commands::up::UpArgs),
    /// Compile a component in-process and run one request through its handler.
    Run(commands::run::RunArgs),
    /// Post an event to a running `up`; subscribed installs receive it.
    Emit(commands::emit::EmitArgs),
    /// Generate an ed25519 signing key (and trust it locally with --trust).
    Keygen(commands::keys::KeygenArgs),
    /// Pack an extension directory into a bundle (bundle.tar.zst).
    Pack(commands::bundle::PackArgs),
    /// Sign a bundle (writes the signature sidecar BUNDLE.sig.json).
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
    /// Print a shell completion script (bash, zsh or fish).
    Completions(commands::completions::CompletionsArgs),
}

/// What a command returns.
pub type Outcome = Result<ExitCode, Failure>;

/// Parses the command line; a usage error is one `error[usage]` line too.
fn parse() -> Cli {
    let e = match Cli::try_parse() {
        Ok(cli) => return cli,
        Err(e) => e,
    };
    use clap::error::ErrorKind::*;
    if matches!(
        e.kind(),
        DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let verbose = std::env::args().any(|a| a == "-v" || a == "--verbose");
    let text = e.to_string();
    let what = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    let tip = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("tip: "))
        .map(String::from);
    let sub = std::env::args()
        .skip(1)
        .find(|a| Cli::command().find_subcommand(a).is_some());
    let help = match sub {
        Some(s) => format!("see alga-lambda {s} --help"),
        None => "see alga-lambda --help".into(),
    };
    let fix = match tip {
        Some(t) => format!("{t}; {help}"),
        None => help,
    };
    eprintln!("error[usage]: {what} — {fix}");
    if verbose {
        eprintln!();
        for line in text.lines() {
            eprintln!("  {line}");
        }
    }
    std::process::exit(2);
}

fn main() -> ExitCode {
    let cli = parse();
    let verbose = cli.verbose;
    let data = cli.data;
    let json_up = matches!(&cli.command, Command::Up(a) if a.json());
    commands::up::log::init_tracing(json_up);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = runtime.block_on(async move {
        use commands::*;
        match cli.command {
            Command::New(a) => new::new(a),
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
            Command::Completions(a) => completions::completions(a, Cli::command()),
        }
    });
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("{}", errors::Report::of(&f).render(verbose));
            ExitCode::from(f.exit_code())
        }
    }
}
