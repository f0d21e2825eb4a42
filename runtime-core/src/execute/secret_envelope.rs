//! Decoding the request's inline `secret_envelope` into the install's secrets.
//!
//! `inline/base64` (also the default when `algorithm` is absent): standard base64
//! of a flat JSON object of strings, as the Alga server writes it. `expires_at`
//! (RFC 3339, `Z` or an offset) is honoured: after it every `secrets.get`
//! answers `expired`. This host's clock decides, with no leeway: an issuer's
//! clock skewed by S moves the expiry we see by S.
//! `vault-transit:v1` (Alga's envelope when it keeps secrets in Vault): the
//! ciphertext is Vault's, `key_path` names the transit key, `mount` optionally
//! the mount; Vault's plaintext is the same base64 JSON object. An envelope past
//! its `expires_at` is not sent to Vault at all: the guest sees `expired`.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine as _;

use super::request::SecretEnvelope;
use crate::store::SecretBundle;
use crate::vault::{VaultError, VaultTransit};

/// Why an envelope could not be decoded (logged; the envelope says `secret_decrypt_failed`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The algorithm is not one this runner decodes.
    #[error("unsupported secret envelope algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// Not valid base64.
    #[error("secret envelope is not valid base64")]
    Base64,
    /// Not a JSON object of strings.
    #[error("secret envelope is not a JSON object of strings")]
    Json,
    /// `expires_at` is not an RFC 3339 timestamp.
    #[error("secret envelope expires_at {0:?} is not an RFC 3339 timestamp")]
    ExpiresAt(String),
    /// A `vault-transit` envelope, and no Vault is configured.
    #[error("a vault-transit secret envelope, and no Vault is configured (ALGA_VAULT_ADDR)")]
    VaultNotConfigured,
    /// A `vault-transit` envelope without `key_path`.
    #[error("a vault-transit secret envelope needs key_path")]
    NoKeyPath,
    /// Vault gave no plaintext.
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl EnvelopeError {
    /// Whether the next request may succeed without a change to the envelope
    /// (Vault unavailable): a 503 `backend_unavailable`, not `secret_decrypt_failed`.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, EnvelopeError::Vault(VaultError::Unavailable(_)))
    }
}

/// Opens an envelope: inline ones in place, `vault-transit` ones through `vault`.
pub async fn open(
    env: &SecretEnvelope,
    vault: Option<&VaultTransit>,
) -> Result<SecretBundle, EnvelopeError> {
    let algorithm = algorithm_of(env);
    if !algorithm.starts_with("vault-transit") {
        return decode(env);
    }
    if algorithm != "vault-transit:v1" && algorithm != "vault-transit" {
        return Err(EnvelopeError::UnsupportedAlgorithm(algorithm));
    }
    let expires_at = expires_at(env)?;
    let raw = env.ciphertext_b64.trim();
    if raw.is_empty() || expires_at.is_some_and(|t| t <= SystemTime::now()) {
        return Ok(SecretBundle {
            values: BTreeMap::new(),
            expires_at,
        });
    }
    let vault = vault.ok_or(EnvelopeError::VaultNotConfigured)?;
    let key = (env.key_path.as_deref())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or(EnvelopeError::NoKeyPath)?;
    let plaintext = vault
        .decrypt(env.mount.as_deref(), key, raw, expires_at)
        .await?;
    // Vault's `data.plaintext` is base64 of the plaintext, which is the JSON object.
    Ok(SecretBundle {
        values: serde_json::from_slice(&plaintext).map_err(|_| EnvelopeError::Json)?,
        expires_at,
    })
}

fn algorithm_of(env: &SecretEnvelope) -> String {
    env.algorithm
        .as_deref()
        .map(|a| a.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn expires_at(env: &SecretEnvelope) -> Result<Option<SystemTime>, EnvelopeError> {
    match env.expires_at.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => crate::clock::parse_rfc3339(t)
            .map(Some)
            .ok_or_else(|| EnvelopeError::ExpiresAt(t.to_string())),
    }
}

/// The inline ciphertext is base64 of a JSON object of strings.
fn json_object(base64_text: &[u8]) -> Result<BTreeMap<String, String>, EnvelopeError> {
    let json = base64::engine::general_purpose::STANDARD
        .decode(base64_text.trim_ascii())
        .map_err(|_| EnvelopeError::Base64)?;
    serde_json::from_slice(&json).map_err(|_| EnvelopeError::Json)
}

/// Decodes an inline envelope (no Vault).
pub fn decode(env: &SecretEnvelope) -> Result<SecretBundle, EnvelopeError> {
    let algorithm = algorithm_of(env);
    if !matches!(algorithm.as_str(), "" | "inline/base64" | "inline") {
        return Err(EnvelopeError::UnsupportedAlgorithm(algorithm));
    }
    let expires_at = expires_at(env)?;
    let raw = env.ciphertext_b64.trim();
    if raw.is_empty() {
        return Ok(SecretBundle {
            values: BTreeMap::new(),
            expires_at,
        });
    }
    Ok(SecretBundle {
        values: json_object(raw.as_bytes())?,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(cipher: &str, alg: Option<&str>, exp: Option<&str>) -> SecretEnvelope {
        SecretEnvelope {
            ciphertext_b64: cipher.into(),
            version: None,
            algorithm: alg.map(String::from),
            expires_at: exp.map(String::from),
            key_path: None,
            mount: None,
        }
    }

    #[test]
    fn decodes_inline_and_refuses_the_rest() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(r#"{"api_key":"k1"}"#);
        let b = decode(&env(
            &b64,
            Some("inline/base64"),
            Some("2030-01-01T00:00:00Z"),
        ))
        .unwrap();
        assert_eq!(b.values["api_key"], "k1");
        assert!(b.expires_at.is_some());
        assert_eq!(decode(&env("", None, None)).unwrap().values.len(), 0);
        assert_eq!(decode(&env("!!", None, None)), Err(EnvelopeError::Base64));
        let arr = base64::engine::general_purpose::STANDARD.encode("[1]");
        assert_eq!(decode(&env(&arr, None, None)), Err(EnvelopeError::Json));
        assert!(matches!(
            decode(&env(&b64, Some("vault-transit:v1"), None)),
            Err(EnvelopeError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            decode(&env(&b64, None, Some("tomorrow"))),
            Err(EnvelopeError::ExpiresAt(_))
        ));
    }
}
