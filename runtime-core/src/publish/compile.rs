//! Compiling a component for one target and storing the artifact.

use crate::artifact::{self, ArtifactError, ArtifactKey, ArtifactRef, ContentHash};
use crate::engine::Target;
use crate::store::BlobStore;

/// Compiles for `target` and stores the artifact as publish does, zstd-compressed;
/// returns what the registry records.
pub async fn precompile_and_store_compressed(
    blobs: &dyn BlobStore,
    content: ContentHash,
    wasm: &[u8],
    target: &Target,
    settings: &crate::engine::EngineSettings,
) -> Result<ArtifactRef, ArtifactError> {
    store(blobs, content, wasm, target, settings, true).await
}

/// Compiles for `target` and stores the raw `.cwasm` (a record without an
/// encoding, as artifacts published before compression are); returns what the
/// registry records.
pub async fn precompile_and_store(
    blobs: &dyn BlobStore,
    content: ContentHash,
    wasm: &[u8],
    target: &Target,
    settings: &crate::engine::EngineSettings,
) -> Result<ArtifactRef, ArtifactError> {
    store(blobs, content, wasm, target, settings, false).await
}

async fn store(
    blobs: &dyn BlobStore,
    content: ContentHash,
    wasm: &[u8],
    target: &Target,
    settings: &crate::engine::EngineSettings,
    compress: bool,
) -> Result<ArtifactRef, ArtifactError> {
    let key = ArtifactKey {
        content,
        target: target.clone(),
        fingerprint: crate::engine::fingerprint(target, settings),
    };
    let (wasm, t, s) = (wasm.to_vec(), target.clone(), settings.clone());
    let (artifact, object) = tokio::task::spawn_blocking(move || {
        let cwasm = artifact::precompile(&wasm, &t, &s)?;
        if !compress {
            let raw = ArtifactRef {
                key,
                sha256: artifact::sha256(&cwasm),
                size: cwasm.len() as u64,
                stored: None,
            };
            return Ok((raw, cwasm));
        }
        artifact::encoding::package(key, &cwasm).map_err(|e| ArtifactError::Compile(e.to_string()))
    })
    .await
    .map_err(|e| ArtifactError::Compile(e.to_string()))??;
    blobs
        .put(&artifact.object_key(), &object)
        .await
        .map_err(|e| ArtifactError::Fetch(e.to_string()))?;
    Ok(artifact)
}
