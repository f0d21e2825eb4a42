//! The trust bundle (`SIGNING_TRUST_BUNDLE`): which public keys may sign bundles.
//!
//! JSON: `{"keys":[{"key_id":…,"algorithm":"ed25519","public_key":<base64>}, …],"revoked":[key id, …]}`.
//! `revoked` is optional. A revoked key id stays refused even if it is also
//! listed in `keys`, so revoking never depends on removing a key everywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::signature::{PublicKey, PublicKeyJson, Signature, SignatureError, validate_key_id};
use crate::content::ContentHash;

/// Why a trust bundle could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file named by the setting could not be read.
    #[error("cannot read the trust bundle file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The document is not a valid trust bundle.
    #[error("trust bundle is malformed: {0}")]
    Malformed(String),
    /// The same key id is listed twice in `keys`.
    #[error(
        "trust bundle lists key id {0:?} more than once; each key id may appear once in \"keys\""
    )]
    DuplicateKey(String),
}

impl TrustError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            TrustError::Read { .. } => "trust_bundle_unreadable",
            TrustError::Malformed(_) => "trust_bundle_malformed",
            TrustError::DuplicateKey(_) => "duplicate_key",
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustBundleJson {
    keys: Vec<PublicKeyJson>,
    #[serde(default)]
    revoked: Vec<String>,
}

/// The public keys trusted to sign bundles, and the key ids revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustBundle {
    keys: BTreeMap<String, PublicKey>,
    revoked: BTreeSet<String>,
}

impl TrustBundle {
    /// An empty bundle: it trusts no key.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the trust bundle JSON; unknown fields and duplicate key ids are refused.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TrustError> {
        let doc: TrustBundleJson = serde_json::from_slice(bytes)
            .map_err(|e| TrustError::Malformed(format!("not a trust bundle document: {e}")))?;
        let mut bundle = TrustBundle::new();
        for (i, wire) in doc.keys.into_iter().enumerate() {
            let key = PublicKey::from_wire(wire)
                .map_err(|e| TrustError::Malformed(format!("keys[{i}]: {e}")))?;
            if bundle.keys.contains_key(key.key_id()) {
                return Err(TrustError::DuplicateKey(key.key_id().to_owned()));
            }
            bundle.keys.insert(key.key_id().to_owned(), key);
        }
        for (i, key_id) in doc.revoked.into_iter().enumerate() {
            validate_key_id(&key_id)
                .map_err(|e| TrustError::Malformed(format!("revoked[{i}]: {e}")))?;
            bundle.revoked.insert(key_id);
        }
        Ok(bundle)
    }

    /// Reads the `SIGNING_TRUST_BUNDLE` setting: inline JSON if it starts with `{`, else a file path.
    pub fn from_setting(value: &str) -> Result<Self, TrustError> {
        let value = value.trim();
        if value.starts_with('{') {
            return Self::from_json(value.as_bytes());
        }
        if value.is_empty() {
            return Err(TrustError::Malformed(
                "the setting is empty; expected inline JSON or the path of a JSON file".into(),
            ));
        }
        let path = PathBuf::from(value);
        let bytes = std::fs::read(&path).map_err(|source| TrustError::Read {
            path: path.clone(),
            source,
        })?;
        Self::from_json(&bytes)
    }

    /// This bundle plus `key` (replacing a key with the same id).
    pub fn with_key(mut self, key: PublicKey) -> Self {
        self.keys.insert(key.key_id().to_owned(), key);
        self
    }

    /// This bundle with `key_id` revoked.
    pub fn revoke(mut self, key_id: &str) -> Self {
        self.revoked.insert(key_id.to_owned());
        self
    }

    /// The trusted key with this id, revoked or not.
    pub fn key(&self, key_id: &str) -> Option<&PublicKey> {
        self.keys.get(key_id)
    }

    /// Every listed key, by key id.
    pub fn keys(&self) -> impl Iterator<Item = &PublicKey> {
        self.keys.values()
    }

    /// Whether `key_id` is revoked.
    pub fn is_revoked(&self, key_id: &str) -> bool {
        self.revoked.contains(key_id)
    }

    /// The bundle as compact JSON (keys and revoked ids sorted), fit for an environment variable.
    pub fn to_json(&self) -> String {
        let doc = TrustBundleJson {
            keys: self.keys.values().map(PublicKey::to_wire).collect(),
            revoked: self.revoked.iter().cloned().collect(),
        };
        serde_json::to_string(&doc).expect("a trust bundle serializes")
    }

    /// Verifies that `sig` is a signature over `content` by a trusted, unrevoked key.
    pub fn verify(&self, content: &ContentHash, sig: &Signature) -> Result<(), SignatureError> {
        if self.revoked.contains(&sig.key_id) {
            return Err(SignatureError::RevokedKey(sig.key_id.clone()));
        }
        let Some(key) = self.keys.get(&sig.key_id) else {
            return Err(SignatureError::UntrustedKey(sig.key_id.clone()));
        };
        sig.verify_with(key.verifying_key(), content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::signature::SigningKey;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;

    fn signed() -> (SigningKey, TrustBundle, Vec<u8>, Signature) {
        let key = SigningKey::generate("publisher-1").unwrap();
        let trust = TrustBundle::new().with_key(key.public());
        let bundle = b"pretend this is a bundle.tar.zst".to_vec();
        let sig = Signature::sign(&ContentHash::of(&bundle), &key);
        (key, trust, bundle, sig)
    }

    #[test]
    fn sign_then_verify() {
        let (_, trust, bundle, sig) = signed();
        trust.verify(&ContentHash::of(&bundle), &sig).unwrap();
        // And after the sidecar's round trip.
        let sig = Signature::from_json(sig.to_json().as_bytes()).unwrap();
        trust.verify(&ContentHash::of(&bundle), &sig).unwrap();
    }

    #[test]
    fn flipped_bundle_byte_is_a_hash_mismatch() {
        let (_, trust, mut bundle, sig) = signed();
        bundle[3] ^= 1;
        let actual = ContentHash::of(&bundle);
        let err = trust.verify(&actual, &sig).unwrap_err();
        assert!(
            matches!(err, SignatureError::HashMismatch { signed, actual: a }
                if signed == sig.content_hash && a == actual),
            "{err}"
        );
        assert_eq!(err.code(), "hash_mismatch");
    }

    #[test]
    fn unknown_key_is_untrusted() {
        let (_, trust, bundle, _) = signed();
        let stranger = SigningKey::generate("stranger").unwrap();
        let sig = Signature::sign(&ContentHash::of(&bundle), &stranger);
        let err = trust.verify(&ContentHash::of(&bundle), &sig).unwrap_err();
        assert!(
            matches!(&err, SignatureError::UntrustedKey(id) if id == "stranger"),
            "{err}"
        );
        assert_eq!(err.code(), "untrusted_key");
    }

    #[test]
    fn same_id_other_key_is_a_bad_signature() {
        let (_, trust, bundle, _) = signed();
        let impostor = SigningKey::generate("publisher-1").unwrap();
        let sig = Signature::sign(&ContentHash::of(&bundle), &impostor);
        let err = trust.verify(&ContentHash::of(&bundle), &sig).unwrap_err();
        assert_eq!(err.code(), "bad_signature", "{err}");
    }

    #[test]
    fn revoked_key_is_refused() {
        let (_, trust, bundle, sig) = signed();
        let trust = trust.revoke("publisher-1");
        let err = trust.verify(&ContentHash::of(&bundle), &sig).unwrap_err();
        assert!(
            matches!(&err, SignatureError::RevokedKey(id) if id == "publisher-1"),
            "{err}"
        );
        assert_eq!(err.code(), "revoked_key");
    }

    #[test]
    fn tampered_signature_is_bad() {
        let (_, trust, bundle, sig) = signed();
        let mut raw = *sig.bytes();
        raw[10] ^= 0x40;
        let json = sig
            .to_json()
            .replace(&BASE64.encode(sig.bytes()), &BASE64.encode(raw));
        let tampered = Signature::from_json(json.as_bytes()).unwrap();
        let err = trust
            .verify(&ContentHash::of(&bundle), &tampered)
            .unwrap_err();
        assert!(
            matches!(&err, SignatureError::BadSignature(id) if id == "publisher-1"),
            "{err}"
        );
        assert_eq!(err.code(), "bad_signature");
    }

    #[test]
    fn json_round_trip() {
        let (key, trust, _, _) = signed();
        let other = SigningKey::generate("old-key").unwrap();
        let trust = trust.with_key(other.public()).revoke("old-key");
        let json = trust.to_json();
        assert!(json.contains(r#""revoked":["old-key"]"#), "{json}");
        let back = TrustBundle::from_json(json.as_bytes()).unwrap();
        assert_eq!(back, trust);
        assert_eq!(back.key("publisher-1"), Some(&key.public()));
        assert!(back.is_revoked("old-key"));
    }

    #[test]
    fn bad_documents_are_refused() {
        let public = SigningKey::generate("k1").unwrap().public().to_json();
        let dup = format!(r#"{{"keys":[{public},{public}]}}"#);
        let err = TrustBundle::from_json(dup.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, TrustError::DuplicateKey(id) if id == "k1"),
            "{err}"
        );

        let revoked_optional = format!(r#"{{"keys":[{public}]}}"#);
        TrustBundle::from_json(revoked_optional.as_bytes()).unwrap();

        for (text, needle) in [
            (r#"{"keys":[],"revoke":["a"]}"#.to_owned(), "revoke"),
            (r#"{"revoked":[]}"#.to_owned(), "keys"),
            (
                format!(r#"{{"keys":[{}]}}"#, public.replace("ed25519", "p256")),
                "p256",
            ),
            (
                r#"{"keys":[],"revoked":["not ok"]}"#.to_owned(),
                "revoked[0]",
            ),
        ] {
            let err = TrustBundle::from_json(text.as_bytes()).unwrap_err();
            assert_eq!(err.code(), "trust_bundle_malformed", "{err}");
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn setting_inline_or_file() {
        let (_, trust, _, _) = signed();
        let json = trust.to_json();
        assert_eq!(
            TrustBundle::from_setting(&format!("  {json}\n")).unwrap(),
            trust
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust.json");
        std::fs::write(&path, &json).unwrap();
        assert_eq!(
            TrustBundle::from_setting(path.to_str().unwrap()).unwrap(),
            trust
        );

        let missing = dir.path().join("missing.json");
        let err = TrustBundle::from_setting(missing.to_str().unwrap()).unwrap_err();
        assert!(matches!(err, TrustError::Read { .. }), "{err}");
        assert!(err.to_string().contains("missing.json"), "{err}");
        assert_eq!(
            TrustBundle::from_setting("  ").unwrap_err().code(),
            "trust_bundle_malformed"
        );
    }
}
