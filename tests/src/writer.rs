//! A guest that writes its request body to guest storage and answers 200 only when
//! the write was acknowledged: the fault tests count acknowledged writes with it
//! and read every one back afterwards, on any backend set.

use std::collections::BTreeMap;

use base64::Engine as _;
use runtime_core::artifact::ContentHash;
use runtime_core::backends::Backends;
use runtime_core::bundle::archive::{self, ArchiveLimits};
use runtime_core::execute::{QuotaLimits, QuotaPolicy};
use runtime_core::store::KvScope;
use runtime_core::{ExecuteRequest, Executor, RoutingHeaders};

use crate::signer::{Signer, install};

/// The tenant the writer is installed for.
pub const TENANT: &str = "acme";
/// The writer's extension id.
pub const EXTENSION: &str = "com.example.writer";
/// The storage namespace it writes to.
pub const NAMESPACE: &str = "ns";

/// `storage.put("ns", key = body, value = body)`; 200 only when the put succeeded,
/// else 400 + the `storage-error` index.
pub fn durable_writer() -> Vec<u8> {
    crate::guests::result_caller(
        "alga:extension/storage",
        "put",
        "i32 i32 i32 i32 i32 i32 i32 i64",
        "(i32.const 1024) (i32.const 2)
         (i32.load offset=80 (local.get 0)) (i32.load offset=84 (local.get 0))
         (i32.load offset=80 (local.get 0)) (i32.load offset=84 (local.get 0))
         (i32.const 0) (i64.const 0)",
        8,
        false,
        r#"(data (i32.const 1024) "ns")"#,
    )
}

/// The installed writer: its executor (quotas on, so every request also takes a
/// quota counter), the install's storage scope and the bundle's content hash.
pub struct Writer {
    pub executor: Executor,
    /// The same without quotas: the guest's storage call is the request's only
    /// write before its execution record.
    pub unmetered: Executor,
    pub scope: KvScope,
    pub content: ContentHash,
}

/// Publishes the writer (signed) and installs it for [`TENANT`] on `b`.
pub async fn install_writer(b: &Backends) -> Writer {
    let signer = Signer::new("faults");
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = serde_json::json!({
        "name": EXTENSION, "version": "1.0.0", "runtime": "wasm-js@1",
        "capabilities": ["cap:storage.kv"],
        "api": {"endpoints": [{"method": "POST", "path": "/", "handler": "dist/main.wasm"}]}
    });
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string()).expect("manifest");
    std::fs::create_dir_all(dir.path().join("dist")).expect("dist");
    std::fs::write(dir.path().join("dist/main.wasm"), durable_writer()).expect("wasm");
    let bundle = archive::pack_dir(dir.path(), &ArchiveLimits::default()).expect("pack");
    let published = signer.publish(&signer.publisher(b), &bundle).await;
    let installed = install(b, TENANT, EXTENSION, &["cap:storage.kv"], BTreeMap::new()).await;
    let executor = signer.executor(b).with_quotas(QuotaPolicy::new(
        b.quotas.clone(),
        QuotaLimits {
            per_minute: 1_000_000,
            per_day: 1_000_000,
        },
    ));
    Writer {
        executor,
        unmetered: signer.executor(b),
        scope: KvScope {
            tenant: TENANT.into(),
            install_id: installed.install_id,
        },
        content: published.content_hash,
    }
}

impl Writer {
    /// Sends `key` through the whole execute path; `Ok` only for a 200 (the write
    /// was acknowledged), else `"<status> <error code or None>"`.
    pub async fn write(&self, key: &str) -> Result<(), String> {
        write_through(&self.executor, &self.content, key).await
    }

    /// [`Writer::write`] through [`Writer::unmetered`].
    pub async fn write_unmetered(&self, key: &str) -> Result<(), String> {
        write_through(&self.unmetered, &self.content, key).await
    }
}

/// [`Writer::write`] on any executor serving the writer.
pub async fn write_through(ex: &Executor, content: &ContentHash, key: &str) -> Result<(), String> {
    let req = serde_json::json!({
        "context": {"tenant_id": TENANT, "extension_id": EXTENSION,
                    "content_hash": content.to_string()},
        "http": {"method": "POST", "path": "/",
                 "body_b64": base64::engine::general_purpose::STANDARD.encode(key)}
    });
    let req = ExecuteRequest::from_json(&serde_json::to_vec(&req).expect("json")).expect("request");
    let routing = RoutingHeaders {
        tenant: Some(TENANT.into()),
        extension: Some(EXTENSION.into()),
        request_id: None,
    };
    let env = ex.execute(&routing, &req).await.envelope;
    match (env.status, &env.error) {
        (200, None) => Ok(()),
        (status, error) => Err(format!("{status} {error:?}")),
    }
}
