//! Getting an extension directory running locally: build it (npm, when it has a
//! package.json), pack, sign with the data directory's dev key, publish, install
//! for the dev tenant. Each step is a runtime-core call; only the npm build is ours.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, bail};
use runtime_core::artifact::ContentHash;
use runtime_core::backends::Backends;
use runtime_core::bundle::archive::{self, ArchiveLimits};
use runtime_core::bundle::signature::{Signature, SigningKey};
use runtime_core::bundle::trust::TrustBundle;
use runtime_core::manifest::Manifest;
use runtime_core::publish::{PublishError, Publisher};
use runtime_core::store::{InstallRecord, InstallRequest};

/// File name of the dev signing key in the data directory.
const DEV_KEY: &str = "dev-signing-key.json";

/// What is running after a publish.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// The manifest as published.
    pub manifest: Manifest,
    /// The install serving requests.
    pub install: InstallRecord,
}

/// Builds the extension with npm when it has a `package.json` and its component
/// is missing or older than its sources.
pub fn build(dir: &Path) -> anyhow::Result<()> {
    let component = dir.join("dist/main.wasm");
    if !dir.join("package.json").is_file() {
        if !component.is_file() {
            bail!(
                "{} has no dist/main.wasm and no package.json to build it",
                dir.display()
            );
        }
        return Ok(());
    }
    let built_at = std::fs::metadata(&component)
        .and_then(|m| m.modified())
        .ok();
    let stale = match built_at {
        None => true,
        Some(t) => newest_source(dir).is_some_and(|s| s > t),
    };
    if !stale {
        return Ok(());
    }
    if !dir.join("node_modules").is_dir() {
        npm(
            dir,
            &["install", "--no-audit", "--no-fund", "--loglevel=error"],
        )?;
    }
    npm(dir, &["run", "--silent", "build"])?;
    if !component.is_file() {
        bail!(
            "`npm run build` in {} did not produce dist/main.wasm",
            dir.display()
        );
    }
    Ok(())
}

fn npm(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    eprintln!("up: npm {} (in {})", args.join(" "), dir.display());
    let status = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .status()
        .context("running npm (is Node.js installed?)")?;
    if !status.success() {
        bail!("npm {} failed in {}", args.join(" "), dir.display());
    }
    Ok(())
}

/// The newest modification time among the files a build reads.
pub fn newest_source(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for name in [
        "src",
        "package.json",
        "manifest.json",
        "ui",
        "tsconfig.json",
        "bundle.config.js",
    ] {
        visit(&dir.join(name), &mut |t| {
            newest = Some(newest.map_or(t, |n: SystemTime| n.max(t)));
        });
    }
    newest
}

fn visit(path: &Path, f: &mut impl FnMut(SystemTime)) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.is_file() {
        if let Ok(t) = meta.modified() {
            f(t);
        }
    } else if meta.is_dir()
        && let Ok(entries) = std::fs::read_dir(path)
    {
        for e in entries.flatten() {
            if e.file_name() != "node_modules" {
                visit(&e.path(), f);
            }
        }
    }
}

/// The data directory's dev key, created (and trusted) on first use.
pub fn dev_key(data: &Path) -> anyhow::Result<SigningKey> {
    let path = data.join(DEV_KEY);
    let key = match std::fs::read(&path) {
        Ok(bytes) => SigningKey::from_json(&bytes).context("reading the dev key")?,
        Err(_) => {
            let key = SigningKey::generate("alga-dev")?;
            std::fs::create_dir_all(data)?;
            stores_local::write_atomic(&path, key.to_json().as_bytes())?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
            key
        }
    };
    let trust_path = data.join("trust.json");
    let trust = match std::fs::read(&trust_path) {
        Ok(b) => TrustBundle::from_json(&b).context("reading trust.json")?,
        Err(_) => TrustBundle::default(),
    };
    if trust.key(key.key_id()).is_none() {
        stores_local::write_atomic(
            &trust_path,
            trust.with_key(key.public()).to_json().as_bytes(),
        )?;
    }
    Ok(key)
}

/// Packs, signs, publishes and installs `dir` for `tenant`. When the manifest's
/// version is already published with other bytes (an edited extension), it is
/// published as `<version>-dev.<hash>` instead, so the edit loop never conflicts.
pub async fn deploy(
    dir: &Path,
    data: &Path,
    backends: &Backends,
    publisher: &Publisher,
    key: &SigningKey,
    tenant: &str,
    grants: Option<&[String]>,
) -> anyhow::Result<Deployed> {
    let limits = ArchiveLimits::default();
    let bundle =
        archive::pack_dir(dir, &limits).with_context(|| format!("packing {}", dir.display()))?;
    let published = match publish(publisher, key, &bundle).await {
        Err(PublishError::VersionConflict { version, .. }) => {
            let dev = format!("{version}-dev.{}", &ContentHash::of(&bundle).hex()[..12]);
            let staged = stage_with_version(dir, data, &dev)?;
            let bundle = archive::pack_dir(&staged, &limits)?;
            publish(publisher, key, &bundle).await?
        }
        other => other?,
    };
    for w in &published.warnings {
        eprintln!("warning: {w}");
    }
    let grants = match grants {
        Some(g) => g.to_vec(),
        None => published
            .manifest
            .capabilities
            .iter()
            .map(|c| c.to_string())
            .collect(),
    };
    let install = backends
        .registry
        .install(&InstallRequest {
            tenant: tenant.to_string(),
            extension_id: published.manifest.name.clone(),
            version: Some(published.manifest.version.to_string()),
            grants,
            config: Default::default(),
            ..Default::default()
        })
        .await?;
    // The manifest's schedules follow the installed version.
    let report = runtime_core::schedule::sync_for_install(
        backends.schedules.as_ref(),
        &install,
        &published.manifest,
    )
    .await?;
    crate::commands::installs::report_schedules(&report);
    Ok(Deployed {
        manifest: published.manifest,
        install,
    })
}

async fn publish(
    publisher: &Publisher,
    key: &SigningKey,
    bundle: &[u8],
) -> Result<runtime_core::publish::Published, PublishError> {
    let signature = Signature::sign(&ContentHash::of(bundle), key);
    publisher
        .publish(bundle, Some(signature.to_json().as_bytes()), &|_| {})
        .await
}

/// Copies the packable parts of `dir` into `<data>/up-staging` with the
/// manifest's version replaced.
fn stage_with_version(dir: &Path, data: &Path, version: &str) -> anyhow::Result<PathBuf> {
    let staged = data.join("up-staging");
    let _ = std::fs::remove_dir_all(&staged);
    std::fs::create_dir_all(&staged)?;
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json"))?)?;
    manifest["version"] = serde_json::Value::String(version.to_string());
    std::fs::write(
        staged.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    for name in ["dist", "ui", "wit", "sbom.spdx.json"] {
        let from = dir.join(name);
        if from.exists() {
            copy_tree(&from, &staged.join(name))?;
        }
    }
    Ok(staged)
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    if from.is_file() {
        std::fs::copy(from, to)?;
        return Ok(());
    }
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        copy_tree(&e.path(), &to.join(e.file_name()))?;
    }
    Ok(())
}
