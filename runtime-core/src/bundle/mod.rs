//! Extension bundles: the `bundle.tar.zst` archive, its ed25519 signature, and
//! the trust bundle that decides which signing keys are accepted.
//!
//! A bundle's identity is its [`ContentHash`](crate::content::ContentHash):
//! the sha256 of the compressed bytes. Packing is reproducible so that the
//! same source folder always yields the same hash, and signatures cover
//! exactly that hash.

pub mod archive;
pub mod provenance;
pub mod signature;
pub mod trust;

pub use archive::{ArchiveError, ArchiveLimits, BundleFiles, pack_dir, unpack};
pub use provenance::BundleTrust;
pub use signature::{KeyError, PublicKey, Signature, SignatureError, SigningKey};
pub use trust::{TrustBundle, TrustError};
