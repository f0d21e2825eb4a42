//! `alga-lambda publish` and `recompile`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use runtime_core::RuntimeConfig;
use runtime_core::publish::Stage;
use runtime_core::store::Registered;

use super::bundle::sidecar;

/// Arguments of `publish`.
#[derive(Args)]
pub struct PublishArgs {
    /// The signed bundle.
    bundle: PathBuf,
    /// Signature file [default: BUNDLE.sig.json].
    #[arg(long)]
    sig: Option<PathBuf>,
    /// Refuse manifest keys and shapes this runtime ignores (Alga's `entry`,
    /// `sbom`, `schedulable`, `"X.Y.*"` versions, ...) instead of warning about them
    /// [default: ALGA_PUBLISH_STRICT, else off].
    #[arg(long)]
    strict: bool,
}

/// Arguments of `recompile`.
#[derive(Args)]
pub struct RecompileArgs {
    /// Extension id.
    extension: String,
    /// Version.
    version: String,
}

fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("template"));
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Runs `publish`.
pub async fn publish(args: PublishArgs, data: &Path) -> crate::Outcome {
    let bundle = std::fs::read(&args.bundle)
        .with_context(|| format!("reading {}", args.bundle.display()))?;
    let sig_path = args.sig.unwrap_or_else(|| sidecar(&args.bundle));
    // A missing sidecar is the publisher's refusal to make, not an I/O error.
    let signature = std::fs::read(&sig_path).ok();
    let mut config = RuntimeConfig::from_env()?;
    config.strict_manifests |= args.strict;
    let publisher = crate::backends::from_env(data).await?.publisher(&config)?;
    let bar = spinner();
    let progress = |stage: Stage| {
        bar.set_message(match stage {
            Stage::Verifying => "verifying signature".to_string(),
            Stage::Unpacking => "unpacking and validating".to_string(),
            Stage::Compiling(t) => format!("compiling for {t}"),
            Stage::Storing => "storing bundle, UI and artifacts".to_string(),
            Stage::Registering => "registering".to_string(),
        })
    };
    let result = publisher
        .publish(&bundle, signature.as_deref(), &progress)
        .await;
    bar.finish_and_clear();
    let published = result.map_err(|e| {
        crate::Failure::refused(anyhow::anyhow!("publish refused: {e}")).code(e.code())
    })?;
    for w in &published.warnings {
        eprintln!("warning: {w}");
    }
    let m = &published.manifest;
    println!(
        "{} {} {} {}",
        m.name,
        m.version,
        published.content_hash,
        match published.outcome {
            Registered::Created => "published",
            Registered::Unchanged => "unchanged",
        }
    );
    for a in &published.artifacts {
        eprintln!("  artifact {} ({} bytes)", a.key.target, a.size);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `recompile`.
pub async fn recompile(args: RecompileArgs, data: &Path) -> crate::Outcome {
    let config = RuntimeConfig::from_env()?;
    let publisher = crate::backends::from_env(data).await?.publisher(&config)?;
    let bar = spinner();
    bar.set_message(format!("compiling {} {}", args.extension, args.version));
    let result = publisher.recompile(&args.extension, &args.version).await;
    bar.finish_and_clear();
    let artifacts = result.map_err(|e| {
        crate::Failure::refused(anyhow::anyhow!("recompile failed: {e}")).code(e.code())
    })?;
    for a in artifacts {
        println!(
            "{} {} {}",
            a.key.target,
            a.key.fingerprint,
            hex_sha(&a.sha256)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn hex_sha(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
