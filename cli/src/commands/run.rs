//! `alga-lambda run`: the quickest way for an extension author to try a handler.
//!
//! Precompiles the component exactly as publish does, then sends one request through
//! the same execute pipeline the Lambda uses, with in-memory storage and secrets.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::Args;
use runtime_core::artifact::{self, ContentHash};
use runtime_core::engine::Target;
use runtime_core::execute::{ExecuteRequest, RoutingHeaders, StaticResolver};
use runtime_core::host::HostServices;
use runtime_core::store::local::{MemoryBlobStore, MemoryKvStore, MemorySecretStore};
use runtime_core::{Executor, RuntimeConfig};

/// Arguments of `run`.
#[derive(Args)]
pub struct RunArgs {
    /// The component (`.wasm`), e.g. examples/hello/dist/main.wasm.
    component: PathBuf,
    /// HTTP method.
    #[arg(default_value = "GET")]
    method: String,
    /// Path (with an optional query string).
    #[arg(default_value = "/")]
    path: String,
    /// Request body (text); `@FILE` reads a file.
    #[arg(long)]
    body: Option<String>,
    /// A request header, `name:value` (repeatable).
    #[arg(long = "header", value_name = "NAME:VALUE")]
    headers: Vec<String>,
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
    /// Deadline in milliseconds.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Linear memory limit in MiB.
    #[arg(long)]
    memory_mb: Option<u64>,
    /// Print the `/v1/execute` JSON envelope instead of the HTTP response.
    #[arg(long)]
    json: bool,
}

/// Runs the command; exit code 0 when the handler answered, 1 on an execution error.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let wasm = std::fs::read(&args.component)
        .with_context(|| format!("reading {}", args.component.display()))?;
    let config = RuntimeConfig::from_env()?;
    let blobs = Arc::new(MemoryBlobStore::default());
    let resolver = Arc::new(StaticResolver::default());
    let content = ContentHash::of(&wasm);
    let artifact = artifact::precompile_and_store(
        blobs.as_ref(),
        content,
        &wasm,
        &Target::host(),
        &config.engine,
    )
    .await
    .with_context(|| format!("compiling {}", args.component.display()))?;
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

    let request = build_request(&args, &content)?;
    let routing = RoutingHeaders {
        tenant: Some(args.tenant.clone()),
        extension: Some(args.extension.clone()),
        request_id: None,
    };
    let outcome = executor.execute(&routing, &request).await;
    for line in &outcome.logs {
        eprintln!("[{:?} {}] {}", line.level, line.source, line.message);
    }
    let env = &outcome.envelope;
    if args.json {
        println!("{}", serde_json::to_string_pretty(env)?);
    } else if let Some(err) = &env.error {
        eprintln!("error ({}): {err}", env.status);
    } else {
        println!("HTTP {}", env.status);
        for (k, v) in env.headers.iter().flatten() {
            println!("{k}: {v}");
        }
        println!();
        if let Some(body) = env.body() {
            println!("{}", String::from_utf8_lossy(&body));
        }
    }
    Ok(if env.error.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn build_request(args: &RunArgs, content: &ContentHash) -> anyhow::Result<ExecuteRequest> {
    let mut headers = BTreeMap::new();
    for h in &args.headers {
        let Some((k, v)) = h.split_once(':') else {
            bail!("--header {h:?}: expected NAME:VALUE");
        };
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let mut secrets = BTreeMap::new();
    for s in &args.secrets {
        let Some((k, v)) = s.split_once('=') else {
            bail!("--secret {s:?}: expected KEY=VALUE");
        };
        secrets.insert(k.to_string(), v.to_string());
    }
    let body = match args.body.as_deref() {
        Some(b) => Some(match b.strip_prefix('@') {
            Some(path) => std::fs::read(path).with_context(|| format!("reading {path}"))?,
            None => b.as_bytes().to_vec(),
        }),
        None => None,
    };
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut req = serde_json::json!({
        "context": {
            "tenant_id": args.tenant,
            "extension_id": args.extension,
            "install_id": args.install,
            "content_hash": content.to_string(),
        },
        "http": {
            "method": args.method.to_ascii_uppercase(),
            "path": args.path,
            "headers": headers,
            "body_b64": body.as_deref().map(b64),
        },
        "limits": { "timeout_ms": args.timeout_ms, "memory_mb": args.memory_mb },
        "providers": args.grants,
    });
    if !secrets.is_empty() {
        req["secret_envelope"] = serde_json::json!({
            "ciphertext_b64": b64(&serde_json::to_vec(&secrets)?),
            "algorithm": "inline/base64",
        });
    }
    Ok(ExecuteRequest::from_json(&serde_json::to_vec(&req)?)?)
}
