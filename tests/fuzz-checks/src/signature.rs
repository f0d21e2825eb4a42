//! Signature sidecars, key files, public keys, trust bundles and recorded provenance.

use runtime_core::bundle::provenance::{self, BundleTrust};
use runtime_core::bundle::signature::{PublicKey, Signature, SigningKey};
use runtime_core::bundle::trust::TrustBundle;
use runtime_core::content::ContentHash;

/// Which parser an input is for: its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureInput {
    /// `Signature::from_json` (a sidecar).
    Sidecar = 0,
    /// `PublicKey::from_json`.
    PublicKey = 1,
    /// `SigningKey::from_json` (a key file).
    KeyFile = 2,
    /// `TrustBundle::from_json`.
    TrustBundle = 3,
    /// `provenance::verify_recorded` under the signature policy.
    RecordedSigned = 4,
    /// `provenance::verify_recorded` under the host-pinned policy.
    RecordedPinned = 5,
}

/// The input for `kind` with `document` (what the seeds are made of).
pub fn signature_input(kind: SignatureInput, document: &[u8]) -> Vec<u8> {
    let mut out = vec![kind as u8];
    out.extend_from_slice(document);
    out
}

/// The one key the checks trust (a fixed seed, so seeds signed with it stay valid),
/// and the bundle hash its seeds sign.
pub fn trusted_key() -> (SigningKey, ContentHash) {
    let key = SigningKey::from_seed("fuzz-signer", &[7; 32]).expect("a valid key id");
    (key, ContentHash::of(b"a fuzzed bundle"))
}

/// The first byte picks the parser ([`SignatureInput`]), the rest is the document.
/// Whatever parses serializes and parses back to the same value. A sidecar
/// verifies only for its own hash, and under the trusted key only when it is
/// exactly the (deterministic) ed25519 signature of that key: no malleated
/// encoding passes. A trust bundle verifies the trusted key's signature iff it
/// lists that key unrevoked. Recorded provenance passes only as that signature
/// of the bundle's hash, or (host-pinned policy only) as the host's pin of it.
pub fn signature(data: &[u8]) {
    let Some((&kind, doc)) = data.split_first() else {
        return;
    };
    let (key, content) = trusted_key();
    let trust = TrustBundle::new().with_key(key.public());
    match kind {
        0 => {
            let Ok(sig) = Signature::from_json(doc) else {
                return;
            };
            let again = Signature::from_json(sig.to_json().as_bytes()).expect("own sidecar");
            assert_eq!(again, sig);
            let other = ContentHash::of(&sig.content_hash.to_string().into_bytes());
            assert!(
                trust.verify(&other, &sig).is_err(),
                "verified for another hash"
            );
            if trust.verify(&sig.content_hash, &sig).is_ok() {
                assert_eq!(
                    sig,
                    key.sign(&sig.content_hash),
                    "a malleated signature verified"
                );
            }
        }
        1 => {
            let Ok(public) = PublicKey::from_json(doc) else {
                return;
            };
            let again = PublicKey::from_json(public.to_json().as_bytes()).expect("own JSON");
            assert_eq!(again, public);
        }
        2 => {
            let Ok(signing) = SigningKey::from_json(doc) else {
                return;
            };
            let again = SigningKey::from_json(signing.to_json().as_bytes()).expect("own file");
            assert_eq!(again.public(), signing.public());
            let sig = signing.sign(&content);
            assert!(
                TrustBundle::new()
                    .with_key(signing.public())
                    .verify(&content, &sig)
                    .is_ok(),
                "a parsed key's signature does not verify under its public half"
            );
        }
        3 => {
            let Ok(bundle) = TrustBundle::from_json(doc) else {
                return;
            };
            let again = TrustBundle::from_json(bundle.to_json().as_bytes()).expect("own JSON");
            assert_eq!(again, bundle);
            let listed = bundle.key(key.key_id()) == Some(&key.public());
            let verified = bundle.verify(&content, &key.sign(&content)).is_ok();
            assert_eq!(
                verified,
                listed && !bundle.is_revoked(key.key_id()),
                "trust decision for the fuzz key"
            );
        }
        4 | 5 => {
            let policy = if kind == 4 {
                BundleTrust::Signature
            } else {
                BundleTrust::HostPinned
            };
            if provenance::verify_recorded(&trust, policy, &content, doc).is_err() {
                return;
            }
            let signed = Signature::from_json(doc).is_ok_and(|s| s == key.sign(&content));
            let pinned = serde_json::from_slice::<serde_json::Value>(doc).is_ok_and(|v| {
                v.get("host_pinned")
                    .and_then(|h| h.as_str())
                    .and_then(ContentHash::parse)
                    == Some(content)
            });
            assert!(
                signed || (policy == BundleTrust::HostPinned && pinned),
                "provenance accepted under {policy:?}: {}",
                String::from_utf8_lossy(doc)
            );
        }
        _ => {}
    }
}
