//! The HTTP request flags shared by `run` and `invoke`, and how a response is printed.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::Args;
use runtime_core::Outcome;
use runtime_core::execute::ExecuteRequest;

/// Method, path, body and headers of the request to send.
#[derive(Args)]
pub struct RequestArgs {
    /// HTTP method.
    #[arg(default_value = "GET")]
    pub method: String,
    /// Path (with an optional query string).
    #[arg(default_value = "/")]
    pub path: String,
    /// Request body (text); `@FILE` reads a file.
    #[arg(long)]
    pub body: Option<String>,
    /// A request header, `name:value` (repeatable).
    #[arg(long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// Deadline in milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Linear memory limit in MiB.
    #[arg(long)]
    pub memory_mb: Option<u64>,
    /// Print the `/v1/execute` JSON envelope instead of the HTTP response.
    #[arg(long)]
    pub json: bool,
}

/// Who the request runs as.
pub struct Identity<'a> {
    /// Tenant.
    pub tenant: &'a str,
    /// Extension.
    pub extension: &'a str,
    /// Install id, if known.
    pub install: Option<&'a str>,
    /// The bundle's content hash.
    pub content_hash: String,
}

impl Identity<'_> {
    /// The routing headers a caller of `/v1/execute` would send.
    pub fn routing(&self) -> runtime_core::RoutingHeaders {
        runtime_core::RoutingHeaders {
            tenant: Some(self.tenant.to_string()),
            extension: Some(self.extension.to_string()),
            request_id: None,
        }
    }
}

/// Builds the `/v1/execute` request.
pub fn build(
    args: &RequestArgs,
    who: &Identity<'_>,
    grants: Option<&[String]>,
    secrets: &BTreeMap<String, String>,
) -> anyhow::Result<ExecuteRequest> {
    let mut headers = BTreeMap::new();
    for h in &args.headers {
        let Some((k, v)) = h.split_once(':') else {
            bail!("--header {h:?}: expected NAME:VALUE");
        };
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
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
            "tenant_id": who.tenant,
            "extension_id": who.extension,
            "install_id": who.install,
            "content_hash": who.content_hash,
        },
        "http": {
            "method": args.method.to_ascii_uppercase(),
            "path": args.path,
            "headers": headers,
            "body_b64": body.as_deref().map(b64),
        },
        "limits": { "timeout_ms": args.timeout_ms, "memory_mb": args.memory_mb },
    });
    if let Some(g) = grants {
        req["providers"] = serde_json::json!(g);
    }
    if !secrets.is_empty() {
        req["secret_envelope"] = serde_json::json!({
            "ciphertext_b64": b64(&serde_json::to_vec(secrets)?),
            "algorithm": "inline/base64",
        });
    }
    Ok(ExecuteRequest::from_json(&serde_json::to_vec(&req)?)?)
}

/// Prints the outcome; exit code 0 when the handler answered, 1 on an execution error.
pub fn print(outcome: &Outcome, json: bool) -> anyhow::Result<ExitCode> {
    for line in &outcome.logs {
        eprintln!("[{:?} {}] {}", line.level, line.source, line.message);
    }
    let env = &outcome.envelope;
    if json {
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
