//! Publishing from an upload area (the S3 upload bucket, or a local folder): a
//! bundle `<name>.tar.zst` and its signature `<name>.tar.zst.sig.json` arrive as two
//! objects in either order; whichever lands second triggers the publish. Every
//! attempt leaves one record beside the bundle, `<name>.tar.zst.result.json`; a
//! refused bundle leaves that record and nothing else.
//!
//! Alga's bundle store layout is understood too: `sha256/<hex>/bundle.tar.zst` or
//! `tenants/<t>/extensions/<id>/sha256/<hex>/bundle.tar.zst`, with Alga's
//! `bundle.sha256` sidecar (`<hex>` and a newline) beside it. Signed (our
//! `bundle.tar.zst.sig.json` beside it), it publishes as any signed pair; unsigned,
//! it publishes only under `ALGA_BUNDLE_TRUST=host-pinned`, when the key's hash,
//! the sidecar's and the bytes' all agree.

use serde::Serialize;

use super::{PublishError, Published, Publisher};
use crate::content::ContentHash;
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
    if let Some(stored) = AlgaStoreKey::parse(key) {
        return publish_from_alga_store(publisher, uploads, &stored).await;
    }
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

/// Whether `key` is an object of Alga's bundle store layout (at the bucket's
/// root, whatever the upload prefix).
pub fn is_bundle_store_key(key: &str) -> bool {
    AlgaStoreKey::parse(key).is_some()
}

/// A key of Alga's bundle store: the folder `…sha256/<hex>/` and its hash.
#[derive(Debug, PartialEq, Eq)]
struct AlgaStoreKey {
    folder: String,
    hash: ContentHash,
}

/// Alga's bundle object and its hash sidecar.
const ALGA_BUNDLE: &str = "bundle.tar.zst";
const ALGA_SIDECAR: &str = "bundle.sha256";

impl AlgaStoreKey {
    /// `[tenants/<t>/extensions/<id>/]sha256/<64 lowercase hex>/(bundle.tar.zst|bundle.sha256)`.
    fn parse(key: &str) -> Option<Self> {
        let parts: Vec<&str> = key.split('/').collect();
        let (last, rest) = parts.split_last()?;
        if *last != ALGA_BUNDLE && *last != ALGA_SIDECAR {
            return None;
        }
        let (hex, rest) = rest.split_last()?;
        let (sha, prefix) = rest.split_last()?;
        let lowercase_hex =
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if *sha != "sha256" || !lowercase_hex {
            return None;
        }
        let tenant_scoped = matches!(
            prefix,
            ["tenants", t, "extensions", e] if plain(t) && plain(e)
        );
        if !prefix.is_empty() && !tenant_scoped {
            return None;
        }
        Some(AlgaStoreKey {
            folder: format!("{}/", parts[..parts.len() - 1].join("/")),
            hash: ContentHash::parse(hex)?,
        })
    }
}

/// A key component that names something: not empty, not `.` or `..`.
fn plain(component: &str) -> bool {
    !matches!(component, "" | "." | "..")
}

/// Largest `bundle.sha256` sidecar accepted (65 bytes in practice).
const SIDECAR_MAX: u64 = 1 << 10;

/// Publishes a bundle of Alga's store (see the module docs).
async fn publish_from_alga_store(
    publisher: &Publisher,
    uploads: &dyn BlobStore,
    stored: &AlgaStoreKey,
) -> Result<UploadOutcome, StoreError> {
    let bundle_key = format!("{}{ALGA_BUNDLE}", stored.folder);
    let sidecar_key = format!("{}{ALGA_SIDECAR}", stored.folder);
    let signature_key = format!("{bundle_key}{SIGNATURE_SUFFIX}");
    let max_bundle = publisher.limits().max_compressed_bytes;
    let bundle = match read_bounded(uploads, &bundle_key, max_bundle).await? {
        Bounded::Missing => {
            return Ok(UploadOutcome::Waiting {
                missing: bundle_key,
            });
        }
        Bounded::TooLarge(size) => {
            let outcome = UploadOutcome::Refused {
                code: "too_large",
                message: format!("the bundle is {size} bytes or more; the limit is {max_bundle}"),
            };
            record_result(uploads, &bundle_key, &outcome).await?;
            return Ok(outcome);
        }
        Bounded::Bytes(b) => b,
    };
    let outcome = match read_bounded(uploads, &signature_key, SIGNATURE_MAX).await? {
        Bounded::Bytes(signature) => publish_pair(publisher, &bundle, &signature).await?,
        Bounded::TooLarge(size) => UploadOutcome::Refused {
            code: "bad_signature",
            message: format!(
                "the signature file is {size} bytes or more; the limit is {SIGNATURE_MAX}"
            ),
        },
        Bounded::Missing => match read_bounded(uploads, &sidecar_key, SIDECAR_MAX).await? {
            Bounded::Missing => {
                return Ok(UploadOutcome::Waiting {
                    missing: sidecar_key,
                });
            }
            Bounded::TooLarge(size) => UploadOutcome::Refused {
                code: "bad_sidecar",
                message: format!("{ALGA_SIDECAR} is {size} bytes or more; it holds one hash"),
            },
            Bounded::Bytes(sidecar) => match sidecar_hash(&sidecar) {
                Some(h) if h == stored.hash => {
                    outcome_of(publisher.publish_host_pinned(&bundle, &h, &|_| {}).await)?
                }
                Some(h) => UploadOutcome::Refused {
                    code: "hash_mismatch",
                    message: format!(
                        "{ALGA_SIDECAR} names {h} but the object key names {}",
                        stored.hash
                    ),
                },
                None => UploadOutcome::Refused {
                    code: "bad_sidecar",
                    message: format!("{ALGA_SIDECAR} holds no sha256 (64 hex digits)"),
                },
            },
        },
    };
    record_result(uploads, &bundle_key, &outcome).await?;
    Ok(outcome)
}

/// The hash a `bundle.sha256` sidecar names: hex, optionally `sha256:`-prefixed,
/// surrounding whitespace ignored.
fn sidecar_hash(bytes: &[u8]) -> Option<ContentHash> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    (hex.len() == 64).then(|| ContentHash::parse(hex)).flatten()
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
    outcome_of(publisher.publish(bundle, Some(signature), &|_| {}).await)
}

/// A publish result as an upload outcome; `Err` only for a backend failure.
fn outcome_of(result: Result<Published, PublishError>) -> Result<UploadOutcome, StoreError> {
    Ok(match result {
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
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algas_store_keys_are_recognised_and_nothing_else() {
        let hex = "ab".repeat(32);
        for key in [
            format!("sha256/{hex}/bundle.tar.zst"),
            format!("sha256/{hex}/bundle.sha256"),
            format!("tenants/t1/extensions/e1/sha256/{hex}/bundle.tar.zst"),
        ] {
            let parsed = AlgaStoreKey::parse(&key).unwrap_or_else(|| panic!("{key}"));
            assert_eq!(parsed.hash.hex(), hex);
            assert!(key.starts_with(&parsed.folder), "{key}: {}", parsed.folder);
        }
        for key in [
            format!("sha256/{hex}/manifest.json"),
            format!("sha256/{}/bundle.tar.zst", "AB".repeat(32)),
            format!("sha256/{}/bundle.tar.zst", "ab".repeat(31)),
            format!("uploads/sha256/{hex}/bundle.tar.zst"),
            format!("tenants/../extensions/e1/sha256/{hex}/bundle.tar.zst"),
            format!("tenants//extensions/e1/sha256/{hex}/bundle.tar.zst"),
            format!("tenants/t1/extensions/e1/x/sha256/{hex}/bundle.tar.zst"),
            "uploads/hello-0.1.0.tar.zst".to_string(),
        ] {
            assert_eq!(AlgaStoreKey::parse(&key), None, "{key}");
        }
    }

    #[test]
    fn a_sidecar_holds_one_hash() {
        let h = ContentHash::of(b"x");
        assert_eq!(sidecar_hash(format!("{}\n", h.hex()).as_bytes()), Some(h));
        assert_eq!(sidecar_hash(h.to_string().as_bytes()), Some(h));
        assert_eq!(sidecar_hash(b"not a hash"), None);
        assert_eq!(sidecar_hash(format!("{} extra", h.hex()).as_bytes()), None);
    }
}
