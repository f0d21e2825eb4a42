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

/// Whether `c` must not reach a terminal as it is: control characters (C0, DEL,
/// C1: ANSI escape sequences start with ESC or CSI, CR and BS rewrite what a line
/// seems to say, a newline forges another line), the Unicode line and paragraph
/// separators, and the bidirectional controls that reorder what is displayed.
fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` as one safe terminal line: each [`unprintable`] character is shown the
/// way Rust escapes it (`\n`, `\r`, `\t`, `\u{1b}`); everything else is kept.
/// Guest log lines and error texts are untrusted.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(unprintable) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unprintable(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// Prints the outcome; exit code 0 when the handler answered, 1 on an execution error.
/// Log lines, the error and headers are escaped ([`one_line`]); the body is printed
/// as it is, like curl does, since it is the output asked for.
pub fn print(outcome: &Outcome, json: bool) -> anyhow::Result<ExitCode> {
    for line in &outcome.logs {
        eprintln!(
            "[{:?} {}] {}",
            line.level,
            line.source,
            one_line(&line.message)
        );
    }
    let env = &outcome.envelope;
    if json {
        println!("{}", serde_json::to_string_pretty(env)?);
    } else if let Some(err) = &env.error {
        // `code: message`, as the envelope carries it.
        let (code, message) = match err.split_once(':') {
            Some((c, m)) if !c.is_empty() && !c.contains(' ') => (c.trim(), m.trim()),
            _ => ("execute_failed", err.as_str()),
        };
        let fix = crate::errors::fix_for(code).unwrap_or("the guest's log lines above may say why");
        eprintln!(
            "error[{}]: {} (status {}) — {fix}",
            one_line(code),
            one_line(message),
            env.status
        );
    } else {
        println!("HTTP {}", env.status);
        for (k, v) in env.headers.iter().flatten() {
            println!("{}: {}", one_line(k), one_line(v));
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

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn control_and_bidi_characters_are_escaped_on_one_line() {
        assert_eq!(
            one_line("plain text, \"quotes\" and \\ stay"),
            "plain text, \"quotes\" and \\ stay"
        );
        assert_eq!(one_line("\x1b[2J\rfake"), "\\u{1b}[2J\\rfake");
        assert_eq!(
            one_line("a\nb\tc\0d\x7f\u{9b}e"),
            "a\\nb\\tc\\0d\\u{7f}\\u{9b}e"
        );
        assert_eq!(
            one_line("x\u{202e}y\u{2066}z\u{2028}"),
            "x\\u{202e}y\\u{2066}z\\u{2028}"
        );
        assert_eq!(one_line("héllo ✓"), "héllo ✓");
    }
}
