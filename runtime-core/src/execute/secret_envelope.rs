//! Decoding the request's inline `secret_envelope` into the install's secrets.
//!
//! `inline/base64` (also the default when `algorithm` is absent): standard base64
//! of a flat JSON object of strings, as the Alga server writes it. `expires_at`
//! (RFC 3339) is honoured: after it every `secrets.get` answers `expired`.
//! `vault-transit:*` envelopes are refused with a clear reason; Vault is not a
//! backend of this runner (secrets live in Secrets Manager).

use std::collections::BTreeMap;

use base64::Engine as _;

use super::request::SecretEnvelope;
use crate::store::SecretBundle;

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
}

/// Decodes an envelope.
pub fn decode(env: &SecretEnvelope) -> Result<SecretBundle, EnvelopeError> {
    let algorithm = env
        .algorithm
        .as_deref()
        .map(|a| a.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !matches!(algorithm.as_str(), "" | "inline/base64" | "inline") {
        return Err(EnvelopeError::UnsupportedAlgorithm(algorithm));
    }
    let expires_at = match env.expires_at.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => Some(
            humantime::parse_rfc3339_weak(t)
                .map_err(|_| EnvelopeError::ExpiresAt(t.to_string()))?,
        ),
    };
    let raw = env.ciphertext_b64.trim();
    if raw.is_empty() {
        return Ok(SecretBundle {
            values: BTreeMap::new(),
            expires_at,
        });
    }
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|_| EnvelopeError::Base64)?;
    let values: BTreeMap<String, String> =
        serde_json::from_slice(&json).map_err(|_| EnvelopeError::Json)?;
    Ok(SecretBundle { values, expires_at })
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
