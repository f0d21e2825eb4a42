//! The publish pipeline: verify signature → hash → unpack → validate manifest →
//! precompile for every target → store bundle, UI files and artifacts under
//! content-addressed keys → register. Nothing is written until every check and
//! compile has passed, and a failure while writing removes what this run created
//! — unless a concurrent publish of the same bundle registered it meanwhile (all
//! keys are named by the bundle's hash, so they are that version's blobs too).

mod compile;
pub mod uploads;

pub use compile::{precompile_and_store, precompile_and_store_compressed};

use std::sync::Arc;

use crate::artifact::{self, ArtifactKey, ArtifactRef, ContentHash};
use crate::bundle::archive::{self, ArchiveError, ArchiveLimits, BundleFiles};
use crate::bundle::provenance::{self, BundleTrust};
use crate::bundle::signature::{Signature, SignatureError};
use crate::bundle::trust::TrustBundle;
use crate::config::EngineSettings;
use crate::engine::{self, Target};
use crate::manifest::{self, Manifest, ManifestError, ManifestWarning, Strictness};
use crate::store::{
    BlobStore, PutOutcome, Registered, Registry, RegistryError, StoreError, VersionRecord,
};

/// The component every bundle carries (the seed runner hard-codes this path too).
pub const COMPONENT_PATH: &str = "dist/main.wasm";

/// Blob key of a bundle.
pub fn bundle_key(content: &ContentHash) -> String {
    format!("bundles/{}/bundle.tar.zst", content.hex())
}

/// How a bundle proved its origin, as the registry records it.
struct Provenance {
    /// The signing key id, or [`provenance::HOST_PINNED_SIGNER`].
    signer_key_id: String,
    /// The signature sidecar, or the host's pin (JSON).
    record: String,
}

/// Blob key of a bundle's signature sidecar.
pub fn signature_key(content: &ContentHash) -> String {
    format!("bundles/{}/bundle.sig.json", content.hex())
}

/// Blob key of one extracted UI file (`path` relative to the bundle's `ui/`).
pub fn ui_key(content: &ContentHash, path: &str) -> String {
    format!("ui/{}/{}", content.hex(), path)
}

/// Why a publish was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No signature was supplied.
    #[error("the bundle is not signed (no signature sidecar)")]
    SignatureMissing,
    /// The signature is malformed, untrusted, revoked or wrong.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The archive is unsafe or corrupt.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// manifest.json is missing or invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A file the manifest needs is not in the bundle.
    #[error("bundle is missing {0}")]
    MissingFile(String),
    /// The component does not compile.
    #[error("{COMPONENT_PATH} does not compile: {0}")]
    Compile(String),
    /// The name + version is taken by other bytes.
    #[error(
        "{extension} {version} is already published with other bytes ({existing}); publish a new version"
    )]
    VersionConflict {
        /// Extension.
        extension: String,
        /// Version.
        version: String,
        /// The bundle it has.
        existing: String,
    },
    /// The version to recompile does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A backend failed.
    #[error("storage failed: {0}")]
    Store(String),
}

impl PublishError {
    /// A stable code for scripts and failure records.
    pub fn code(&self) -> &'static str {
        match self {
            PublishError::SignatureMissing => "signature_missing",
            PublishError::Signature(e) => e.code(),
            PublishError::Archive(e) => e.code(),
            PublishError::Manifest(_) => "invalid_manifest",
            PublishError::MissingFile(_) => "missing_file",
            PublishError::Compile(_) => "compile_failed",
            PublishError::VersionConflict { .. } => "version_conflict",
            PublishError::NotFound(_) => "not_found",
            PublishError::Store(_) => "backend_unavailable",
        }
    }
}

impl From<StoreError> for PublishError {
    fn from(e: StoreError) -> Self {
        PublishError::Store(e.to_string())
    }
}

impl From<RegistryError> for PublishError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::VersionConflict {
                extension,
                version,
                existing,
            } => PublishError::VersionConflict {
                extension,
                version,
                existing,
            },
            RegistryError::NotFound(what) => PublishError::NotFound(what),
            e => PublishError::Store(e.to_string()),
        }
    }
}

/// A stage of the pipeline, reported to a progress callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Checking the signature.
    Verifying,
    /// Unpacking and validating.
    Unpacking,
    /// Compiling for a target.
    Compiling(Target),
    /// Writing blobs.
    Storing,
    /// Recording in the registry.
    Registering,
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct Published {
    /// The manifest.
    pub manifest: Manifest,
    /// The bundle's content hash.
    pub content_hash: ContentHash,
    /// Created, or unchanged (the same bytes were already published).
    pub outcome: Registered,
    /// Compiled artifacts.
    pub artifacts: Vec<ArtifactRef>,
    /// UI files extracted.
    pub ui_files: usize,
    /// What the manifest validator ignored (compatible mode), and how a wildcard
    /// version was resolved.
    pub warnings: Vec<ManifestWarning>,
}

/// Runs publishes against one blob store and registry.
pub struct Publisher {
    blobs: Arc<dyn BlobStore>,
    registry: Arc<dyn Registry>,
    trust: TrustBundle,
    limits: ArchiveLimits,
    engine: EngineSettings,
    targets: Vec<Target>,
    strictness: Strictness,
    bundle_trust: BundleTrust,
}

impl Publisher {
    /// A publisher compiling for the Lambda targets.
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        registry: Arc<dyn Registry>,
        trust: TrustBundle,
        engine: EngineSettings,
    ) -> Self {
        Publisher {
            blobs,
            registry,
            trust,
            limits: ArchiveLimits::default(),
            engine,
            targets: Target::lambda_targets().to_vec(),
            strictness: Strictness::Compatible,
            bundle_trust: BundleTrust::Signature,
        }
    }

    /// Trusts what `policy` trusts: with `host-pinned`, [`publish_host_pinned`](Self::publish_host_pinned)
    /// accepts unsigned bundles the host app pinned by hash.
    pub fn with_bundle_trust(mut self, policy: BundleTrust) -> Self {
        self.bundle_trust = policy;
        self
    }

    /// Validates manifests in this mode (default: compatible, with warnings).
    pub fn with_strictness(mut self, strictness: Strictness) -> Self {
        self.strictness = strictness;
        self
    }

    /// Compiles for these targets instead (the host's is always useful locally).
    pub fn with_targets(mut self, targets: Vec<Target>) -> Self {
        self.targets = targets;
        self
    }

    /// Uses other archive limits.
    pub fn with_limits(mut self, limits: ArchiveLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The archive limits in force.
    pub fn limits(&self) -> &ArchiveLimits {
        &self.limits
    }

    /// Publishes a signed bundle.
    pub async fn publish(
        &self,
        bundle: &[u8],
        signature: Option<&[u8]>,
        progress: &(dyn Fn(Stage) + Sync),
    ) -> Result<Published, PublishError> {
        progress(Stage::Verifying);
        let signature = Signature::from_json(signature.ok_or(PublishError::SignatureMissing)?)?;
        self.check_size(bundle)?;
        let content = ContentHash::of(bundle);
        self.trust.verify(&content, &signature)?;
        let provenance = Provenance {
            signer_key_id: signature.key_id.clone(),
            record: signature.to_json(),
        };
        self.publish_verified(bundle, content, provenance, progress)
            .await
    }

    /// Publishes an unsigned bundle the host app pinned by hash (the `sha256/<hex>/`
    /// of its object key and its `bundle.sha256` sidecar), under `ALGA_BUNDLE_TRUST=host-pinned`
    /// only; the bytes must hash to `pinned`.
    pub async fn publish_host_pinned(
        &self,
        bundle: &[u8],
        pinned: &ContentHash,
        progress: &(dyn Fn(Stage) + Sync),
    ) -> Result<Published, PublishError> {
        progress(Stage::Verifying);
        if self.bundle_trust != BundleTrust::HostPinned {
            return Err(PublishError::SignatureMissing);
        }
        self.check_size(bundle)?;
        let content = ContentHash::of(bundle);
        if content != *pinned {
            return Err(SignatureError::HashMismatch {
                signed: *pinned,
                actual: content,
            }
            .into());
        }
        let provenance = Provenance {
            signer_key_id: provenance::HOST_PINNED_SIGNER.into(),
            record: provenance::host_pin_json(&content),
        };
        self.publish_verified(bundle, content, provenance, progress)
            .await
    }

    fn check_size(&self, bundle: &[u8]) -> Result<(), PublishError> {
        if bundle.len() as u64 > self.limits.max_compressed_bytes {
            return Err(ArchiveError::CompressedTooLarge {
                size: bundle.len() as u64,
                limit: self.limits.max_compressed_bytes,
            }
            .into());
        }
        Ok(())
    }

    /// Everything after the bundle's provenance was checked: unpack, validate,
    /// compile, store, register.
    async fn publish_verified(
        &self,
        bundle: &[u8],
        content: ContentHash,
        provenance: Provenance,
        progress: &(dyn Fn(Stage) + Sync),
    ) -> Result<Published, PublishError> {
        progress(Stage::Unpacking);
        let files = archive::unpack(bundle, &self.limits)?;
        let manifest_bytes = files
            .get("manifest.json")
            .ok_or_else(|| PublishError::MissingFile("manifest.json".into()))?;
        let checked = manifest::check(manifest_bytes, self.strictness)?;
        let (manifest, warnings) = self.resolve_version(checked, &content).await?;
        let wasm = files
            .get(COMPONENT_PATH)
            .ok_or_else(|| PublishError::MissingFile(COMPONENT_PATH.into()))?;
        if let Some(ui) = &manifest.ui
            && files.get(&ui.entry).is_none()
        {
            return Err(PublishError::MissingFile(format!(
                "{} (ui.entry)",
                ui.entry
            )));
        }

        let version = manifest.version.to_string();
        if let Some(existing) = self.registry.get_version(&manifest.name, &version).await? {
            if existing.content_hash != content {
                return Err(PublishError::VersionConflict {
                    extension: manifest.name.clone(),
                    version,
                    existing: existing.content_hash.to_string(),
                });
            }
            return Ok(Published {
                ui_files: files.under("ui/").count(),
                manifest,
                content_hash: content,
                outcome: Registered::Unchanged,
                artifacts: existing.artifacts,
                warnings,
            });
        }

        let mut compiled = Vec::new();
        for target in &self.targets {
            progress(Stage::Compiling(target.clone()));
            compiled.push(self.compile(content, wasm, target).await?);
        }

        progress(Stage::Storing);
        let signature_json = provenance.record.clone();
        let mut writer = Writer::new(self.blobs.as_ref());
        let stored = self
            .store_all(
                &mut writer,
                &content,
                bundle,
                signature_json.as_bytes(),
                &files,
                &compiled,
            )
            .await;
        let artifacts = match stored {
            Ok(a) => a,
            Err(e) => {
                self.roll_back(writer, &manifest.name, &version, &content)
                    .await;
                return Err(e);
            }
        };

        progress(Stage::Registering);
        let record = VersionRecord {
            extension_id: manifest.name.clone(),
            version: version.clone(),
            publisher: manifest.publisher.clone(),
            content_hash: content,
            // Normalised: only what was validated, with the resolved version, so
            // every reader of the registry sees what publish accepted (the bundle
            // keeps the manifest as written).
            manifest_json: manifest.to_json().to_string(),
            bundle_size: bundle.len() as u64,
            signer_key_id: provenance.signer_key_id,
            signature_json: provenance.record,
            artifacts: artifacts.clone(),
            published_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default(),
        };
        let outcome = match self.registry.register_version(&record).await {
            Ok(o) => o,
            Err(e) => {
                self.roll_back(writer, &manifest.name, &version, &content)
                    .await;
                return Err(e.into());
            }
        };
        // A concurrent publish of the same bundle that failed may have removed
        // blobs it created before this run registered them; they are
        // content-addressed, so putting them back is always right.
        writer.restore_missing().await?;
        Ok(Published {
            ui_files: files.under("ui/").count(),
            manifest,
            content_hash: content,
            outcome,
            artifacts,
            warnings,
        })
    }

    /// Gives a wildcard version (`"0.3.*"`) its number as Alga's publish does: the
    /// next patch after the newest published release of that line. The same bundle
    /// published again (a retried upload event) keeps the version it got.
    async fn resolve_version(
        &self,
        checked: manifest::Checked,
        content: &ContentHash,
    ) -> Result<(Manifest, Vec<ManifestWarning>), PublishError> {
        if checked.wildcard().is_none() {
            return Ok(checked.resolve(std::iter::empty()));
        }
        if let Some(earlier) = self.registry.version_by_hash(content).await?
            && earlier.extension_id == checked.name()
            && let Ok(version) = semver::Version::parse(&earlier.version)
            && let Some(resolved) = checked.clone().resolve_as(version)
        {
            return Ok(resolved);
        }
        let published = self.registry.list_versions(checked.name()).await?;
        Ok(checked.resolve(published.iter().map(|v| v.version.as_str())))
    }

    /// Compiles a published version again (after a wasmtime upgrade, or to repair a
    /// lost artifact) and records the new artifacts.
    pub async fn recompile(
        &self,
        extension_id: &str,
        version: &str,
    ) -> Result<Vec<ArtifactRef>, PublishError> {
        let v = self
            .registry
            .get_version(extension_id, version)
            .await?
            .ok_or_else(|| PublishError::NotFound(format!("{extension_id} {version}")))?;
        let bundle = self
            .blobs
            .get(&bundle_key(&v.content_hash))
            .await?
            .ok_or_else(|| PublishError::NotFound(bundle_key(&v.content_hash)))?;
        // The stored bundle is checked like a new one: hash, then signature.
        if ContentHash::of(&bundle) != v.content_hash {
            return Err(PublishError::Store(format!(
                "stored bundle {} does not match its hash",
                v.content_hash
            )));
        }
        provenance::verify_recorded(
            &self.trust,
            self.bundle_trust,
            &v.content_hash,
            v.signature_json.as_bytes(),
        )?;
        let files = archive::unpack(&bundle, &self.limits)?;
        let wasm = files
            .get(COMPONENT_PATH)
            .ok_or_else(|| PublishError::MissingFile(COMPONENT_PATH.into()))?;
        let mut out = Vec::new();
        for target in &self.targets {
            let (artifact, object) = self.compile(v.content_hash, wasm, target).await?;
            let key = artifact.object_key();
            // A recompile replaces whatever is stored under the key.
            self.blobs.delete(&key).await?;
            self.blobs.put(&key, &object).await?;
            self.registry
                .put_artifact(&v.content_hash, &artifact)
                .await?;
            // A raw `.cwasm` of an earlier publish is no longer referenced.
            if key != artifact.key.blob_key() {
                self.blobs.delete(&artifact.key.blob_key()).await?;
            }
            out.push(artifact);
        }
        Ok(out)
    }

    /// Whether a registered version is this very bundle (a concurrent publish
    /// of the same bytes won): then every key this run wrote is that version's.
    async fn registered_elsewhere(
        &self,
        extension: &str,
        version: &str,
        content: &ContentHash,
    ) -> bool {
        match self.registry.get_version(extension, version).await {
            Ok(Some(v)) => v.content_hash == *content,
            Ok(None) => false,
            // Unknown: keeping a few orphan blobs beats deleting a live version's.
            Err(_) => true,
        }
    }

    /// Undoes a failed run: removes the blobs its own conditional puts created,
    /// unless a version referencing this bundle is registered. Checked again
    /// after deleting, since a concurrent publish may register in between; then
    /// the deleted blobs are put back.
    async fn roll_back(
        &self,
        writer: Writer<'_>,
        extension: &str,
        version: &str,
        content: &ContentHash,
    ) {
        if self.registered_elsewhere(extension, version, content).await {
            return;
        }
        let removed = writer.roll_back().await;
        if !removed.is_empty() && self.registered_elsewhere(extension, version, content).await {
            for (key, bytes) in removed {
                if let Err(e) = self.blobs.put(&key, bytes).await {
                    tracing::warn!(key, error = %e, "could not restore a blob of a concurrent publish");
                }
            }
        }
    }

    /// Compiles for `target` and compresses the result: the record and the object
    /// to store.
    async fn compile(
        &self,
        content: ContentHash,
        wasm: &[u8],
        target: &Target,
    ) -> Result<(ArtifactRef, Vec<u8>), PublishError> {
        let key = ArtifactKey {
            content,
            target: target.clone(),
            fingerprint: engine::fingerprint(target, &self.engine),
        };
        let (wasm, target, settings) = (wasm.to_vec(), target.clone(), self.engine.clone());
        tokio::task::spawn_blocking(move || {
            let cwasm = artifact::precompile(&wasm, &target, &settings)
                .map_err(|e| PublishError::Compile(e.to_string()))?;
            artifact::encoding::package(key, &cwasm)
                .map_err(|e| PublishError::Compile(format!("compressing the artifact: {e}")))
        })
        .await
        .map_err(|e| PublishError::Compile(e.to_string()))?
    }

    async fn store_all<'a>(
        &self,
        writer: &mut Writer<'a>,
        content: &ContentHash,
        bundle: &'a [u8],
        signature_json: &'a [u8],
        files: &'a BundleFiles,
        compiled: &'a [(ArtifactRef, Vec<u8>)],
    ) -> Result<Vec<ArtifactRef>, PublishError> {
        writer.put(&bundle_key(content), bundle).await?;
        writer.put(&signature_key(content), signature_json).await?;
        for (path, bytes) in files.under("ui/") {
            let rel = path.strip_prefix("ui/").unwrap_or(path);
            writer.put(&ui_key(content, rel), bytes).await?;
        }
        let mut artifacts = Vec::new();
        for (artifact, object) in compiled {
            writer.put(&artifact.object_key(), object).await?;
            artifacts.push(artifact.clone());
        }
        Ok(artifacts)
    }
}

/// Writes blobs and remembers which keys its own conditional puts created, to
/// remove only those on failure. Keys that already held the same bytes
/// (content addressing: another run, or an earlier publish, stored them) are
/// never this run's to delete.
struct Writer<'a> {
    blobs: &'a dyn BlobStore,
    /// Every key written, with its bytes.
    written: Vec<(String, &'a [u8])>,
    /// Indexes into `written` of the keys this run created.
    created: Vec<usize>,
}

impl<'a> Writer<'a> {
    fn new(blobs: &'a dyn BlobStore) -> Self {
        Writer {
            blobs,
            written: Vec::new(),
            created: Vec::new(),
        }
    }

    async fn put(&mut self, key: &str, bytes: &'a [u8]) -> Result<(), PublishError> {
        let outcome = self.blobs.put_created(key, bytes).await?;
        if outcome == PutOutcome::Created {
            self.created.push(self.written.len());
        }
        self.written.push((key.to_string(), bytes));
        Ok(())
    }

    /// Deletes the keys this run created; answers them with their bytes.
    async fn roll_back(self) -> Vec<(String, &'a [u8])> {
        let mut removed = Vec::new();
        for &i in self.created.iter().rev() {
            let (key, bytes) = &self.written[i];
            match self.blobs.delete(key).await {
                Ok(()) => removed.push((key.clone(), *bytes)),
                Err(e) => {
                    tracing::warn!(key, error = %e, "could not remove a blob of a failed publish")
                }
            }
        }
        removed
    }

    /// Puts back any written key that is gone (removed by a failed concurrent
    /// publish of the same bundle before this run registered it).
    async fn restore_missing(&self) -> Result<(), PublishError> {
        for (key, bytes) in &self.written {
            if !self.blobs.exists(key).await? {
                tracing::warn!(key, "restoring a blob a failed concurrent publish removed");
                self.blobs.put(key, bytes).await?;
            }
        }
        Ok(())
    }
}
