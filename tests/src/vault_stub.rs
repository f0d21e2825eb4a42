//! A stand-in for Vault's transit engine, written from Vault's API documentation
//! (`POST /v1/{mount}/decrypt/{name}`): it checks `X-Vault-Token`, keeps named keys,
//! answers `{"data": {"plaintext": "<base64>"}}`, refuses an unknown key or a
//! ciphertext made with another key with 400 and `{"errors": [...]}`, a wrong token
//! with 403, and a sealed Vault with 503. Ciphertexts look like Vault's
//! (`vault:v1:<base64>`); the cipher is a keyed stream with a tag, enough for a
//! wrong key to fail authentication as it does in Vault.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::http_server::{Reply, Seen, TestServer};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A running transit stand-in.
#[derive(Clone)]
pub struct VaultStub {
    /// The HTTP server (for its request log).
    pub server: TestServer,
    /// The token it accepts.
    pub token: String,
    /// The transit mount it serves.
    pub mount: String,
    keys: Arc<Mutex<HashMap<String, [u8; 32]>>>,
    sealed: Arc<AtomicBool>,
}

impl VaultStub {
    /// Starts a stand-in with mount `transit` and the named keys.
    pub fn start(token: &str, keys: &[&str]) -> Self {
        let keys: HashMap<String, [u8; 32]> = keys
            .iter()
            .map(|k| (k.to_string(), Sha256::digest(format!("key:{k}")).into()))
            .collect();
        let keys = Arc::new(Mutex::new(keys));
        let sealed = Arc::new(AtomicBool::new(false));
        let (t, m, k, s) = (
            token.to_string(),
            "transit".to_string(),
            keys.clone(),
            sealed.clone(),
        );
        let server = TestServer::start("127.0.0.1", move |seen| answer(seen, &t, &m, &k, &s));
        VaultStub {
            server,
            token: token.into(),
            mount: "transit".into(),
            keys,
            sealed,
        }
    }

    /// `http://addr`.
    pub fn addr(&self) -> String {
        self.server.base()
    }

    /// Seals (503 to everything) or unseals the stand-in.
    pub fn set_sealed(&self, sealed: bool) {
        self.sealed.store(sealed, Ordering::SeqCst);
    }

    /// What Vault's `encrypt` would return for `plaintext` under `key`.
    pub fn encrypt(&self, key: &str, plaintext: &[u8]) -> String {
        let k = self.keys.lock().unwrap()[key];
        format!("vault:v1:{}", B64.encode(seal(&k, plaintext)))
    }

    /// Decrypt calls received so far.
    pub fn decrypts(&self) -> usize {
        self.server
            .seen()
            .iter()
            .filter(|s| s.path.contains("/decrypt/"))
            .count()
    }
}

fn keystream(key: &[u8; 32], len: usize) -> Vec<u8> {
    (0u32..)
        .flat_map(|i| {
            Sha256::new()
                .chain_update(key)
                .chain_update(i.to_be_bytes())
                .finalize()
        })
        .take(len)
        .collect()
}

fn tag(key: &[u8; 32], plaintext: &[u8]) -> [u8; 8] {
    let d = Sha256::new()
        .chain_update(b"tag")
        .chain_update(key)
        .chain_update(plaintext)
        .finalize();
    d[..8].try_into().unwrap()
}

fn seal(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let mut out = tag(key, plaintext).to_vec();
    out.extend(
        plaintext
            .iter()
            .zip(keystream(key, plaintext.len()))
            .map(|(a, b)| a ^ b),
    );
    out
}

fn open(key: &[u8; 32], sealed: &[u8]) -> Option<Vec<u8>> {
    let (t, body) = sealed.split_at_checked(8)?;
    let plain: Vec<u8> = body
        .iter()
        .zip(keystream(key, body.len()))
        .map(|(a, b)| a ^ b)
        .collect();
    (tag(key, &plain) == t).then_some(plain)
}

fn errors(status: u16, message: &str) -> Reply {
    Reply::new(
        status,
        serde_json::json!({ "errors": [message] }).to_string(),
    )
    .header("content-type", "application/json")
}

fn answer(
    seen: &Seen,
    token: &str,
    mount: &str,
    keys: &Mutex<HashMap<String, [u8; 32]>>,
    sealed: &AtomicBool,
) -> Reply {
    if sealed.load(Ordering::SeqCst) {
        return errors(503, "Vault is sealed");
    }
    if seen.header("x-vault-token") != Some(token) {
        return errors(403, "permission denied");
    }
    let prefix = format!("/v1/{mount}/decrypt/");
    let Some(name) = seen.path.strip_prefix(&prefix) else {
        return errors(404, "no handler for route");
    };
    if seen.method != "POST" {
        return errors(405, "unsupported operation");
    }
    let Some(key) = keys.lock().unwrap().get(name).copied() else {
        return errors(400, "encryption key not found");
    };
    let body: serde_json::Value = match serde_json::from_slice(&seen.body) {
        Ok(v) => v,
        Err(_) => return errors(400, "failed to parse JSON input"),
    };
    let Some(ct) = body["ciphertext"].as_str() else {
        return errors(400, "missing ciphertext to decrypt");
    };
    let Some(raw) = ct
        .strip_prefix("vault:v1:")
        .and_then(|b| B64.decode(b).ok())
    else {
        return errors(400, "invalid ciphertext: no prefix");
    };
    match open(&key, &raw) {
        Some(plain) => Reply::new(
            200,
            serde_json::json!({ "data": { "plaintext": B64.encode(plain) } }).to_string(),
        )
        .header("content-type", "application/json"),
        None => errors(400, "cipher: message authentication failed"),
    }
}
