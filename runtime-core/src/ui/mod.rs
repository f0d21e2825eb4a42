//! Static UI files of published bundles: `GET|HEAD /ext-ui/{extensionId}/{contentHash}/{path}`
//! as ALGA-COMPAT §4 describes, plus the install check (our registry or the host app)
//! and strict path rules.
//!
//! Platform-neutral: the `ui-assets` Lambda and `alga-lambda up` translate their
//! requests into a [`UiRequest`] and send the [`UiResponse`] back as it is.

pub mod access;
pub mod content_type;
pub mod headers;
pub mod response;
pub mod route;
pub mod settings;

use std::sync::Arc;

use crate::content::ContentHash;
use crate::store::{BlobStore, BoundedGet, StoreError};

pub use access::{AccessCache, AccessStats, Decision, InstallCheck, RegistryCheck, Unavailable};
pub use response::UiResponse;
pub use route::{Route, RouteError};
pub use settings::{DEFAULT_CSP, HostAppCheck, UiSettings};

/// Blob key of a UI file (`path` relative to the bundle's `ui/`); the same layout as
/// `publish::ui_key`, which needs the compiler feature this module must not.
pub fn asset_key(content: &ContentHash, path: &str) -> String {
    format!("ui/{}/{}", content.hex(), path)
}

/// One UI request as it arrived: method and the raw (still percent-encoded) path after
/// the host, e.g. `/ext-ui/com.example.hello/sha256%3Aab12…/assets/app.js`, and
/// If-None-Match.
#[derive(Debug, Clone, Copy)]
pub struct UiRequest<'a> {
    /// HTTP method (case-sensitive, as HTTP defines it).
    pub method: &'a str,
    /// Raw path, optionally with its query string.
    pub raw_path: &'a str,
    /// The `If-None-Match` header, if any.
    pub if_none_match: Option<&'a str>,
}

/// Serves UI files of published bundles.
pub struct UiServer {
    blobs: Arc<dyn BlobStore>,
    access: AccessCache,
    settings: UiSettings,
}

/// A file found for a request.
struct Found {
    name: String,
    /// Its bytes, or `None` when it is over the size bound (and was not read).
    bytes: Option<Vec<u8>>,
}

impl UiServer {
    /// A server reading files from `blobs` and deciding access through `registry`.
    pub fn new(
        blobs: Arc<dyn BlobStore>,
        registry: Arc<dyn crate::store::Registry>,
        settings: UiSettings,
    ) -> Self {
        Self::with_check(blobs, Arc::new(RegistryCheck::new(registry)), settings)
    }

    /// A server reading files from `blobs` and deciding access through `check`
    /// (the host app's, when it owns the installs), behind the access cache.
    pub fn with_check(
        blobs: Arc<dyn BlobStore>,
        check: Arc<dyn InstallCheck>,
        settings: UiSettings,
    ) -> Self {
        let access = AccessCache::new(
            check,
            settings.access_cache_entries,
            settings.access_cache_ttl,
            settings.access_negative_ttl,
            settings.backend_timeout,
        );
        UiServer {
            blobs,
            access,
            settings,
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &UiSettings {
        &self.settings
    }

    /// Registry-check counters (cache hits and lookups).
    pub fn access_stats(&self) -> AccessStats {
        self.access.stats()
    }

    /// Answers one request; never fails (errors are responses with a code).
    pub async fn serve(&self, req: &UiRequest<'_>) -> UiResponse {
        let head = match req.method {
            "GET" => false,
            "HEAD" => true,
            _ => {
                return UiResponse::error(
                    405,
                    "method_not_allowed",
                    "only GET and HEAD are allowed",
                    false,
                );
            }
        };
        let route = match route::parse(req.raw_path, self.settings.max_path_bytes) {
            Ok(r) => r,
            Err(e) => return route_error(&e, head),
        };
        let entry = match self
            .access
            .check(
                &route.extension_id,
                &route.content_hash,
                route.tenant.as_deref(),
            )
            .await
        {
            Ok(Decision::Allowed { entry }) => entry,
            Ok(Decision::Denied) => return not_found(head),
            Err(e) => {
                tracing::warn!(error = %e, "ui: install check failed");
                return unavailable(head);
            }
        };
        let found = match self.find(&route, &entry).await {
            Ok(Some(f)) => f,
            Ok(None) => return not_found(head),
            Err(e) => {
                tracing::warn!(error = %e, "ui: blob store failed");
                return unavailable(head);
            }
        };
        let Some(bytes) = found.bytes else {
            return UiResponse::error(
                500,
                "asset_too_large",
                "the file is larger than this server may send",
                head,
            );
        };
        let etag = headers::etag(&bytes);
        if req
            .if_none_match
            .is_some_and(|v| headers::if_none_match(v, &etag))
        {
            return UiResponse::not_modified(etag, &self.settings.csp);
        }
        UiResponse::file(&found.name, bytes, etag, &self.settings.csp, head)
    }

    /// The file for a route: the entry for an empty path; the file itself when the name
    /// has an extension (missing → not found, never the entry); for an app route
    /// without one, the file if it exists, else the entry (SPA fallback).
    async fn find(&self, route: &Route, entry: &str) -> Result<Option<Found>, StoreError> {
        let hash = &route.content_hash;
        if let Some(path) = &route.path {
            if let Some(found) = self.fetch(hash, path).await? {
                return Ok(Some(found));
            }
            if route::has_extension(path) {
                return Ok(None);
            }
        }
        self.fetch(hash, entry).await
    }

    /// Reads one file through the store's bounded read: a file over
    /// `max_asset_bytes` is refused from its size, never pulled into memory first.
    async fn fetch(&self, hash: &ContentHash, path: &str) -> Result<Option<Found>, StoreError> {
        let key = asset_key(hash, path);
        let max = self.settings.max_asset_bytes as u64;
        let got = tokio::time::timeout(
            self.settings.backend_timeout,
            self.blobs.get_bounded(&key, max),
        )
        .await
        .map_err(|_| {
            StoreError::Unavailable(format!(
                "no answer within {:?}",
                self.settings.backend_timeout
            ))
        })??;
        let bytes = match got {
            BoundedGet::Missing => return Ok(None),
            BoundedGet::TooLarge { .. } => None,
            BoundedGet::Found(bytes) => Some(bytes),
        };
        Ok(Some(Found {
            name: path.to_string(),
            bytes,
        }))
    }
}

fn route_error(e: &RouteError, head: bool) -> UiResponse {
    match e {
        RouteError::NotUiRoute => not_found(head),
        RouteError::TooLong(_) => UiResponse::error(414, "invalid_path", &e.to_string(), head),
        RouteError::InvalidHash(m) => UiResponse::error(400, "invalid_hash", m, head),
        RouteError::InvalidPath(m) => UiResponse::error(400, "invalid_path", m, head),
        RouteError::InvalidQuery(m) => UiResponse::error(400, "invalid_query", m, head),
    }
}

fn not_found(head: bool) -> UiResponse {
    UiResponse::error(404, "not_found", "no such UI file", head)
}

fn unavailable(head: bool) -> UiResponse {
    UiResponse::error(
        503,
        "backend_unavailable",
        "storage is unavailable; retry later",
        head,
    )
}
