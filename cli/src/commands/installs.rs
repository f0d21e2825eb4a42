//! `alga-lambda install`, `uninstall`, `enable`, `disable`, `grant` and `list`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use clap::Args;
use runtime_core::store::{InstallRecord, InstallRequest, RegistryError};

/// Tenant and extension of an install.
#[derive(Args)]
pub struct TargetArgs {
    /// Extension id.
    extension: String,
    /// Tenant id.
    #[arg(long)]
    tenant: String,
}

/// Arguments of `install`.
#[derive(Args)]
pub struct InstallArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Version [default: the newest published].
    #[arg(long)]
    version: Option<String>,
    /// Grant a capability (repeatable). Effective grants are the manifest's
    /// capabilities ∩ these.
    #[arg(long = "grant", value_name = "CAP")]
    grants: Vec<String>,
    /// Grant every capability the manifest requests.
    #[arg(long)]
    grant_requested: bool,
    /// A configuration value, `key=value` (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// The host app's id of the extension (Alga's registry UUID): `/v1/execute`
    /// and ext-ui then accept it in place of the extension's name [default: keep].
    #[arg(long, value_name = "ID")]
    host_extension_id: Option<String>,
    /// The host app's id of this install (Alga's install UUID) [default: keep].
    #[arg(long, value_name = "ID")]
    host_install_id: Option<String>,
}

/// Arguments of `grant`.
#[derive(Args)]
pub struct GrantArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The capabilities to grant (replaces the current grants).
    #[arg(long = "grant", value_name = "CAP")]
    grants: Vec<String>,
}

/// Arguments of `list`.
#[derive(Args)]
pub struct ListArgs {
    /// List this tenant's installs instead of published extensions.
    #[arg(long)]
    tenant: Option<String>,
}

fn refused(e: RegistryError) -> crate::Failure {
    match e {
        RegistryError::Store(_) => crate::Failure::from(anyhow::Error::new(e)),
        e => crate::Failure::refused(e),
    }
}

fn print_install(i: &InstallRecord) {
    let grants: Vec<_> = i.granted.iter().map(|c| c.as_str()).collect();
    println!(
        "{} {} {} {} {} {}",
        i.install_id,
        i.extension_id,
        i.version,
        i.content_hash,
        if i.enabled { "enabled" } else { "disabled" },
        grants.join(",")
    );
    if i.host_extension_id.is_some() || i.host_install_id.is_some() {
        println!(
            "host ids: extension {} install {}",
            i.host_extension_id.as_deref().unwrap_or("-"),
            i.host_install_id.as_deref().unwrap_or("-")
        );
    }
}

/// Runs `install`.
pub async fn install(args: InstallArgs, data: &Path) -> crate::Outcome {
    let backends = crate::backends::from_env(data).await?;
    let registry = backends.registry.clone();
    let mut config = BTreeMap::new();
    for kv in &args.config {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(anyhow::anyhow!("--config {kv:?}: expected KEY=VALUE").into());
        };
        config.insert(k.to_string(), v.to_string());
    }
    let mut grants = args.grants.clone();
    if args.grant_requested {
        grants.extend(
            runtime_core::Capability::ALL
                .iter()
                .map(|c| c.as_str().to_string()),
        );
    }
    let record = registry
        .install(&InstallRequest {
            tenant: args.target.tenant,
            extension_id: args.target.extension,
            version: args.version,
            grants,
            config,
            host_extension_id: args.host_extension_id,
            host_install_id: args.host_install_id,
        })
        .await
        .map_err(refused)?;
    print_install(&record);
    let report = runtime_core::schedule::sync_installed(
        registry.as_ref(),
        backends.schedules.as_ref(),
        &record,
    )
    .await
    .map_err(anyhow::Error::new)?;
    report_schedules(&report);
    Ok(ExitCode::SUCCESS)
}

/// Prints what the manifest's schedules became.
pub fn report_schedules(report: &runtime_core::schedule::SyncReport) {
    if !report.created.is_empty() {
        println!("schedules: {} from the manifest", report.created.len());
    }
    for (i, why) in &report.refused {
        eprintln!("warning: manifest schedules[{i}] not created: {why}");
    }
}

/// Runs `uninstall` (the install's schedules go with it).
pub async fn uninstall(args: TargetArgs, data: &Path) -> crate::Outcome {
    let backends = crate::backends::from_env(data).await?;
    let registry = backends.registry.clone();
    let current = registry
        .get_install(&args.tenant, &args.extension)
        .await
        .map_err(refused)?;
    registry
        .uninstall(&args.tenant, &args.extension)
        .await
        .map_err(refused)?;
    if let Some(install) = current {
        runtime_core::schedule::remove_for_install(
            backends.schedules.as_ref(),
            &install.tenant,
            runtime_core::schedule::install_key(backends.schedules.as_ref(), &install),
        )
        .await
        .map_err(anyhow::Error::new)?;
    }
    println!("uninstalled {} for {}", args.extension, args.tenant);
    Ok(ExitCode::SUCCESS)
}

/// Runs `enable` / `disable`.
pub async fn set_enabled(args: TargetArgs, data: &Path, enabled: bool) -> crate::Outcome {
    let registry = crate::backends::from_env(data).await?.registry;
    let record = registry
        .set_enabled(&args.tenant, &args.extension, enabled)
        .await
        .map_err(refused)?;
    print_install(&record);
    Ok(ExitCode::SUCCESS)
}

/// Runs `grant`: re-installs the same version and config with new grants.
pub async fn grant(args: GrantArgs, data: &Path) -> crate::Outcome {
    let registry = crate::backends::from_env(data).await?.registry;
    let current = registry
        .get_install(&args.target.tenant, &args.target.extension)
        .await
        .map_err(refused)?
        .ok_or_else(|| {
            crate::Failure::refused(anyhow::anyhow!(
                "{} is not installed for {}",
                args.target.extension,
                args.target.tenant
            ))
        })?;
    let record = registry
        .install(&InstallRequest {
            tenant: current.tenant,
            extension_id: current.extension_id,
            version: Some(current.version),
            grants: args.grants,
            config: current.config,
            ..Default::default()
        })
        .await
        .map_err(refused)?;
    print_install(&record);
    Ok(ExitCode::SUCCESS)
}

/// Runs `list`.
pub async fn list(args: ListArgs, data: &Path) -> crate::Outcome {
    let registry = crate::backends::from_env(data).await?.registry;
    match args.tenant {
        Some(tenant) => {
            for i in registry.list_installs(&tenant).await.map_err(refused)? {
                print_install(&i);
            }
        }
        None => {
            for ext in registry.list_extensions().await.map_err(refused)? {
                for v in registry.list_versions(&ext).await.map_err(refused)? {
                    println!("{} {} {}", v.extension_id, v.version, v.content_hash);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
