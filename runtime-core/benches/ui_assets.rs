//! ui-assets in process: `UiServer::serve` for an HTML file (200, full body, CSP) and
//! a revalidation with its ETag (304), over the local backends (files + SQLite) with
//! a real signed bundle published and installed — what the ui-assets Lambda and
//! `alga-lambda up` call for every request.

use test_support as support;

mod common;

use std::time::Duration;

use common::Samples;
use criterion::{Criterion, criterion_group};
use runtime_core::artifact::ContentHash;
use runtime_core::bundle::archive::{self, ArchiveLimits};
use runtime_core::bundle::signature::{Signature, SigningKey};
use runtime_core::bundle::trust::TrustBundle;
use runtime_core::engine::Target;
use runtime_core::publish::Publisher;
use runtime_core::store::InstallRequest;
use runtime_core::ui::{UiRequest, UiServer, UiSettings};
use support::guests;

const EXT: &str = "com.example.ui";

/// A bundle whose UI is a 2 KiB HTML page (a typical single-page entry).
fn pack() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join("manifest.json"),
        format!(
            r#"{{"name":"{EXT}","version":"1.0.0","runtime":"wasm-js@1",
                "ui":{{"type":"iframe","entry":"ui/index.html"}},
                "api":{{"endpoints":[{{"method":"GET","path":"/","handler":"dist/main.wasm"}}]}}}}"#
        ),
    )
    .unwrap();
    std::fs::create_dir_all(p.join("dist")).unwrap();
    std::fs::write(p.join("dist/main.wasm"), guests::hello()).unwrap();
    std::fs::create_dir_all(p.join("ui")).unwrap();
    let html = format!(
        "<!doctype html><title>ui</title><script src=\"app.js\"></script>{}",
        "<p>hello</p>".repeat(170)
    );
    std::fs::write(p.join("ui/index.html"), html).unwrap();
    archive::pack_dir(p, &ArchiveLimits::default()).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local = stores_local::backends(&dir.path().join("data")).unwrap();
    let hash: ContentHash = rt.block_on(async {
        let key = SigningKey::generate("bench").unwrap();
        let publisher = Publisher::new(
            local.blobs.clone(),
            local.registry.clone(),
            TrustBundle::default().with_key(key.public()),
            support::test_config().engine,
        )
        .with_targets(vec![Target::host()]);
        let bundle = pack();
        let sig = Signature::sign(&ContentHash::of(&bundle), &key).to_json();
        let hash = publisher
            .publish(&bundle, Some(sig.as_bytes()), &|_| {})
            .await
            .unwrap()
            .content_hash;
        local
            .registry
            .install(&InstallRequest {
                tenant: "acme".into(),
                extension_id: EXT.into(),
                version: Some("1.0.0".into()),
                grants: vec![],
                config: Default::default(),
                ..Default::default()
            })
            .await
            .unwrap();
        hash
    });
    let server = UiServer::new(
        local.blobs.clone(),
        local.registry.clone(),
        UiSettings::default(),
    );
    let path = format!("/ext-ui/{EXT}/{hash}/index.html?path=%2F&tenant=acme");
    let first = rt.block_on(server.serve(&UiRequest {
        method: "GET",
        raw_path: &path,
        if_none_match: None,
    }));
    assert_eq!(first.status, 200);
    let etag = first
        .headers
        .iter()
        .find(|(k, _)| k == "etag")
        .map(|(_, v)| v.clone())
        .expect("etag");

    let mut g = c.benchmark_group("ui-assets");
    for (name, inm, status) in [("200", None, 200), ("304", Some(etag.as_str()), 304)] {
        let samples = Samples::default();
        g.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (server, path, samples) = (&server, &path, &samples);
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += samples
                            .time(async {
                                let r = server
                                    .serve(&UiRequest {
                                        method: "GET",
                                        raw_path: path,
                                        if_none_match: inm,
                                    })
                                    .await;
                                assert_eq!(r.status, status);
                                r
                            })
                            .await;
                    }
                    total
                }
            })
        });
        samples.save(&format!("ui-assets.{name}"));
    }
    g.finish();
}

fn config() -> Criterion {
    let (samples, secs) = if common::smoke() { (10, 1) } else { (50, 3) };
    Criterion::default()
        .sample_size(samples)
        .measurement_time(Duration::from_secs(secs))
        .warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
