//! UI assets end to end: real signed bundles published into the local backends
//! (files + SQLite), installed, then served by `UiServer` exactly as the ui-assets
//! Lambda and `alga-lambda up` do.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use runtime_core::artifact::ArtifactRef;
use runtime_core::artifact::ContentHash;
use runtime_core::backends::Backends;
use runtime_core::bundle::archive::{self, ArchiveLimits};
use runtime_core::bundle::signature::{Signature, SigningKey};
use runtime_core::bundle::trust::TrustBundle;
use runtime_core::engine::Target;
use runtime_core::publish::{Publisher, ui_key};
use runtime_core::store::{
    BlobStore, InstallRecord, InstallRequest, Registered, Registry, RegistryError, StoreError,
    VersionRecord,
};
use runtime_core::ui::{DEFAULT_CSP, UiRequest, UiResponse, UiServer, UiSettings, asset_key};
use test_support::guests;

const EXT: &str = "com.example.ui";
const OTHER_EXT: &str = "com.example.other";

const INDEX: &str = "<!doctype html><title>ui</title><script src=\"assets/app.js\"></script>";
const APP_JS: &str = "document.title = 'loaded';";
const STYLE: &str = "body { color: #123 }";
/// PNG magic plus bytes that are not UTF-8: the body must come back byte for byte.
const LOGO: &[u8] = b"\x89PNG\r\n\x1a\n\x00\xff\xfe\x80binary";

fn manifest(name: &str, version: &str) -> String {
    format!(
        r#"{{"name":"{name}","version":"{version}","runtime":"wasm-js@1",
            "ui":{{"type":"iframe","entry":"ui/index.html"}},
            "api":{{"endpoints":[{{"method":"GET","path":"/","handler":"dist/main.wasm"}}]}}}}"#
    )
}

/// A bundle with a UI of html, js, css, png, woff2 and an extension-less file.
fn pack(name: &str, version: &str, index: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("manifest.json"), manifest(name, version)).unwrap();
    std::fs::create_dir_all(p.join("dist")).unwrap();
    std::fs::write(p.join("dist/main.wasm"), guests::hello()).unwrap();
    for d in ["ui/assets", "ui/img", "ui/fonts"] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    std::fs::write(p.join("ui/index.html"), index).unwrap();
    std::fs::write(p.join("ui/assets/app.js"), APP_JS).unwrap();
    std::fs::write(p.join("ui/assets/style.css"), STYLE).unwrap();
    std::fs::write(p.join("ui/img/logo.png"), LOGO).unwrap();
    std::fs::write(p.join("ui/fonts/inter.woff2"), b"wOF2font").unwrap();
    std::fs::write(p.join("ui/LICENSE"), "MIT").unwrap();
    archive::pack_dir(p, &ArchiveLimits::default()).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    local: Backends,
    /// Installed bundle of EXT.
    installed: ContentHash,
    /// A published, never installed, version of EXT.
    uninstalled: ContentHash,
    /// The installed bundle of OTHER_EXT.
    other: ContentHash,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let local = stores_local::backends(&dir.path().join("data")).unwrap();
        let key = SigningKey::generate("ui-test").unwrap();
        let publisher = Publisher::new(
            local.blobs.clone(),
            local.registry.clone(),
            TrustBundle::default().with_key(key.public()),
            test_support::test_config().engine,
        )
        .with_targets(vec![Target::host()]);
        let publish = |bundle: Vec<u8>| {
            let sig = Signature::sign(&ContentHash::of(&bundle), &key).to_json();
            let publisher = &publisher;
            async move {
                publisher
                    .publish(&bundle, Some(sig.as_bytes()), &|_| {})
                    .await
                    .unwrap()
                    .content_hash
            }
        };
        let installed = publish(pack(EXT, "1.0.0", INDEX)).await;
        let uninstalled = publish(pack(EXT, "1.1.0", "<p>v1.1</p>")).await;
        let other = publish(pack(OTHER_EXT, "1.0.0", "<p>other</p>")).await;
        for (ext, version) in [(EXT, "1.0.0"), (OTHER_EXT, "1.0.0")] {
            local
                .registry
                .install(&InstallRequest {
                    tenant: "acme".into(),
                    extension_id: ext.into(),
                    version: Some(version.into()),
                    grants: vec![],
                    config: Default::default(),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        Fixture {
            _dir: dir,
            local,
            installed,
            uninstalled,
            other,
        }
    }

    fn server(&self, settings: UiSettings) -> UiServer {
        UiServer::new(
            self.local.blobs.clone(),
            self.local.registry.clone(),
            settings,
        )
    }

    /// `/ext-ui/EXT/<installed hash>` + `tail`.
    fn url(&self, tail: &str) -> String {
        format!("/ext-ui/{EXT}/{}{tail}", self.installed)
    }
}

async fn get(server: &UiServer, path: &str) -> UiResponse {
    send(server, "GET", path, None).await
}

async fn send(server: &UiServer, method: &str, path: &str, inm: Option<&str>) -> UiResponse {
    server
        .serve(&UiRequest {
            method,
            raw_path: path,
            if_none_match: inm,
        })
        .await
}

fn etag_of(bytes: &[u8]) -> String {
    format!(
        "\"sha256-{}\"",
        hex::encode(runtime_core::artifact::sha256(bytes))
    )
}

fn sorted_headers(r: &UiResponse) -> Vec<(String, String)> {
    let mut h = r.headers.clone();
    h.sort();
    h
}

fn expected_200(content_type: &str, body: &[u8], csp: Option<&str>) -> Vec<(String, String)> {
    let mut h = vec![
        (
            "cache-control".to_string(),
            "public, max-age=31536000, immutable".to_string(),
        ),
        ("content-length".to_string(), body.len().to_string()),
        ("content-type".to_string(), content_type.to_string()),
        ("etag".to_string(), etag_of(body)),
        ("x-content-type-options".to_string(), "nosniff".to_string()),
    ];
    if let Some(csp) = csp {
        h.push(("content-security-policy".to_string(), csp.to_string()));
    }
    h.sort();
    h
}

fn assert_error(r: &UiResponse, status: u16, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {r:?}");
    assert_eq!(r.code, Some(code), "{what}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("etag"), None, "{what}: errors carry no validator");
    if !r.body.is_empty() {
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"], code, "{what}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }
}

#[tokio::test]
async fn serves_html_js_css_png_woff2_with_exact_headers() {
    let f = Fixture::new().await;
    let s = f.server(UiSettings::default());
    let cases: [(&str, &str, &[u8]); 5] = [
        ("/index.html", "text/html", INDEX.as_bytes()),
        ("/assets/app.js", "text/javascript", APP_JS.as_bytes()),
        ("/assets/style.css", "text/css", STYLE.as_bytes()),
        ("/img/logo.png", "image/png", LOGO),
        ("/fonts/inter.woff2", "font/woff2", b"wOF2font"),
    ];
    for (tail, ct, body) in cases {
        let r = get(&s, &f.url(tail)).await;
        assert_eq!(r.status, 200, "{tail}: {r:?}");
        assert_eq!(r.code, None);
        assert_eq!(r.body, body, "{tail}");
        assert_eq!(
            sorted_headers(&r),
            // Every file carries the CSP.
            expected_200(ct, body, Some(DEFAULT_CSP)),
            "{tail}"
        );
    }
    // The percent-encoded hash spelling (either case) serves the same file.
    let hex = f.installed.hex();
    for spelling in [format!("sha256%3A{hex}"), format!("sha256%3a{hex}")] {
        let r = get(&s, &format!("/ext-ui/{EXT}/{spelling}/assets/app.js")).await;
        assert_eq!((r.status, r.body.as_slice()), (200, APP_JS.as_bytes()));
    }
}

#[tokio::test]
async fn if_none_match_gives_304_for_exact_list_star_and_weak() {
    let f = Fixture::new().await;
    let s = f.server(UiSettings::default());
    let js = f.url("/assets/app.js");
    let etag = etag_of(APP_JS.as_bytes());
    for inm in [
        etag.clone(),
        format!("\"nope\", {etag}"),
        format!("\"a\",\"b\" ,  {etag} , \"c\""),
        "*".to_string(),
        format!("W/{etag}"),
    ] {
        for method in ["GET", "HEAD"] {
            let r = send(&s, method, &js, Some(&inm)).await;
            assert_eq!(r.status, 304, "{method} {inm}");
            assert!(r.body.is_empty());
            assert_eq!(
                sorted_headers(&r),
                vec![
                    (
                        "cache-control".into(),
                        "public, max-age=31536000, immutable".into()
                    ),
                    ("content-security-policy".into(), DEFAULT_CSP.into()),
                    ("etag".into(), etag.clone()),
                    ("x-content-type-options".into(), "nosniff".into()),
                ],
                "{inm}"
            );
        }
    }
    // A 304 for HTML keeps its CSP.
    let html_etag = etag_of(INDEX.as_bytes());
    let r = send(&s, "GET", &f.url("/index.html"), Some(&html_etag)).await;
    assert_eq!(r.status, 304);
    assert_eq!(r.header("content-security-policy"), Some(DEFAULT_CSP));
    assert_eq!(r.header("etag"), Some(html_etag.as_str()));
    // Non-matching or malformed validators get the full response.
    for inm in [
        "\"sha256-0000\"".to_string(),
        etag.trim_matches('"').to_string(),
        format!("{etag}x"),
        html_etag.clone(),
        String::new(),
    ] {
        let r = send(&s, "GET", &js, Some(&inm)).await;
        assert_eq!(r.status, 200, "{inm:?}");
        assert_eq!(r.body, APP_JS.as_bytes());
    }
}

#[tokio::test]
async fn head_has_the_get_headers_and_no_body() {
    let f = Fixture::new().await;
    let s = f.server(UiSettings::default());
    for tail in ["/index.html", "/img/logo.png", ""] {
        let g = get(&s, &f.url(tail)).await;
        let h = send(&s, "HEAD", &f.url(tail), None).await;
        assert_eq!(h.status, 200);
        assert!(h.body.is_empty(), "{tail}");
        assert!(!g.body.is_empty());
        assert_eq!(h.headers, g.headers, "{tail}");
        assert_eq!(
            h.header("content-length"),
            Some(g.body.len().to_string().as_str())
        );
    }
    let r = send(&s, "HEAD", &f.url("/missing.js"), None).await;
    assert_error(&r, 404, "not_found", "HEAD missing");
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn only_get_and_head_are_allowed() {
    let f = Fixture::new().await;
    let s = f.server(UiSettings::default());
    for method in [
        "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "get", "CONNECT",
    ] {
        let r = send(&s, method, &f.url("/index.html"), None).await;
        assert_error(&r, 405, "method_not_allowed", method);
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
}

#[tokio::test]
async fn bad_hashes_are_400_invalid_hash() {
    let f = Fixture::new().await;
    let s = f.server(UiSettings::default());
    let hex = f.installed.hex();
    for path in [
        format!("/ext-ui/{EXT}/{hex}/index.html"),
        format!("/ext-ui/{EXT}/sha256:{}/index.html", &hex[..63]),
        format!("/ext-ui/{EXT}/sha256:{hex}00/index.html"),
        format!("/ext-ui/{EXT}/sha256:{}g/index.html", &hex[..63]),
        format!("/ext-ui/{EXT}/sha512:{hex}/index.html"),
        format!("/ext-ui/{EXT}/SHA256:{hex}/index.html"),
        format!("/ext-ui/{EXT}/sha256%3B{hex}/index.html"),
        format!("/ext-ui/{EXT}/sha256%253A{hex}/index.html"),
        format!("/ext-ui/{EXT}/sha256:/index.html"),
        format!("/ext-ui/{EXT}/index.html"),
        format!("/ext-ui/{EXT}"),
        format!("/ext-ui/{EXT}/"),
    ] {
        assert_error(&get(&s, &path).await, 400, "invalid_hash", &path);
    }
}

#[tokio::test]
async fn each_path_rule_is_400_invalid_path() {
    let f = Fixture::new().await;
    let s = f.server(UiSettings::default());
    for tail in [
        "//index.html",          // leading / after the hash segment
        "/a%00.js",              // NUL
        "/a%0a.js",              // control character
        "/a%7f.js",              // DEL
        "/a%c2%85.js",           // C1 control (NEL)
        "/assets\\app.js",       // backslash
        "/./index.html",         // . segment
        "/assets/../index.html", // .. segment
        "/.env",                 // dot-prefixed
        "/assets/.hidden.js",    // dot-prefixed file
        "/.git/config",          // dot-prefixed directory
        "/app.exe",              // unknown extension
        "/index.htm",            // unknown extension
        "/app.js.",              // empty extension
        "/app.js%20",            // trailing space makes an unknown extension
        "/a%zz.js",              // malformed escape
        "/a%2.js",               // truncated escape
        "/%ff.js",               // not UTF-8
        "/a%25.js",              // a literal % after decoding once
    ] {
        let path = f.url(tail);
        assert_error(&get(&s, &path).await, 400, "invalid_path", &path);
    }
    // Impossible extension ids are refused the same way.
    for ext in ["..", "%2e%2e", ".hidden", "a%00b", "a b", "a%252fb"] {
        let path = format!("/ext-ui/{ext}/{}/index.html", f.installed);
        assert_error(&get(&s, &path).await, 400, "invalid_path", &path);
    }
    // Over 2 KiB of raw path: 414 with the same code.
    let long = f.url(&format!("/{}.js", "a".repeat(2100)));
    assert_error(&get(&s, &long).await, 414, "invalid_path", "long path");
    // Collapsed slashes are fine.
    let r = get(&s, &f.url("/assets//app.js")).await;
    assert_eq!((r.status, r.body.as_slice()), (200, APP_JS.as_bytes()));
}

#[tokio::test]
async fn traversal_in_every_encoding_is_refused() {
    let f = Fixture::new().await;
    let s = f.server(UiSettings::default());
    // Something worth stealing sits next to the UI files: the bundle and its signature.
    let hex = f.installed.hex();
    assert!(
        f.local
            .blobs
            .get(&format!("bundles/{hex}/bundle.sig.json"))
            .await
            .unwrap()
            .is_some()
    );
    let sig = format!("bundles/{hex}/bundle.sig.json");
    let spellings = [
        format!("/../../{sig}"),
        format!("/%2e%2e/%2e%2e/{sig}"),
        format!("/%2E%2e/%2e%2E/{sig}"),
        format!("/.%2e/.%2e/{sig}"),
        format!("/%2e./%2e./{sig}"),
        format!("/..%2f..%2f{sig}"),
        format!("/..%2F..%2F{sig}"),
        format!("/%2e%2e%2f%2e%2e%2f{sig}"),
        format!("/..%5c..%5c{sig}"),
        format!("/..%5C..%5C{sig}"),
        format!("/..\\..\\{sig}"),
        format!("/%252e%252e/%252e%252e/{sig}"),
        format!("/%252e%252e%252f{sig}"),
        format!("/..%252f..%252f{sig}"),
        format!("/%25252e%25252e/{sig}"),
        format!("/%c0%ae%c0%ae/%c0%ae%c0%ae/{sig}"),
        format!("/%c0%2e%c0%2e/{sig}"),
        format!("/%e0%80%ae%e0%80%ae/{sig}"),
        format!("/%c0%af{sig}"),
        format!("/..%00/{sig}"),
        format!("/%00../{sig}"),
        format!("/assets/..;/..;/{sig}"),
        format!("/assets/%2e%2e;/{sig}"),
        format!("/assets/./../../{sig}"),
        "/%2fetc%2fpasswd".to_string(),
        "/%2Fetc/passwd".to_string(),
        "/..%2f".to_string(),
        "/..".to_string(),
        "/.".to_string(),
        "/assets/..".to_string(),
        format!("/....//....//{sig}"),
        format!("/.../{sig}"),
        "/%5c%5cserver%5cshare%5cx.js".to_string(),
        "/C:%5cwindows%5cwin.ini".to_string(),
        "/..%c1%9c..%c1%9cx.js".to_string(),
        "/%u002e%u002e/x.js".to_string(),
    ];
    assert!(spellings.len() >= 20);
    for tail in &spellings {
        let path = f.url(tail);
        let r = get(&s, &path).await;
        assert_ne!(r.status, 200, "{path} must never be served");
        assert_error(&r, 400, "invalid_path", &path);
        // The whole path, also as the extension id position.
        let swapped = format!("/ext-ui{tail}/{}/index.html", f.installed);
        let r = get(&s, &swapped).await;
        assert_ne!(r.status, 200, "{swapped} must never be served");
        assert!(
            [400, 404].contains(&r.status),
            "{swapped}: {} {:?}",
            r.status,
            r.code
        );
    }
}

#[tokio::test]
async fn unicode_lookalikes_are_simply_unknown_files() {
    let f = Fixture::new().await;
    let s = f.server(UiSettings::default());
    // One-dot leader, fullwidth full stop and solidus, division slash: no ASCII dot or
    // slash, so these are app routes (→ the entry) or unknown files — never a way out.
    for tail in [
        "/%e2%80%a4%e2%80%a4/%e2%80%a4%e2%80%a4/bundles",
        "/%ef%bc%8e%ef%bc%8e%ef%bc%8f%ef%bc%8e%ef%bc%8e%ef%bc%8fbundles",
        "/%e2%88%95etc%e2%88%95passwd",
        "/\u{2024}\u{2024}/x",
    ] {
        let r = get(&s, &f.url(tail)).await;
        assert_eq!(r.status, 200, "{tail}");
        assert_eq!(r.body, INDEX.as_bytes(), "{tail}: only the entry");
    }
    // With an extension that is not an ASCII dot + known extension → unknown file.
    let r = get(&s, &f.url("/app%ef%bc%8ejs")).await;
    assert_eq!(
        r.body,
        INDEX.as_bytes(),
        "a fullwidth dot is not an extension"
    );
    let r = get(&s, &f.url("/%e2%80%a4%e2%80%a4/app.js")).await;
    assert_error(&r, 404, "not_found", "lookalike directory");
}

#[tokio::test]
async fn spa_fallback_serves_the_entry_for_app_routes() {
    let f = Fixture::new().await;
    let s = f.server(UiSettings::default());
    for tail in [
        "",
        "/",
        "/index.html",
        "/settings",
        "/settings/",
        "/settings/profile",
        "/a.b/route",
        "?path=/settings&tenant=acme&extensionId=x",
        "/index.html?path=/settings&tenant=acme",
    ] {
        let r = get(&s, &f.url(tail)).await;
        assert_eq!(r.status, 200, "{tail}");
        assert_eq!(r.body, INDEX.as_bytes(), "{tail}");
        assert_eq!(r.header("content-type"), Some("text/html"));
        assert_eq!(r.header("content-security-policy"), Some(DEFAULT_CSP));
    }
    // An extension-less file that exists is served as itself.
    let r = get(&s, &f.url("/LICENSE")).await;
    assert_eq!(r.body, b"MIT");
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.header("content-security-policy"), Some(DEFAULT_CSP));
    // A directory is not a file: app route → entry.
    let r = get(&s, &f.url("/assets")).await;
    assert_eq!(r.body, INDEX.as_bytes());
}

#[tokio::test]
async fn a_missing_asset_with_an_extension_is_404_not_the_entry() {
    let f = Fixture::new().await;
    let s = f.server(UiSettings::default());
    for tail in [
        "/x.js",
        "/assets/missing.css",
        "/img/none.png",
        "/deep/a/b/c.html",
    ] {
        assert_error(&get(&s, &f.url(tail)).await, 404, "not_found", tail);
    }
}

#[tokio::test]
async fn only_installed_bundles_of_that_extension_are_served() {
    let f = Fixture::new().await;
    let s = f.server(UiSettings::default());
    // Another extension's installed bundle under this extension's id.
    let r = get(&s, &format!("/ext-ui/{EXT}/{}/index.html", f.other)).await;
    assert_error(&r, 404, "not_found", "foreign hash");
    // ... and the same answer as for a hash nobody published.
    let unknown = ContentHash::of(b"nothing");
    let r2 = get(&s, &format!("/ext-ui/{EXT}/{unknown}/index.html")).await;
    assert_eq!((r.status, &r.body), (r2.status, &r2.body));
    // This extension's bundle under an unknown id.
    let r = get(
        &s,
        &format!("/ext-ui/com.example.nope/{}/index.html", f.installed),
    )
    .await;
    assert_error(&r, 404, "not_found", "unknown extension");
    // Published but not installed by anyone.
    let r = get(&s, &format!("/ext-ui/{EXT}/{}/index.html", f.uninstalled)).await;
    assert_error(&r, 404, "not_found", "uninstalled version");
    // The other extension's own URL works.
    let r = get(&s, &format!("/ext-ui/{OTHER_EXT}/{}/index.html", f.other)).await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, b"<p>other</p>".as_slice())
    );
}

#[tokio::test]
async fn a_tenant_in_the_query_must_own_the_install_as_alga_checks() {
    let f = Fixture::new().await;
    // globex installs the same extension under Alga's ids, on the other version.
    const ALGA_EXT: &str = "3f2b8c1e-7d4a-4b9e-9c1d-2a6f0e5b7c11";
    f.local
        .registry
        .install(&InstallRequest {
            tenant: "globex".into(),
            extension_id: EXT.into(),
            version: Some("1.1.0".into()),
            host_extension_id: Some(ALGA_EXT.into()),
            host_install_id: Some("9a7c0d2e-1b3f-4c5d-8e6f-0a1b2c3d4e5f".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let s = f.server(UiSettings::default());
    // The iframe src Alga's host page builds: registry UUID, encoded hash, tenant=.
    let alga_src = |hash: &ContentHash, tenant: &str| {
        format!(
            "/ext-ui/{ALGA_EXT}/sha256%3A{}/index.html?path=%2F&tenant={tenant}&extensionId={ALGA_EXT}",
            hash.hex()
        )
    };
    let r = get(&s, &alga_src(&f.uninstalled, "globex")).await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, b"<p>v1.1</p>".as_slice())
    );
    // Another tenant's tenant= is the same 404 as a hash nobody published.
    let r = get(&s, &alga_src(&f.uninstalled, "acme")).await;
    assert_error(&r, 404, "not_found", "acme does not run 1.1.0");
    // acme's bundle is not globex's, under either id.
    let r = get(&s, &alga_src(&f.installed, "globex")).await;
    assert_error(&r, 404, "not_found", "acme's bundle for globex");
    let r = get(&s, &f.url("/index.html?tenant=globex")).await;
    assert_error(&r, 404, "not_found", "acme's bundle for globex, our id");
    let r = get(&s, &f.url("/index.html?tenant=acme")).await;
    assert_eq!(r.status, 200);
    // Without tenant= any install of the extension serves it (assets the page loads).
    assert_eq!(get(&s, &f.url("/assets/app.js")).await.status, 200);
    // A malformed tenant= is a 400, never a lookup.
    let lookups = s.access_stats().lookups;
    let r = get(&s, &f.url("/index.html?tenant=a%00b")).await;
    assert_error(&r, 400, "invalid_query", "bad tenant");
    assert_eq!(s.access_stats().lookups, lookups);
}

#[tokio::test]
async fn decisions_are_cached_and_a_fresh_install_shows_up_after_the_negative_ttl() {
    let f = Fixture::new().await;
    // Long TTLs, so the cache answers however slow this machine is.
    let s = f.server(UiSettings {
        access_cache_ttl: Duration::from_secs(3600),
        access_negative_ttl: Duration::from_secs(3600),
        ..UiSettings::default()
    });
    for _ in 0..3 {
        assert_eq!(get(&s, &f.url("/assets/app.js")).await.status, 200);
    }
    let stats = s.access_stats();
    assert_eq!((stats.lookups, stats.hits), (1, 2));
    // Negative decisions are cached too (within their TTL).
    let uninstalled = format!("/ext-ui/{EXT}/{}/index.html", f.uninstalled);
    assert_eq!(get(&s, &uninstalled).await.status, 404);
    assert_eq!(get(&s, &uninstalled).await.status, 404);
    assert_eq!(s.access_stats().lookups, 2);

    // With a zero negative TTL a new install is visible on the next request.
    let s = f.server(UiSettings {
        access_negative_ttl: Duration::ZERO,
        ..UiSettings::default()
    });
    assert_eq!(get(&s, &uninstalled).await.status, 404);
    f.local
        .registry
        .install(&InstallRequest {
            tenant: "globex".into(),
            extension_id: EXT.into(),
            version: Some("1.1.0".into()),
            grants: vec![],
            config: Default::default(),
            ..Default::default()
        })
        .await
        .unwrap();
    let r = get(&s, &uninstalled).await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, b"<p>v1.1</p>".as_slice())
    );
}

#[tokio::test]
async fn csp_variants_from_settings() {
    let f = Fixture::new().await;
    let settings = |pairs: &[(&str, &str)]| {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        UiSettings::from_lookup(|k| map.get(k).cloned()).unwrap()
    };
    let cases = [
        (settings(&[]), DEFAULT_CSP.to_string()),
        (
            settings(&[("EXT_UI_FRAME_ANCESTORS", "https://psa.example.com")]),
            format!("{DEFAULT_CSP}; frame-ancestors https://psa.example.com"),
        ),
        (
            settings(&[
                ("EXT_UI_FRAME_ANCESTORS", "'self'"),
                (
                    "EXT_UI_CONTENT_SECURITY_POLICY",
                    "default-src 'none'; img-src data:",
                ),
            ]),
            "default-src 'none'; img-src data:".to_string(),
        ),
    ];
    for (settings, csp) in cases {
        let s = f.server(settings);
        let r = get(&s, &f.url("/index.html")).await;
        assert_eq!(r.header("content-security-policy"), Some(csp.as_str()));
        let r = send(&s, "GET", &f.url(""), Some(&etag_of(INDEX.as_bytes()))).await;
        assert_eq!(r.status, 304);
        assert_eq!(r.header("content-security-policy"), Some(csp.as_str()));
        // And on every other file too.
        let r = get(&s, &f.url("/assets/app.js")).await;
        assert_eq!(r.header("content-security-policy"), Some(csp.as_str()));
    }
}

#[tokio::test]
async fn files_over_the_size_bound_are_not_sent() {
    let f = Fixture::new().await;
    let s = f.server(UiSettings {
        max_asset_bytes: 10,
        ..UiSettings::default()
    });
    let r = get(&s, &f.url("/index.html")).await;
    assert_error(&r, 500, "asset_too_large", "big index");
    let r = get(&s, &f.url("/fonts/inter.woff2")).await;
    assert_eq!(r.status, 200, "8 bytes fit");
}

/// The real local blob store behind a switch that makes every read fail, the way a
/// broken disk or an S3 outage would.
struct Flaky {
    inner: Arc<dyn BlobStore>,
    down: AtomicBool,
}

#[async_trait]
impl BlobStore for Flaky {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("disk on fire".into()));
        }
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.inner.put(key, bytes).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
}

#[tokio::test]
async fn a_blob_store_failure_is_503_and_the_next_request_works() {
    let f = Fixture::new().await;
    let flaky = Arc::new(Flaky {
        inner: f.local.blobs.clone(),
        down: AtomicBool::new(true),
    });
    let s = UiServer::new(
        flaky.clone(),
        f.local.registry.clone(),
        UiSettings::default(),
    );
    for tail in ["/assets/app.js", "/settings", ""] {
        let r = get(&s, &f.url(tail)).await;
        assert_error(&r, 503, "backend_unavailable", tail);
    }
    flaky.down.store(false, Ordering::SeqCst);
    let r = get(&s, &f.url("/assets/app.js")).await;
    assert_eq!((r.status, r.body.as_slice()), (200, APP_JS.as_bytes()));
}

#[tokio::test]
async fn the_asset_key_is_where_publish_puts_ui_files() {
    let f = Fixture::new().await;
    assert_eq!(
        asset_key(&f.installed, "assets/app.js"),
        ui_key(&f.installed, "assets/app.js")
    );
    let stored = f
        .local
        .blobs
        .get(&asset_key(&f.installed, "img/logo.png"))
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(LOGO));
}

/// The real SQLite registry behind a switch that makes the reads the UI needs fail.
struct FlakyRegistry {
    inner: Arc<dyn Registry>,
    down: AtomicBool,
}

impl FlakyRegistry {
    fn check(&self) -> Result<(), RegistryError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("database gone".into()).into());
        }
        Ok(())
    }
}

#[async_trait]
impl Registry for FlakyRegistry {
    async fn register_version(&self, v: &VersionRecord) -> Result<Registered, RegistryError> {
        self.inner.register_version(v).await
    }
    async fn get_version(
        &self,
        extension_id: &str,
        version: &str,
    ) -> Result<Option<VersionRecord>, RegistryError> {
        self.inner.get_version(extension_id, version).await
    }
    async fn version_by_hash(
        &self,
        content: &ContentHash,
    ) -> Result<Option<VersionRecord>, RegistryError> {
        self.check()?;
        self.inner.version_by_hash(content).await
    }
    async fn list_versions(&self, extension_id: &str) -> Result<Vec<VersionRecord>, RegistryError> {
        self.inner.list_versions(extension_id).await
    }
    async fn list_extensions(&self) -> Result<Vec<String>, RegistryError> {
        self.inner.list_extensions().await
    }
    async fn put_artifact(
        &self,
        content: &ContentHash,
        artifact: &ArtifactRef,
    ) -> Result<(), RegistryError> {
        self.inner.put_artifact(content, artifact).await
    }
    async fn install(&self, req: &InstallRequest) -> Result<InstallRecord, RegistryError> {
        self.inner.install(req).await
    }
    async fn uninstall(&self, tenant: &str, extension_id: &str) -> Result<(), RegistryError> {
        self.inner.uninstall(tenant, extension_id).await
    }
    async fn set_enabled(
        &self,
        tenant: &str,
        extension_id: &str,
        enabled: bool,
    ) -> Result<InstallRecord, RegistryError> {
        self.inner.set_enabled(tenant, extension_id, enabled).await
    }
    async fn get_install(
        &self,
        tenant: &str,
        extension_id: &str,
    ) -> Result<Option<InstallRecord>, RegistryError> {
        self.inner.get_install(tenant, extension_id).await
    }
    async fn list_installs(&self, tenant: &str) -> Result<Vec<InstallRecord>, RegistryError> {
        self.inner.list_installs(tenant).await
    }
    async fn list_installs_of(
        &self,
        extension_id: &str,
    ) -> Result<Vec<InstallRecord>, RegistryError> {
        self.check()?;
        self.inner.list_installs_of(extension_id).await
    }
    async fn list_installs_by_host_extension(
        &self,
        host_extension_id: &str,
    ) -> Result<Vec<InstallRecord>, RegistryError> {
        self.check()?;
        self.inner
            .list_installs_by_host_extension(host_extension_id)
            .await
    }
    async fn subscriptions(
        &self,
        tenant: &str,
        topic: &str,
    ) -> Result<Vec<runtime_core::store::Subscription>, RegistryError> {
        self.check()?;
        self.inner.subscriptions(tenant, topic).await
    }
}

#[tokio::test]
async fn a_registry_failure_is_503_never_cached() {
    let f = Fixture::new().await;
    let registry = Arc::new(FlakyRegistry {
        inner: f.local.registry.clone(),
        down: AtomicBool::new(true),
    });
    let s = UiServer::new(
        f.local.blobs.clone(),
        registry.clone(),
        UiSettings::default(),
    );
    for _ in 0..2 {
        let r = get(&s, &f.url("/index.html")).await;
        assert_error(&r, 503, "backend_unavailable", "registry down");
    }
    registry.down.store(false, Ordering::SeqCst);
    let r = get(&s, &f.url("/index.html")).await;
    assert_eq!((r.status, r.body.as_slice()), (200, INDEX.as_bytes()));
    assert_eq!(s.access_stats().lookups, 3, "failures were not cached");
}

/// An SVG (or any file a browser may render as a document when
/// it is opened directly) runs script on the UI origin unless its response carries
/// the CSP, so every file response carries it: 200 and 304, every content type.
#[tokio::test]
async fn sec_11_every_ui_file_response_carries_the_csp() {
    let f = Fixture::new().await;
    let s = f.server(UiSettings::default());
    for tail in [
        "/index.html",
        "/assets/app.js",
        "/assets/style.css",
        "/img/logo.png",
        "/fonts/inter.woff2",
        "/LICENSE",
        "/settings",
    ] {
        let r = get(&s, &f.url(tail)).await;
        assert_eq!(r.status, 200, "{tail}");
        assert_eq!(
            r.header("content-security-policy"),
            Some(DEFAULT_CSP),
            "200 {tail}"
        );
        let etag = r.header("etag").unwrap().to_string();
        for method in ["GET", "HEAD"] {
            let r = send(&s, method, &f.url(tail), Some(&etag)).await;
            assert_eq!(r.status, 304, "{method} {tail}");
            assert_eq!(
                r.header("content-security-policy"),
                Some(DEFAULT_CSP),
                "304 {method} {tail}"
            );
        }
    }
}

/// Counts the bytes whole-object reads hand out, per key prefix.
struct CountingReads {
    inner: Arc<dyn BlobStore>,
    whole_bytes: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl BlobStore for CountingReads {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let got = self.inner.get(key).await?;
        if let Some(b) = &got {
            self.whole_bytes.fetch_add(b.len(), Ordering::SeqCst);
        }
        Ok(got)
    }
    async fn get_bounded(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> Result<runtime_core::store::BoundedGet, StoreError> {
        // The real store's bounded read (the local one checks the file's size).
        self.inner.get_bounded(key, max_bytes).await
    }
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.inner.put(key, bytes).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
}

/// A UI file over the size bound is refused from its size,
/// before its bytes are read (a huge file must not be pulled into memory first).
#[tokio::test]
async fn sec_21_oversized_ui_files_are_refused_before_being_read() {
    let f = Fixture::new().await;
    let counting = Arc::new(CountingReads {
        inner: f.local.blobs.clone(),
        whole_bytes: Default::default(),
    });
    let s = UiServer::new(
        counting.clone(),
        f.local.registry.clone(),
        UiSettings {
            max_asset_bytes: 10,
            ..UiSettings::default()
        },
    );
    for tail in ["/index.html", "/assets/app.js", "", "/settings"] {
        let r = get(&s, &f.url(tail)).await;
        assert_error(&r, 500, "asset_too_large", tail);
    }
    assert_eq!(
        counting.whole_bytes.load(Ordering::SeqCst),
        0,
        "no oversized file was read whole"
    );
    // Files within the bound are still served (and read).
    let r = get(&s, &f.url("/fonts/inter.woff2")).await;
    assert_eq!((r.status, r.body.as_slice()), (200, b"wOF2font".as_slice()));
}
