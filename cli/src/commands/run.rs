//! `alga-lambda run`: the quickest way for an extension author to try a handler.
//!
//! Precompiles the component exactly as publish does, then sends one request through
//! the same execute pipeline the Lambda uses, with in-memory storage and secrets.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use clap::Args;
use runtime_core::artifact::ContentHash;
use runtime_core::engine::Target;
use runtime_core::execute::StaticResolver;
use runtime_core::host::HostServices;
use runtime_core::{Executor, RuntimeConfig};
use stores_local::{MemoryBlobStore, MemoryKvStore, MemorySecretStore};

use super::request::{self, Identity, RequestArgs};

/// Arguments of `run`.
#[derive(Args)]
pub struct RunArgs {
    /// The component (`.wasm`), e.g. examples/hello/dist/main.wasm.
    component: PathBuf,
    #[command(flatten)]
    request: RequestArgs,
    /// Grant a capability, e.g. `cap:storage.kv` (repeatable; default: none beyond
    /// the always-granted ones).
    #[arg(long = "grant", value_name = "CAP")]
    grants: Vec<String>,
    /// A secret the handler can read, `key=value` (repeatable).
    #[arg(long = "secret", value_name = "KEY=VALUE")]
    secrets: Vec<String>,
    /// Tenant id.
    #[arg(long, default_value = "dev-tenant")]
    tenant: String,
    /// Extension id.
    #[arg(long, default_value = "dev.extension")]
    extension: String,
    /// Install id (storage is scoped to it).
    #[arg(long, default_value = "dev-install")]
    install: String,
}

/// Runs the command.
pub async fn run(args: RunArgs) -> crate::Outcome {
    let wasm = std::fs::read(&args.component)
        .with_context(|| format!("reading {}", args.component.display()))?;
    let mut secrets = BTreeMap::new();
    for s in &args.secrets {
        let Some((k, v)) = s.split_once('=') else {
            return Err(anyhow!("--secret {s:?}: expected KEY=VALUE").into());
        };
        secrets.insert(k.to_string(), v.to_string());
    }
    let config = RuntimeConfig::from_env()?;
    let blobs = Arc::new(MemoryBlobStore::default());
    let resolver = Arc::new(StaticResolver::default());
    let content = ContentHash::of(&wasm);
    let artifact = runtime_core::publish::precompile_and_store(
        blobs.as_ref(),
        content,
        &wasm,
        &Target::host(),
        &config.engine,
    )
    .await
    .with_context(|| format!("compiling {}", args.component.display()))
    .map_err(|e| {
        crate::Failure::from(e)
            .code("compile_failed")
            .fix("build a WebAssembly component for world runner (npm run build in the extension)")
    })?;
    resolver.register(artifact);
    let executor = Executor::new(
        &config,
        blobs,
        resolver,
        HostServices {
            kv: Arc::new(MemoryKvStore::default()),
            secrets: Arc::new(MemorySecretStore::default()),
        },
    )?;
    let who = Identity {
        tenant: &args.tenant,
        extension: &args.extension,
        install: Some(&args.install),
        content_hash: content.to_string(),
    };
    let req = request::build(&args.request, &who, Some(&args.grants), &secrets)?;
    let outcome = executor.execute(&who.routing(), &req).await;
    Ok(request::print(&outcome, args.request.json)?)
}
