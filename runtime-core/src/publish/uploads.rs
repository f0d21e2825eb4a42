//! Publishing from an upload area (the S3 upload bucket, or a local folder): a
//! bundle `<name>.tar.zst` and its signature `<name>.tar.zst.sig.json` arrive as two
//! objects in either order; whichever lands second triggers the publish. Every
//! attempt leaves one record beside the bundle, `<name>.tar.zst.result.json`; a
//! refused bundle leaves that record and nothing else.

use serde::Serialize;

use super::{PublishError, Publisher};
use crate::store::{BlobStore, Registered, StoreError};

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
    let Some(bundle) = uploads.get(&bundle_key).await? else {
        return Ok(UploadOutcome::Waiting {
            missing: bundle_key,
        });
    };
    let Some(signature) = uploads.get(&sig_key).await? else {
        return Ok(UploadOutcome::Waiting { missing: sig_key });
    };
    let outcome = match publisher.publish(&bundle, Some(&signature), &|_| {}).await {
        Ok(p) => UploadOutcome::Published {
            content_hash: p.content_hash.to_string(),
            extension: p.manifest.name.clone(),
            version: p.manifest.version.to_string(),
            outcome: match p.outcome {
                Registered::Created => "created",
                Registered::Unchanged => "unchanged",
            },
        },
        Err(PublishError::Store(e)) => return Err(StoreError::Unavailable(e)),
        Err(e) => UploadOutcome::Refused {
            code: e.code(),
            message: e.to_string(),
        },
    };
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
        .await?;
    Ok(outcome)
}
