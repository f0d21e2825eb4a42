//! `alga-lambda keygen`: an ed25519 signing key, optionally trusted by the local data
//! directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use runtime_core::bundle::signature::SigningKey;
use runtime_core::bundle::trust::TrustBundle;

/// Arguments of `keygen`.
#[derive(Args)]
pub struct KeygenArgs {
    /// Key id (named in every signature).
    #[arg(long, default_value = "dev")]
    key_id: String,
    /// Where to write the private key file (mode 0600).
    #[arg(long, default_value = "alga-signing-key.json")]
    out: PathBuf,
    /// Also add the public key to the data directory's trust bundle.
    #[arg(long)]
    trust: bool,
}

/// Runs `keygen`.
pub fn keygen(args: KeygenArgs, data: &Path) -> crate::Outcome {
    if args.out.exists() {
        return Err(
            anyhow::anyhow!("{} exists; refusing to overwrite a key", args.out.display()).into(),
        );
    }
    let key = SigningKey::generate(&args.key_id)?;
    write_private(&args.out, key.to_json().as_bytes())?;
    println!("{}", key.public().to_json());
    eprintln!("private key written to {}", args.out.display());
    if args.trust {
        let path = crate::backends::local(data)?
            .trust_path()
            .expect("a local data directory has a trust file");
        let mut bundle = match std::fs::read(&path) {
            Ok(b) => {
                TrustBundle::from_json(&b).with_context(|| format!("reading {}", path.display()))?
            }
            Err(_) => TrustBundle::default(),
        };
        bundle = bundle.with_key(key.public());
        stores_local::write_atomic(&path, bundle.to_json().as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("key {} trusted in {}", args.key_id, path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}
