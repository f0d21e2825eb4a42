//! `alga-lambda emit TOPIC JSON`: posts an event to a running `up`'s local bus,
//! which delivers it to the installs subscribed to TOPIC in the tenant.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;

use crate::{Failure, Outcome};

/// Arguments of `emit`.
#[derive(Args)]
pub struct EmitArgs {
    /// The topic, e.g. `ticket.created`.
    topic: String,
    /// The event data: a JSON object (default `{}`).
    #[arg(default_value = "{}", value_name = "JSON")]
    payload: String,
    /// Tenant of the event (default: the tenant `up` runs as).
    #[arg(long)]
    tenant: Option<String>,
    /// Event id (default: a fresh one); the same id is delivered once per install.
    #[arg(long)]
    id: Option<String>,
    /// Where `up` listens.
    #[arg(long, default_value = "http://127.0.0.1:8787")]
    url: String,
}

/// Longest wait for `up` to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read.
const ANSWER_MAX: usize = 64 * 1024;

/// Runs `emit`.
pub async fn emit(args: EmitArgs) -> Outcome {
    let data: serde_json::Value = serde_json::from_str(&args.payload)
        .map_err(|e| Failure::refused(anyhow::anyhow!("the event data is not JSON: {e}")))?;
    if !data.is_object() {
        return Err(Failure::refused(anyhow::anyhow!(
            "the event data must be a JSON object"
        )));
    }
    let mut body = serde_json::json!({ "topic": args.topic, "data": data });
    if let Some(t) = &args.tenant {
        body["tenant_id"] = t.clone().into();
    }
    if let Some(id) = &args.id {
        body["id"] = id.clone().into();
    }
    let authority = args
        .url
        .strip_prefix("http://")
        .context("--url must be http://HOST:PORT (up serves plain HTTP on loopback)")?
        .trim_end_matches('/')
        .to_string();
    let (status, answer) = tokio::time::timeout(TIMEOUT, post(&authority, body.to_string()))
        .await
        .with_context(|| format!("no answer from {} within {TIMEOUT:?}", args.url))??;
    let text = String::from_utf8_lossy(&answer);
    if status == 202 {
        let v: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
        println!(
            "queued event {} on {} for tenant {}",
            v["event_id"].as_str().unwrap_or("?"),
            v["topic"].as_str().unwrap_or("?"),
            v["tenant_id"].as_str().unwrap_or("?")
        );
        Ok(std::process::ExitCode::SUCCESS)
    } else if (400..500).contains(&status) {
        let v: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
        let code = v["error"].as_str().unwrap_or("refused").to_string();
        let message = v["message"]
            .as_str()
            .map(String::from)
            .unwrap_or(text.into_owned());
        Err(Failure::refused(anyhow::anyhow!(
            "up refused the event ({status}): {message}"
        ))
        .code(code))
    } else {
        Err(anyhow::anyhow!("up answered {status}: {text}").into())
    }
}

async fn post(authority: &str, body: String) -> anyhow::Result<(u16, Vec<u8>)> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority} (is `alga-lambda up` running?)"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let request = hyper::Request::post(crate::commands::up::EVENTS_PATH)
        .header("host", authority)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let bytes = Limited::new(response.into_body(), ANSWER_MAX)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
        .to_bytes();
    Ok((status, bytes.to_vec()))
}
