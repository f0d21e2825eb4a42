//! Ed25519 signatures over a bundle's content hash, and the key files behind them.
//!
//! What is signed is never the raw hash: it is `alga-bundle-signature-v1\n`
//! followed by `sha256:<hex>`, so a bundle signature can never be replayed as a
//! signature over anything else made with the same key.
//!
//! Formats (all JSON, base64 is standard with padding):
//! - key file: `{"format":"alga-signing-key/v1","algorithm":"ed25519","key_id":…,"private_key":<32 bytes>,"public_key":<32 bytes>}`
//! - public key: `{"key_id":…,"algorithm":"ed25519","public_key":<32 bytes>}`
//! - signature sidecar: `{"format":"alga-bundle-signature/v1","algorithm":"ed25519","key_id":…,"content_hash":"sha256:…","signature":<64 bytes>}`

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::content::ContentHash;

/// The prefix of every signed message (domain separation).
pub const SIGNATURE_DOMAIN: &[u8] = b"alga-bundle-signature-v1\n";
/// The `format` of a signature sidecar.
pub const SIGNATURE_FORMAT: &str = "alga-bundle-signature/v1";
/// The `format` of a signing key file.
pub const KEY_FORMAT: &str = "alga-signing-key/v1";
/// The only signature algorithm.
pub const ALGORITHM: &str = "ed25519";
/// The largest signature sidecar or key file accepted, in bytes.
pub const MAX_JSON_BYTES: usize = 16 * 1024;

/// Why a signature was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The sidecar is not a valid signature document.
    #[error("signature is malformed: {0}")]
    Malformed(String),
    /// The signing key is not in the trust bundle.
    #[error(
        "signature key {0:?} is not in the trust bundle; sign with a trusted key \
         or add its public key to SIGNING_TRUST_BUNDLE"
    )]
    UntrustedKey(String),
    /// The signing key is revoked in the trust bundle.
    #[error("signature key {0:?} is revoked; re-sign the bundle with a current key")]
    RevokedKey(String),
    /// The signature is for another bundle.
    #[error("signature is for {signed} but the bundle is {actual}; sign this bundle")]
    HashMismatch {
        /// The hash the signature names.
        signed: ContentHash,
        /// The hash of the bundle at hand.
        actual: ContentHash,
    },
    /// The signature does not verify with the named key.
    #[error("signature by key {0:?} does not verify; the signature or the bundle was altered")]
    BadSignature(String),
    /// No signature where one is required.
    #[error("bundle is not signed; a signature by a key in SIGNING_TRUST_BUNDLE is required")]
    Missing,
}

impl SignatureError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        use SignatureError::*;
        match self {
            Malformed(_) => "signature_malformed",
            UntrustedKey(_) => "untrusted_key",
            RevokedKey(_) => "revoked_key",
            HashMismatch { .. } => "hash_mismatch",
            BadSignature(_) => "bad_signature",
            Missing => "signature_missing",
        }
    }
}

/// Why a key or key file was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key id breaks the naming rule.
    #[error(
        "key id {0:?} is invalid; expected 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'"
    )]
    InvalidKeyId(String),
    /// The key document is not valid.
    #[error("key is malformed: {0}")]
    Malformed(String),
    /// A key file's `public_key` is not the public half of its `private_key`.
    #[error("key file for {0:?}: public_key does not belong to private_key; regenerate the file")]
    Mismatch(String),
    /// The system's random source failed.
    #[error("cannot generate a key: the system random source failed: {0}")]
    Random(String),
}

impl KeyError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            KeyError::InvalidKeyId(_) => "invalid_key_id",
            KeyError::Malformed(_) => "key_malformed",
            KeyError::Mismatch(_) => "key_mismatch",
            KeyError::Random(_) => "key_generation",
        }
    }
}

/// Checks a key id: 1–64 characters of `[A-Za-z0-9._-]`.
pub fn validate_key_id(key_id: &str) -> Result<(), KeyError> {
    let ok = (1..=64).contains(&key_id.len())
        && key_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidKeyId(key_id.to_owned()))
    }
}

/// The exact bytes signed for a bundle with this content hash.
pub fn signed_message(content: &ContentHash) -> Vec<u8> {
    let mut message = SIGNATURE_DOMAIN.to_vec();
    message.extend_from_slice(content.to_string().as_bytes());
    message
}

/// Decodes base64 that must hold exactly `N` bytes; `field` names it in errors.
fn decode_fixed<const N: usize>(field: &str, text: &str) -> Result<[u8; N], String> {
    let bytes = BASE64
        .decode(text)
        .map_err(|e| format!("{field} is not valid base64 ({e}); expected {N} bytes in base64"))?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| format!("{field} holds {len} bytes; expected {N}"))
}

/// Parses a small JSON document and checks its `format`, before any other field.
// Checking `format` first means a newer document gets "unsupported format"
// rather than a confusing complaint about a field we do not know.
fn parse_document(
    what: &str,
    bytes: &[u8],
    format: Option<&str>,
) -> Result<serde_json::Value, String> {
    if bytes.len() > MAX_JSON_BYTES {
        return Err(format!(
            "{what} is {} bytes; at most {MAX_JSON_BYTES} bytes expected",
            bytes.len()
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("{what} is not valid JSON: {e}"))?;
    if !value.is_object() {
        return Err(format!("{what} must be a JSON object"));
    }
    if let Some(expected) = format {
        match value.get("format") {
            Some(serde_json::Value::String(f)) if f == expected => {}
            Some(serde_json::Value::String(f)) => {
                return Err(format!("{what} has format {f:?}; expected {expected:?}"));
            }
            _ => {
                return Err(format!(
                    "{what} has no \"format\" string; expected {expected:?}"
                ));
            }
        }
    }
    check_algorithm(what, value.get("algorithm").and_then(|a| a.as_str()))?;
    Ok(value)
}

/// Refuses any algorithm but ed25519; `what` names the document in errors.
fn check_algorithm(what: &str, algorithm: Option<&str>) -> Result<(), String> {
    match algorithm {
        Some(ALGORITHM) => Ok(()),
        Some(a) => Err(format!(
            "{what} uses algorithm {a:?}; only {ALGORITHM:?} is supported"
        )),
        _ => Err(format!(
            "{what} has no \"algorithm\" string; expected {ALGORITHM:?}"
        )),
    }
}

/// A public key as JSON (also one entry of a trust bundle's `keys`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PublicKeyJson {
    pub(super) key_id: String,
    pub(super) algorithm: String,
    pub(super) public_key: String,
}

/// A named ed25519 public key, as trust bundles list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key_id: String,
    key: VerifyingKey,
}

impl PublicKey {
    /// A public key under `key_id`; refuses invalid ids and weak (small-order) keys.
    pub fn new(key_id: &str, key: VerifyingKey) -> Result<Self, KeyError> {
        validate_key_id(key_id)?;
        if key.is_weak() {
            return Err(KeyError::Malformed(format!(
                "public key of {key_id:?} is a weak (small-order) point; expected a real ed25519 key"
            )));
        }
        Ok(PublicKey {
            key_id: key_id.to_owned(),
            key,
        })
    }

    /// The key id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The ed25519 key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// `{"key_id":…,"algorithm":"ed25519","public_key":<base64>}`, pretty-printed.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_wire()).expect("a public key serializes")
    }

    /// Parses the JSON of [`PublicKey::to_json`]; unknown fields are refused.
    pub fn from_json(bytes: &[u8]) -> Result<Self, KeyError> {
        let value = parse_document("public key", bytes, None).map_err(KeyError::Malformed)?;
        let wire: PublicKeyJson = serde_json::from_value(value)
            .map_err(|e| KeyError::Malformed(format!("public key: {e}")))?;
        Self::from_wire(wire)
    }

    /// The JSON shape, shared with trust bundle entries.
    pub(super) fn to_wire(&self) -> PublicKeyJson {
        PublicKeyJson {
            key_id: self.key_id.clone(),
            algorithm: ALGORITHM.to_owned(),
            public_key: BASE64.encode(self.key.as_bytes()),
        }
    }

    /// Checks and converts the JSON shape, shared with trust bundle entries.
    pub(super) fn from_wire(wire: PublicKeyJson) -> Result<Self, KeyError> {
        validate_key_id(&wire.key_id)?;
        check_algorithm(
            &format!("public key {:?}", wire.key_id),
            Some(wire.algorithm.as_str()),
        )
        .map_err(KeyError::Malformed)?;
        let bytes = decode_fixed::<32>("public_key", &wire.public_key)
            .map_err(|e| KeyError::Malformed(format!("key {:?}: {e}", wire.key_id)))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| {
            KeyError::Malformed(format!(
                "key {:?}: public_key is not a valid ed25519 point",
                wire.key_id
            ))
        })?;
        Self::new(&wire.key_id, key)
    }
}

/// The key file's fields, in the order they are written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileJson {
    format: String,
    algorithm: String,
    key_id: String,
    private_key: String,
    public_key: String,
}

/// A named ed25519 signing key (the private half). Its `Debug` never shows the secret.
pub struct SigningKey {
    key_id: String,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id)
            .field(
                "public_key",
                &BASE64.encode(self.key.verifying_key().as_bytes()),
            )
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key under `key_id`, from the system's random source.
    pub fn generate(key_id: &str) -> Result<Self, KeyError> {
        validate_key_id(key_id)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Self::from_seed(key_id, &seed)
    }

    /// The key with this 32-byte secret seed, under `key_id`.
    pub fn from_seed(key_id: &str, seed: &[u8; 32]) -> Result<Self, KeyError> {
        validate_key_id(key_id)?;
        Ok(SigningKey {
            key_id: key_id.to_owned(),
            key: ed25519_dalek::SigningKey::from_bytes(seed),
        })
    }

    /// The key id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public half, under the same key id.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            key_id: self.key_id.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// Signs a bundle's content hash (same as [`Signature::sign`]).
    pub fn sign(&self, content: &ContentHash) -> Signature {
        Signature::sign(content, self)
    }

    /// The key file (`alga-signing-key/v1`), pretty-printed; it holds the secret, so store it privately.
    pub fn to_json(&self) -> String {
        let file = KeyFileJson {
            format: KEY_FORMAT.to_owned(),
            algorithm: ALGORITHM.to_owned(),
            key_id: self.key_id.clone(),
            private_key: BASE64.encode(self.key.as_bytes()),
            public_key: BASE64.encode(self.key.verifying_key().as_bytes()),
        };
        serde_json::to_string_pretty(&file).expect("a key file serializes")
    }

    /// Parses a key file, refusing it unless `public_key` is derived from `private_key`.
    pub fn from_json(bytes: &[u8]) -> Result<Self, KeyError> {
        let value =
            parse_document("key file", bytes, Some(KEY_FORMAT)).map_err(KeyError::Malformed)?;
        let file: KeyFileJson = serde_json::from_value(value)
            .map_err(|e| KeyError::Malformed(format!("key file: {e}")))?;
        validate_key_id(&file.key_id)?;
        let seed = decode_fixed::<32>("private_key", &file.private_key)
            .map_err(|e| KeyError::Malformed(format!("key file {:?}: {e}", file.key_id)))?;
        let public = decode_fixed::<32>("public_key", &file.public_key)
            .map_err(|e| KeyError::Malformed(format!("key file {:?}: {e}", file.key_id)))?;
        let key = Self::from_seed(&file.key_id, &seed)?;
        // A mismatched pair would sign bundles no one listing `public_key` can verify.
        if key.key.verifying_key().as_bytes() != &public {
            return Err(KeyError::Mismatch(file.key_id));
        }
        Ok(key)
    }
}

/// The signature sidecar's fields, in the order they are written.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureJson {
    format: String,
    algorithm: String,
    key_id: String,
    content_hash: String,
    signature: String,
}

/// An ed25519 signature by `key_id` over a bundle's content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Who signed.
    pub key_id: String,
    /// What was signed.
    pub content_hash: ContentHash,
    sig: [u8; 64],
}

impl Signature {
    /// Signs `content` with `key`.
    pub fn sign(content: &ContentHash, key: &SigningKey) -> Signature {
        let sig = key.key.sign(&signed_message(content));
        Signature {
            key_id: key.key_id.clone(),
            content_hash: *content,
            sig: sig.to_bytes(),
        }
    }

    /// The raw 64 signature bytes.
    pub fn bytes(&self) -> &[u8; 64] {
        &self.sig
    }

    /// Checks that this signature is for `content` and verifies under `key`.
    pub fn verify_with(
        &self,
        key: &VerifyingKey,
        content: &ContentHash,
    ) -> Result<(), SignatureError> {
        if self.content_hash != *content {
            return Err(SignatureError::HashMismatch {
                signed: self.content_hash,
                actual: *content,
            });
        }
        let sig = ed25519_dalek::Signature::from_bytes(&self.sig);
        // Strict verification refuses malleable encodings and small-order keys.
        key.verify_strict(&signed_message(content), &sig)
            .map_err(|_| SignatureError::BadSignature(self.key_id.clone()))
    }

    /// The sidecar (`alga-bundle-signature/v1`), pretty-printed.
    pub fn to_json(&self) -> String {
        let file = SignatureJson {
            format: SIGNATURE_FORMAT.to_owned(),
            algorithm: ALGORITHM.to_owned(),
            key_id: self.key_id.clone(),
            content_hash: self.content_hash.to_string(),
            signature: BASE64.encode(self.sig),
        };
        serde_json::to_string_pretty(&file).expect("a signature serializes")
    }

    /// Parses a sidecar strictly: known format and algorithm, no unknown fields, at most 16 KiB.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SignatureError> {
        let malformed = SignatureError::Malformed;
        let value =
            parse_document("signature", bytes, Some(SIGNATURE_FORMAT)).map_err(malformed)?;
        let file: SignatureJson =
            serde_json::from_value(value).map_err(|e| malformed(format!("signature: {e}")))?;
        validate_key_id(&file.key_id).map_err(|e| malformed(e.to_string()))?;
        let content_hash = file
            .content_hash
            .strip_prefix("sha256:")
            .and_then(ContentHash::parse)
            .ok_or_else(|| {
                malformed(format!(
                    "content_hash {:?} is not \"sha256:\" and 64 hex digits",
                    file.content_hash
                ))
            })?;
        let sig = decode_fixed::<64>("signature", &file.signature).map_err(malformed)?;
        Ok(Signature {
            key_id: file.key_id,
            content_hash,
            sig,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> SigningKey {
        SigningKey::generate(id).unwrap()
    }

    #[test]
    fn message_is_domain_separated() {
        let hash = ContentHash::of(b"bundle");
        let message = signed_message(&hash);
        let expected = format!("alga-bundle-signature-v1\nsha256:{}", hash.hex());
        assert_eq!(message, expected.as_bytes());
    }

    #[test]
    fn sign_and_verify() {
        let key = key("dev-1");
        let hash = ContentHash::of(b"bundle");
        let sig = Signature::sign(&hash, &key);
        assert_eq!(sig.key_id, "dev-1");
        sig.verify_with(key.public().verifying_key(), &hash)
            .unwrap();

        let other = key_other();
        let err = sig
            .verify_with(other.public().verifying_key(), &hash)
            .unwrap_err();
        assert!(
            matches!(&err, SignatureError::BadSignature(id) if id == "dev-1"),
            "{err}"
        );
    }

    fn key_other() -> SigningKey {
        SigningKey::from_seed("other", &[7; 32]).unwrap()
    }

    #[test]
    fn sidecar_round_trip_and_strictness() {
        let key = key("release.2025-01");
        let hash = ContentHash::of(b"bundle");
        let sig = key.sign(&hash);
        let json = sig.to_json();
        assert!(
            json.contains(r#""format": "alga-bundle-signature/v1""#),
            "{json}"
        );
        assert!(
            json.contains(&format!(r#""content_hash": "{hash}""#)),
            "{json}"
        );
        assert_eq!(Signature::from_json(json.as_bytes()).unwrap(), sig);

        let cases = [
            (
                json.replace("alga-bundle-signature/v1", "alga-bundle-signature/v2"),
                "format",
            ),
            (json.replace("\"ed25519\"", "\"rsa\""), "algorithm"),
            (
                json.replace("\"key_id\"", "\"extra\": 1, \"key_id\""),
                "extra",
            ),
            (json.replace("sha256:", "sha1:"), "content_hash"),
            (json.replace("release.2025-01", "bad id"), "key id"),
            ("[]".to_owned(), "object"),
        ];
        for (text, needle) in cases {
            let err = Signature::from_json(text.as_bytes()).unwrap_err();
            assert_eq!(err.code(), "signature_malformed");
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
        let big = format!("{json}{}", " ".repeat(MAX_JSON_BYTES));
        let err = Signature::from_json(big.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("16384"), "{err}");
    }

    #[test]
    fn key_ids() {
        for ok in ["a", "dev-1", "A.b_c-9", &"k".repeat(64)] {
            validate_key_id(ok).unwrap();
        }
        for bad in ["", "a b", "a/b", "é", &"k".repeat(65)] {
            assert_eq!(validate_key_id(bad).unwrap_err().code(), "invalid_key_id");
        }
        assert!(SigningKey::generate("no spaces").is_err());
    }

    #[test]
    fn key_file_round_trip() {
        let key = key("dev-1");
        let json = key.to_json();
        assert!(
            json.contains(r#""format": "alga-signing-key/v1""#),
            "{json}"
        );
        let back = SigningKey::from_json(json.as_bytes()).unwrap();
        assert_eq!(back.key_id(), "dev-1");
        assert_eq!(back.public(), key.public());
        assert!(!format!("{key:?}").contains(&BASE64.encode(key.key.as_bytes())));
    }

    #[test]
    fn key_file_with_foreign_public_key_is_refused() {
        let key = key("dev-1");
        let mine = BASE64.encode(key.public().verifying_key().as_bytes());
        let theirs = BASE64.encode(key_other().public().verifying_key().as_bytes());
        let json = key.to_json().replace(&mine, &theirs);
        let err = SigningKey::from_json(json.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, KeyError::Mismatch(id) if id == "dev-1"),
            "{err}"
        );
        assert_eq!(err.code(), "key_mismatch");
    }

    #[test]
    fn public_key_json_round_trip() {
        let public = key("dev-1").public();
        let back = PublicKey::from_json(public.to_json().as_bytes()).unwrap();
        assert_eq!(back, public);
        let err =
            PublicKey::from_json(br#"{"key_id":"k","algorithm":"ed25519","public_key":"AAAA"}"#)
                .unwrap_err();
        assert!(err.to_string().contains("expected 32"), "{err}");
    }
}
