//! Compiled artifacts: what names one (content hash, target, engine fingerprint),
//! where it is stored, and precompiling a component (feature `compiler`) with the
//! engine configuration `execute` uses, and the zstd object it is stored as
//! ([`encoding`]). Loading one is [`crate::loader`]'s job.

pub mod encoding;

pub use crate::content::{ContentHash, sha256};
use crate::engine::Target;

/// Where an artifact lives: (content hash, target triple, engine fingerprint).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArtifactKey {
    /// The source component's bundle content hash.
    pub content: ContentHash,
    /// The target it was compiled for.
    pub target: Target,
    /// The engine fingerprint it was compiled with.
    pub fingerprint: String,
}

impl ArtifactKey {
    /// The blob-store key of the raw `.cwasm` (how artifacts published before
    /// compression are stored; see [`ArtifactRef::object_key`]).
    pub fn blob_key(&self) -> String {
        format!(
            "artifacts/{}/{}/{}.cwasm",
            self.content.hex(),
            self.target,
            self.fingerprint
        )
    }
}

/// An artifact as the registry records it: its key, the sha256 and size of its
/// `.cwasm` bytes, and how the stored object is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRef {
    /// Where it is.
    pub key: ArtifactKey,
    /// sha256 of the `.cwasm` bytes.
    pub sha256: [u8; 32],
    /// Size in bytes of the `.cwasm`.
    pub size: u64,
    /// The compressed object stored in its place; `None`: the raw `.cwasm` is
    /// stored (records written before compression).
    pub stored: Option<StoredObject>,
}

impl ArtifactRef {
    /// The blob-store key of the object to fetch: `….cwasm.zst` when compressed,
    /// else the raw `….cwasm`.
    pub fn object_key(&self) -> String {
        match &self.stored {
            Some(o) => format!("{}.{}", self.key.blob_key(), o.encoding.extension()),
            None => self.key.blob_key(),
        }
    }
}

/// The encoded object an artifact is stored as, with its own sha256 and size, so
/// its bytes are verified before a decoder reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// How the `.cwasm` is encoded.
    pub encoding: Encoding,
    /// sha256 of the stored (encoded) bytes.
    pub sha256: [u8; 32],
    /// Size in bytes of the stored object.
    pub size: u64,
}

/// An artifact object's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// A single zstd frame of the `.cwasm`.
    Zstd,
}

impl Encoding {
    /// The name the registry records.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Zstd => "zstd",
        }
    }

    /// Parses a recorded name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "zstd" => Some(Encoding::Zstd),
            _ => None,
        }
    }

    /// The suffix appended to the raw key.
    fn extension(self) -> &'static str {
        match self {
            Encoding::Zstd => "zst",
        }
    }
}

/// Why an artifact could not be produced or loaded.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// No artifact for this engine (never compiled, deleted, or another fingerprint).
    #[error("no compiled artifact for {0} on this runtime")]
    Missing(String),
    /// The bytes do not match the recorded sha256; they were not deserialized.
    #[error("artifact {key} failed its integrity check (sha256 {actual}, expected {expected})")]
    Integrity {
        /// The blob key.
        key: String,
        /// What the bytes hash to.
        actual: String,
        /// What the registry recorded.
        expected: String,
    },
    /// The blob store failed (its error, as text: this module sits below the stores).
    #[error("artifact fetch failed: {0}")]
    Fetch(String),
    /// The component imports something this runtime does not provide.
    #[error("component does not link: {0}")]
    Link(String),
    /// The input is not a valid component, or compilation failed.
    #[error("compilation failed: {0}")]
    Compile(String),
}

/// Compiles a component for `target` with the shared engine configuration.
#[cfg(feature = "compiler")]
pub fn precompile(
    wasm: &[u8],
    target: &Target,
    settings: &crate::engine::EngineSettings,
) -> Result<Vec<u8>, ArtifactError> {
    if !wasmparser_is_component(wasm) {
        return Err(ArtifactError::Compile(
            "not a WebAssembly component (a core module or other bytes)".into(),
        ));
    }
    let config = crate::engine::build_config(settings, Some(target))
        .map_err(|e| ArtifactError::Compile(e.to_string()))?;
    let engine =
        wasmtime::Engine::new(&config).map_err(|e| ArtifactError::Compile(e.to_string()))?;
    engine
        .precompile_component(wasm)
        .map_err(|e| ArtifactError::Compile(format!("{e:#}")))
}

#[cfg(feature = "compiler")]
fn wasmparser_is_component(bytes: &[u8]) -> bool {
    // A component's preamble: magic, then version 0x0d with layer 1.
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}
