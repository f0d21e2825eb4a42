//! Content addressing: a bundle is named by the sha256 of its bytes. At the
//! bottom of the crate: bundles, artifacts, stores and UI URLs all speak it.

use sha2::{Digest, Sha256};

/// The sha256 of bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A bundle's content hash: sha256 of its compressed bytes, written `sha256:<hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        ContentHash(sha256(bytes))
    }

    /// Parses `sha256:<64 hex>` or bare hex (either case).
    pub fn parse(s: &str) -> Option<Self> {
        let hex_part = s.strip_prefix("sha256:").unwrap_or(s);
        if hex_part.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part.to_ascii_lowercase(), &mut out).ok()?;
        Some(ContentHash(out))
    }

    /// Lowercase hex, without the prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::ContentHash;

    #[test]
    fn content_hash_forms() {
        let h = ContentHash::of(b"x");
        assert_eq!(ContentHash::parse(&h.to_string()), Some(h));
        assert_eq!(ContentHash::parse(&h.hex()), Some(h));
        assert_eq!(ContentHash::parse(&h.hex().to_uppercase()), Some(h));
        assert_eq!(ContentHash::parse("sha256:abc"), None);
        assert_eq!(ContentHash::parse(&"g".repeat(64)), None);
    }
}
