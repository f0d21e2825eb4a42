//! Publishing from an upload area (the S3 upload bucket, or a local folder): a
//! bundle `<name>.tar.zst` and its signature `<name>.tar.zst.sig.json` arrive as two
//! objects in either order; whichever lands second triggers the publish. Every
//! attempt leaves one record beside the bundle, `<name>.tar.zst.result.json`; a
//! refused bundle leaves that record and nothing else.

use serde::Serialize;

use super::{PublishError, Publisher};
use crate::manifest::ManifestWarning;
use crate::store::{BlobStore, FileFetch, Registered, StoreError};

/// Suffix of a bundle object.
pub const BUNDLE_SUFFIX: &str = ".tar.zst";
/// Suffix of a signature object (after the bundle's name).
pub const SIGNATURE_SUFFIX: &str = ".sig.json";
/// Suffix of the result record (after the bundle's name).
pub const RESULT_SUFFIX: &str = ".result.json";

/// What happened to one uploaded object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum UploadOutcome {
    /// Not a bundle or signature object (e.g. our own result record).
    Ignored,
    /// Half of the pair is there; the other half's arrival will publish.
    Waiting {
        /// The object still missing.
        missing: String,
    },
    /// Published (or already published with the same bytes).
    Published {
        /// Bundle hash.
        content_hash: String,
        /// Extension.
        extension: String,
        /// Version.
        version: String,
        /// `created` or `unchanged`.
        outcome: &'static str,
        /// What the manifest validator ignored (field path and why).
        warnings: Vec<ManifestWarning>,
    },
    /// Refused: the bundle or signature is bad; retrying the same bytes won't help.
    Refused {
        /// Stable code (`bad_signature`, `invalid_manifest`, ...).
        code: &'static str,
        /// What was wrong.
        message: String,
    },
}

/// Publishes the pair an upload event names, and records the result beside it.
/// `Err` means a backend failed and the event should be retried.
pub async fn publish_upload(
    publisher: &Publisher,
    uploads: &dyn BlobStore,
    key: &str,
) -> Result<UploadOutcome, StoreError> {
    let bundle_key = if let Some(b) = key.strip_suffix(SIGNATURE_SUFFIX) {
        b.to_string()
    } else if key.ends_with(BUNDLE_SUFFIX) {
        key.to_string()
    } else {
        return Ok(UploadOutcome::Ignored);
    };
    if !bundle_key.ends_with(BUNDLE_SUFFIX) {
        return Ok(UploadOutcome::Ignored);
    }
    let sig_key = format!("{bundle_key}{SIGNATURE_SUFFIX}");
    let max_bundle = publisher.limits().max_compressed_bytes;
    let bundle = match read_bounded(uploads, &bundle_key, max_bundle).await? {
        Bounded::Missing => {
            return Ok(UploadOutcome::Waiting {
                missing: bundle_key,
            });
        }
        Bounded::TooLarge(size) => Err(UploadOutcome::Refused {
            code: "too_large",
            message: format!("the bundle is {size} bytes or more; the limit is {max_bundle}"),
        }),
        Bounded::Bytes(b) => Ok(b),
    };
    let signature = match read_bounded(uploads, &sig_key, SIGNATURE_MAX).await? {
        Bounded::Missing => return Ok(UploadOutcome::Waiting { missing: sig_key }),
        Bounded::TooLarge(size) => Err(UploadOutcome::Refused {
            code: "bad_signature",
            message: format!(
                "the signature file is {size} bytes or more; the limit is {SIGNATURE_MAX}"
            ),
        }),
        Bounded::Bytes(b) => Ok(b),
    };
    let outcome = match (bundle, signature) {
        (Err(refused), _) | (_, Err(refused)) => refused,
        (Ok(bundle), Ok(signature)) => publish_pair(publisher, &bundle, &signature).await?,
    };
    record_result(uploads, &bundle_key, &outcome).await?;
    Ok(outcome)
}

/// Largest signature sidecar accepted (a few hundred bytes in practice).
const SIGNATURE_MAX: u64 = 64 << 10;

/// An upload read with a size bound.
enum Bounded {
    Missing,
    TooLarge(u64),
    Bytes(Vec<u8>),
}

/// Streams an upload into a private temporary file (stopping past `max`, so an
/// oversized or hostile upload never fills memory), then reads it back.
async fn read_bounded(uploads: &dyn BlobStore, key: &str, max: u64) -> Result<Bounded, StoreError> {
    let tmp = crate::store::stream::temp_path_in(&std::env::temp_dir(), "alga-upload");
    let fetched = uploads.get_to_file(key, &tmp, max).await;
    let result = match fetched? {
        FileFetch::Missing => Ok(Bounded::Missing),
        FileFetch::TooLarge { size } => Ok(Bounded::TooLarge(size)),
        FileFetch::Written { .. } => tokio::fs::read(&tmp)
            .await
            .map(Bounded::Bytes)
            .map_err(|e| StoreError::Internal(format!("{}: {e}", tmp.display()))),
    };
    let _ = tokio::fs::remove_file(&tmp).await;
    result
}

/// Publishes a pair; `Err` only for a backend failure (the event is retried).
async fn publish_pair(
    publisher: &Publisher,
    bundle: &[u8],
    signature: &[u8],
) -> Result<UploadOutcome, StoreError> {
    Ok(
        match publisher.publish(bundle, Some(signature), &|_| {}).await {
            Ok(p) => UploadOutcome::Published {
                content_hash: p.content_hash.to_string(),
                extension: p.manifest.name.clone(),
                version: p.manifest.version.to_string(),
                outcome: match p.outcome {
                    Registered::Created => "created",
                    Registered::Unchanged => "unchanged",
                },
                warnings: p.warnings,
            },
            Err(PublishError::Store(e)) => return Err(StoreError::Unavailable(e)),
            Err(e) => UploadOutcome::Refused {
                code: e.code(),
                message: e.to_string(),
            },
        },
    )
}

/// Writes the one result record beside the bundle.
async fn record_result(
    uploads: &dyn BlobStore,
    bundle_key: &str,
    outcome: &UploadOutcome,
) -> Result<(), StoreError> {
    let record = serde_json::json!({
        "bundle": bundle_key,
        "result": outcome,
        "at": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    });
    let result_key = format!("{bundle_key}{RESULT_SUFFIX}");
    // A re-upload under the same name gets a fresh record.
    uploads.delete(&result_key).await?;
    uploads
        .put(
            &result_key,
            &serde_json::to_vec_pretty(&record).unwrap_or_default(),
        )
        .await
}
