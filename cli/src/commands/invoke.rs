//! `alga-lambda invoke`: one request against a tenant's install, resolved through the
//! registry exactly as the execute Lambda does.

use std::collections::BTreeMap;
use std::path::Path;

use clap::Args;
use runtime_core::RuntimeConfig;

use super::request::{self, Identity, RequestArgs};

/// Arguments of `invoke`.
#[derive(Args)]
pub struct InvokeArgs {
    /// Tenant id.
    #[arg(long)]
    tenant: String,
    /// Extension id.
    #[arg(long)]
    extension: String,
    #[command(flatten)]
    request: RequestArgs,
}

/// Runs `invoke`.
pub async fn invoke(args: InvokeArgs, data: &Path) -> crate::Outcome {
    let config = RuntimeConfig::from_env()?;
    let backends = crate::backends::from_env(data).await?;
    let install = backends
        .registry
        .get_install(&args.tenant, &args.extension)
        .await?
        .ok_or_else(|| {
            crate::Failure::refused(anyhow::anyhow!(
                "tenant {} has no install of {}",
                args.tenant,
                args.extension
            ))
            .code("not_installed")
        })?;
    let executor = backends.executor(&config)?;
    let who = Identity {
        tenant: &args.tenant,
        extension: &args.extension,
        install: Some(&install.install_id),
        content_hash: install.content_hash.to_string(),
    };
    let req = request::build(&args.request, &who, None, &BTreeMap::new())?;
    let outcome = executor.execute(&who.routing(), &req).await;
    Ok(request::print(&outcome, args.request.json)?)
}
