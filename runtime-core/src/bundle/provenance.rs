//! Where trust in a bundle comes from (`ALGA_BUNDLE_TRUST`).
//!
//! - `signature` (the default): an ed25519 signature by a key of the trust bundle,
//!   checked on publish and again whenever the bundle is loaded.
//! - `host-pinned`: also accepts an unsigned bundle whose sha256 is pinned by the
//!   host app itself — the hash in its object key and in its `bundle.sha256`
//!   sidecar — for a bucket only the host app can write (Alga's bundle store,
//!   whose signing is a stub). The registry records such a bundle with a pin in
//!   place of the signature, and a runner whose policy is `signature` refuses it.

use serde::{Deserialize, Serialize};

use super::signature::{Signature, SignatureError};
use super::trust::TrustBundle;
use crate::content::ContentHash;

/// The deployment's trust policy for bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BundleTrust {
    /// Only bundles signed by a key of the trust bundle.
    #[default]
    Signature,
    /// Signed bundles, and unsigned ones the host app pinned by hash.
    HostPinned,
}

impl BundleTrust {
    /// `signature` or `host-pinned`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "signature" => Some(BundleTrust::Signature),
            "host-pinned" => Some(BundleTrust::HostPinned),
            _ => None,
        }
    }
}

/// The signer id the registry records for a host-pinned bundle.
pub const HOST_PINNED_SIGNER: &str = "host-pinned";

/// What the registry records in place of a signature for a host-pinned bundle.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostPin {
    host_pinned: String,
}

/// The record of a bundle pinned by the host app.
pub fn host_pin_json(content: &ContentHash) -> String {
    serde_json::to_string(&HostPin {
        host_pinned: content.to_string(),
    })
    .unwrap_or_default()
}

/// Checks a recorded provenance again (the registry's `signature_json`): a
/// signature by a trusted key, or — only under [`BundleTrust::HostPinned`] — the
/// host's pin of exactly this hash.
pub fn verify_recorded(
    trust: &TrustBundle,
    policy: BundleTrust,
    content: &ContentHash,
    recorded: &[u8],
) -> Result<(), SignatureError> {
    if let Ok(pin) = serde_json::from_slice::<HostPin>(recorded) {
        if policy != BundleTrust::HostPinned {
            return Err(SignatureError::Missing);
        }
        let pinned = ContentHash::parse(&pin.host_pinned)
            .ok_or_else(|| SignatureError::Malformed("host pin is not a sha256".into()))?;
        if pinned != *content {
            return Err(SignatureError::HashMismatch {
                signed: pinned,
                actual: *content,
            });
        }
        return Ok(());
    }
    trust.verify(content, &Signature::from_json(recorded)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::signature::SigningKey;

    #[test]
    fn a_host_pin_holds_only_under_host_pinned_and_only_for_its_hash() {
        let content = ContentHash::of(b"bundle");
        let pin = host_pin_json(&content);
        let trust = TrustBundle::default();
        assert!(verify_recorded(&trust, BundleTrust::HostPinned, &content, pin.as_bytes()).is_ok());
        assert_eq!(
            verify_recorded(&trust, BundleTrust::Signature, &content, pin.as_bytes())
                .unwrap_err()
                .code(),
            "signature_missing"
        );
        let other = ContentHash::of(b"other");
        assert_eq!(
            verify_recorded(&trust, BundleTrust::HostPinned, &other, pin.as_bytes())
                .unwrap_err()
                .code(),
            "hash_mismatch"
        );
    }

    #[test]
    fn signatures_are_checked_under_both_policies() {
        let key = SigningKey::generate("k1").unwrap();
        let content = ContentHash::of(b"bundle");
        let sig = Signature::sign(&content, &key).to_json();
        let trust = TrustBundle::default().with_key(key.public());
        for policy in [BundleTrust::Signature, BundleTrust::HostPinned] {
            assert!(verify_recorded(&trust, policy, &content, sig.as_bytes()).is_ok());
            assert_eq!(
                verify_recorded(&TrustBundle::default(), policy, &content, sig.as_bytes())
                    .unwrap_err()
                    .code(),
                "untrusted_key"
            );
        }
        assert_eq!(
            BundleTrust::parse("host-pinned"),
            Some(BundleTrust::HostPinned)
        );
        assert_eq!(BundleTrust::parse("none"), None);
    }
}
