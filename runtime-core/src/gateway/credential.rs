//! Shared-secret credentials, compared in constant time so a caller cannot learn
//! a token byte by byte from response timings.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Whether `presented` equals `expected`. Both are hashed first, so the
/// comparison takes the same time whatever their lengths.
pub fn token_matches(expected: &str, presented: &str) -> bool {
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(presented.as_bytes());
    a.as_slice().ct_eq(b.as_slice()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_same_token() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cret", "s3cre"));
        assert!(!token_matches("s3cret", ""));
        assert!(!token_matches("s3cret", "S3cret"));
    }
}
