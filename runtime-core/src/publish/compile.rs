//! Compiling a component for one target and storing the artifact.

use crate::artifact::{self, ArtifactError, ArtifactKey, ArtifactRef, ContentHash};
use crate::engine::Target;
use crate::store::BlobStore;

/// Compiles for `target` and stores the artifact; returns what the registry records.
pub async fn precompile_and_store(
    blobs: &dyn BlobStore,
    content: ContentHash,
    wasm: &[u8],
    target: &Target,
    settings: &crate::engine::EngineSettings,
) -> Result<ArtifactRef, ArtifactError> {
    let wasm = wasm.to_vec();
    let (t, s) = (target.clone(), settings.clone());
    let cwasm = tokio::task::spawn_blocking(move || artifact::precompile(&wasm, &t, &s))
        .await
        .map_err(|e| ArtifactError::Compile(e.to_string()))??;
    let key = ArtifactKey {
        content,
        target: target.clone(),
        fingerprint: crate::engine::fingerprint(target, settings),
    };
    blobs
        .put(&key.blob_key(), &cwasm)
        .await
        .map_err(|e| ArtifactError::Fetch(e.to_string()))?;
    Ok(ArtifactRef {
        key,
        sha256: artifact::sha256(&cwasm),
        size: cwasm.len() as u64,
    })
}
