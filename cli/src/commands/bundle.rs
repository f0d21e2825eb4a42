//! `alga-lambda pack`, `sign` and `verify`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use runtime_core::artifact::ContentHash;
use runtime_core::bundle::archive::{self, ArchiveLimits};
use runtime_core::bundle::signature::{Signature, SigningKey};

/// Arguments of `pack`.
#[derive(Args)]
pub struct PackArgs {
    /// The extension directory (manifest.json, dist/, ui/).
    dir: PathBuf,
    /// Output file.
    #[arg(long, default_value = "bundle.tar.zst")]
    out: PathBuf,
}

/// Arguments of `sign`.
#[derive(Args)]
pub struct SignArgs {
    /// The bundle.
    bundle: PathBuf,
    /// The private key file (from `keygen`).
    #[arg(long)]
    key: PathBuf,
    /// Signature file [default: BUNDLE.sig.json].
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Arguments of `verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// The bundle.
    bundle: PathBuf,
    /// Signature file [default: BUNDLE.sig.json].
    #[arg(long)]
    sig: Option<PathBuf>,
}

/// The signature sidecar next to a bundle.
pub fn sidecar(bundle: &Path) -> PathBuf {
    let mut name = bundle.as_os_str().to_owned();
    name.push(".sig.json");
    PathBuf::from(name)
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Runs `pack`: prints the content hash.
pub fn pack(args: PackArgs) -> crate::Outcome {
    let bytes = archive::pack_dir(&args.dir, &ArchiveLimits::default())
        .map_err(|e| crate::Failure::refused(anyhow::anyhow!("{e}")).code(e.code()))?;
    std::fs::write(&args.out, &bytes).with_context(|| format!("writing {}", args.out.display()))?;
    println!("{}", ContentHash::of(&bytes));
    eprintln!("{} ({} bytes)", args.out.display(), bytes.len());
    Ok(ExitCode::SUCCESS)
}

/// Runs `sign`.
pub fn sign(args: SignArgs) -> crate::Outcome {
    let key = SigningKey::from_json(&read(&args.key)?)
        .with_context(|| format!("reading key {}", args.key.display()))?;
    let content = ContentHash::of(&read(&args.bundle)?);
    let sig = Signature::sign(&content, &key);
    let out = args.out.unwrap_or_else(|| sidecar(&args.bundle));
    std::fs::write(&out, sig.to_json()).with_context(|| format!("writing {}", out.display()))?;
    println!("{content}");
    eprintln!("signed with key {} → {}", sig.key_id, out.display());
    Ok(ExitCode::SUCCESS)
}

/// Runs `verify`: exit 0 when the signature verifies against the trust bundle.
pub fn verify(args: VerifyArgs, data: &Path) -> crate::Outcome {
    let trust = crate::backends::local(data)?.trust()?;
    let content = ContentHash::of(&read(&args.bundle)?);
    let sig_path = args.sig.unwrap_or_else(|| sidecar(&args.bundle));
    let sig = Signature::from_json(&read(&sig_path)?)
        .map_err(|e| crate::Failure::refused(anyhow::anyhow!("{e}")).code(e.code()))?;
    trust.verify(&content, &sig).map_err(|e| {
        crate::Failure::refused(anyhow::anyhow!("verification failed: {e}")).code(e.code())
    })?;
    println!("ok: {content} signed by trusted key {}", sig.key_id);
    Ok(ExitCode::SUCCESS)
}
