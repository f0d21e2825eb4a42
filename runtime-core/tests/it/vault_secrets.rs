//! `vault-transit:v1` secret envelopes (what Alga's server sends when its secrets
//! live in Vault), decrypted through a stand-in that implements Vault's transit
//! decrypt endpoint as Vault documents it.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use test_support::vault_stub::VaultStub;
use test_support::{Harness, guests, request, test_config};

const TOKEN: &str = "hvs.test-token-4f9a";
const KEY: &str = "alga-ext-secrets";

/// A guest that answers 200 with `secrets.get("k")`, else 400 + the error's index
/// (missing 0, denied 1, expired 2, internal 3).
fn secrets_guest() -> Vec<u8> {
    guests::result_caller(
        "alga:extension/secrets",
        "get",
        "i32 i32",
        "(i32.const 1024) (i32.const 1)",
        4,
        true,
        r#"(data (i32.const 1024) "k")"#,
    )
}

fn harness(vault: Option<&VaultStub>) -> Harness {
    let mut config = test_config();
    if let Some(v) = vault {
        config.vault.addr = Some(v.addr());
        config.vault.token = Some(v.token.clone());
    }
    Harness::with_config(config)
}

fn envelope(ciphertext: &str, key_path: &str, expires_at: Option<&str>) -> serde_json::Value {
    json!({
        "providers": ["cap:secrets.get"],
        "secret_envelope": {
            "ciphertext_b64": ciphertext,
            "algorithm": "vault-transit:v1",
            "key_path": key_path,
            "expires_at": expires_at,
        }
    })
}

#[tokio::test]
async fn a_vault_transit_envelope_decrypts_and_is_cached_within_its_ttl() {
    let vault = VaultStub::start(TOKEN, &[KEY]);
    let h = harness(Some(&vault));
    let (content, _) = h.publish(&secrets_guest()).await;
    let ct = vault.encrypt(KEY, br#"{"k":"from-vault","api_key":"ak"}"#);
    for _ in 0..3 {
        let out = h
            .run(request(&content, "GET", "/", envelope(&ct, KEY, None)))
            .await;
        assert!(out.error.is_none(), "{:?}", out.envelope);
        assert_eq!(
            (out.envelope.status, out.envelope.body()),
            (200, Some(b"from-vault".to_vec()))
        );
    }
    // One decrypt for three requests: the plaintext is reused within the TTL.
    assert_eq!(vault.decrypts(), 1);
    let seen = &vault.server.seen()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, format!("/v1/transit/decrypt/{KEY}"));
    assert_eq!(seen.header("x-vault-token"), Some(TOKEN));
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body, json!({ "ciphertext": ct }));
    let stats = h.executor.vault().expect("a vault client").stats();
    assert_eq!((stats.calls, stats.hits), (1, 2));
}

#[tokio::test]
async fn a_wrong_or_unknown_key_is_secret_decrypt_failed() {
    let vault = VaultStub::start(TOKEN, &[KEY, "another-key"]);
    let h = harness(Some(&vault));
    let (content, _) = h.publish(&secrets_guest()).await;
    // Made with another key: Vault's authentication of the ciphertext fails (400).
    let other = vault.encrypt("another-key", br#"{"k":"x"}"#);
    let unknown = vault.encrypt(KEY, br#"{"k":"x"}"#);
    for (ct, key) in [(&other, KEY), (&unknown, "no-such-key")] {
        let out = h
            .run(request(&content, "GET", "/", envelope(ct, key, None)))
            .await;
        assert_eq!(
            out.error.as_ref().map(|e| e.code()),
            Some("secret_decrypt_failed"),
            "{key}"
        );
        assert_eq!(out.envelope.status, 500);
    }
    // A Vault token Vault refuses (403) is the same refusal, not an outage.
    let mut config = test_config();
    config.vault.addr = Some(vault.addr());
    config.vault.token = Some("hvs.wrong".into());
    let wrong_token = Harness::with_config(config);
    let (content, _) = wrong_token.publish(&secrets_guest()).await;
    let ct = vault.encrypt(KEY, br#"{"k":"x"}"#);
    let out = wrong_token
        .run(request(&content, "GET", "/", envelope(&ct, KEY, None)))
        .await;
    assert_eq!(
        out.error.as_ref().map(|e| e.code()),
        Some("secret_decrypt_failed")
    );
}

#[tokio::test]
async fn vault_down_is_503_and_the_next_request_works() {
    let vault = VaultStub::start(TOKEN, &[KEY]);
    let h = harness(Some(&vault));
    let (content, _) = h.publish(&secrets_guest()).await;
    let ct = vault.encrypt(KEY, br#"{"k":"back"}"#);
    vault.set_sealed(true);
    let out = h
        .run(request(&content, "GET", "/", envelope(&ct, KEY, None)))
        .await;
    assert_eq!(
        out.error.as_ref().map(|e| e.code()),
        Some("backend_unavailable")
    );
    assert_eq!(out.envelope.status, 503);
    vault.set_sealed(false);
    let out = h
        .run(request(&content, "GET", "/", envelope(&ct, KEY, None)))
        .await;
    assert_eq!(
        (out.envelope.status, out.envelope.body()),
        (200, Some(b"back".to_vec()))
    );

    // Nothing listening at the address at all: the same 503.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut config = test_config();
    config.vault.addr = Some(addr);
    config.vault.token = Some(TOKEN.into());
    let nowhere = Harness::with_config(config);
    let (content, _) = nowhere.publish(&secrets_guest()).await;
    let out = nowhere
        .run(request(&content, "GET", "/", envelope(&ct, KEY, None)))
        .await;
    assert_eq!(
        out.error.as_ref().map(|e| e.code()),
        Some("backend_unavailable")
    );
}

#[tokio::test]
async fn an_expired_envelope_is_expired_to_the_guest_without_asking_vault() {
    let vault = VaultStub::start(TOKEN, &[KEY]);
    let h = harness(Some(&vault));
    let (content, _) = h.publish(&secrets_guest()).await;
    let ct = vault.encrypt(KEY, br#"{"k":"old"}"#);
    let out = h
        .run(request(
            &content,
            "GET",
            "/",
            envelope(&ct, KEY, Some("2020-01-01T00:00:00Z")),
        ))
        .await;
    assert!(out.error.is_none(), "{:?}", out.envelope);
    assert_eq!(out.envelope.status, 402, "secret-error::expired");
    assert_eq!(vault.decrypts(), 0);
}

#[tokio::test]
async fn no_vault_or_a_key_path_off_the_transit_api_is_refused_unsent() {
    let vault = VaultStub::start(TOKEN, &[KEY]);
    let ct = vault.encrypt(KEY, br#"{"k":"x"}"#);
    // No Vault configured.
    let h = harness(None);
    let (content, _) = h.publish(&secrets_guest()).await;
    let out = h
        .run(request(&content, "GET", "/", envelope(&ct, KEY, None)))
        .await;
    assert_eq!(
        out.error.as_ref().map(|e| e.code()),
        Some("secret_decrypt_failed")
    );
    // An envelope that would steer our token to another Vault endpoint.
    let h = harness(Some(&vault));
    let (content, _) = h.publish(&secrets_guest()).await;
    for key_path in ["../../sys/seal", "a/b", "%2e%2e", ""] {
        let out = h
            .run(request(&content, "GET", "/", envelope(&ct, key_path, None)))
            .await;
        assert_eq!(
            out.error.as_ref().map(|e| e.code()),
            Some("secret_decrypt_failed"),
            "{key_path:?}"
        );
    }
    let mut bad_mount = envelope(&ct, KEY, None);
    bad_mount["secret_envelope"]["mount"] = json!("transit/../sys");
    let out = h.run(request(&content, "GET", "/", bad_mount)).await;
    assert_eq!(
        out.error.as_ref().map(|e| e.code()),
        Some("secret_decrypt_failed")
    );
    assert_eq!(vault.server.connections(), 0);
}

/// Collects every formatted log line of the runner (all levels).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_vault_token_or_ciphertext_in_any_log_line() {
    // Alone in a process: tracing's callsite interest is process-wide, and other
    // tests' threads (no subscriber) would otherwise hide events from this one.
    if !test_support::in_own_process("vault_secrets::no_vault_token_or_ciphertext_in_any_log_line")
    {
        return;
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let vault = VaultStub::start(TOKEN, &[KEY, "another-key"]);
    let h = harness(Some(&vault));
    let (content, _) = h.publish(&secrets_guest()).await;
    let good = vault.encrypt(KEY, br#"{"k":"plain-secret-value"}"#);
    let wrong = vault.encrypt("another-key", br#"{"k":"plain-secret-value"}"#);
    let mut outcomes = Vec::new();
    outcomes.push(
        h.run(request(&content, "GET", "/", envelope(&good, KEY, None)))
            .await,
    );
    outcomes.push(
        h.run(request(&content, "GET", "/", envelope(&wrong, KEY, None)))
            .await,
    );
    vault.set_sealed(true);
    let fresh = vault.encrypt(KEY, br#"{"k":"plain-secret-value","n":"1"}"#);
    outcomes.push(
        h.run(request(&content, "GET", "/", envelope(&fresh, KEY, None)))
            .await,
    );
    assert_eq!(
        outcomes
            .iter()
            .map(|o| o.envelope.status)
            .collect::<Vec<_>>(),
        [200, 500, 503]
    );

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("secret envelope not opened"), "{text}");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // (The envelopes are left out: this guest answers with the secret on purpose.)
    for o in &outcomes {
        lines.extend(o.logs.iter().map(|l| format!("{l:?}")));
        lines.push(format!("{:?}", o.error));
    }
    let ciphertext_body = |ct: &str| ct.trim_start_matches("vault:v1:").to_string();
    for line in &lines {
        for secret in [
            TOKEN.to_string(),
            ciphertext_body(&good),
            ciphertext_body(&wrong),
            ciphertext_body(&fresh),
            "plain-secret-value".to_string(),
        ] {
            assert!(!line.contains(&secret), "{secret} in {line}");
        }
    }
}
