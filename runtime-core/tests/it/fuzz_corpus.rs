//! The fuzz corpora on stable Rust: every file of every `fuzz/corpus/<target>/` runs
//! through the check its fuzz target runs (`test_support::fuzz_checks`, the same
//! source the targets include), so CI catches a regression on any input the fuzzer
//! ever kept without needing nightly. Crashes the fuzzer found are kept below as
//! named tests. `write_seeds` (ignored) made the corpora's first inputs from real
//! parts: the example's manifest, a bundle packed by the archive writer around a
//! WAT guest, a sidecar signed by the signing code.

use std::path::{Path, PathBuf};

use runtime_core::bundle::archive::{self, ArchiveLimits};
use runtime_core::bundle::provenance;
use runtime_core::bundle::trust::TrustBundle;
use test_support::fuzz_checks::{self, SignatureInput, TARGETS, signature_input, trusted_key};
use test_support::{guests, signer};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_file_passes_its_targets_check() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (target, check) in TARGETS {
        let files = corpus_files(target);
        assert!(!files.is_empty(), "fuzz/corpus/{target}/ is empty");
        for file in files {
            let data = std::fs::read(&file).unwrap();
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                failures.push(file.display().to_string());
            }
            replayed += 1;
        }
    }
    assert!(failures.is_empty(), "failing corpus files: {failures:#?}");
    assert!(replayed >= TARGETS.len());
}

#[test]
fn every_fuzz_target_has_a_check_and_a_corpus() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    on_disk.sort();
    let mut known: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    known.sort();
    assert_eq!(
        on_disk, known,
        "fuzz/fuzz_targets and fuzz_checks::TARGETS differ"
    );
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for name in &known {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
        assert!(
            fuzz_dir().join("corpus").join(name).is_dir(),
            "no corpus for {name}"
        );
    }
}

/// The seeds of each target, from real parts.
fn seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut out: Vec<(&str, &str, Vec<u8>)> = Vec::new();
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello/manifest.json");
    out.push(("manifest", "example-hello", std::fs::read(hello).unwrap()));
    out.push((
        "manifest",
        "schedules-wildcard",
        br#"{"name":"@acme/tool","version":"1.2.*","runtime":"wasm-js@1","publisher":"Acme",
            "capabilities":["cap:http.fetch","log.emit","cap:scheduler.manage"],
            "api":{"endpoints":[{"method":"GET","path":"/api/items/:id","handler":"dist/main.wasm"},
                               {"method":"POST","path":"/jobs/nightly","handler":"dist/main.wasm"}]},
            "schedules":[{"endpoint":"/jobs/nightly","cron":"0 3 * * *","timezone":"Europe/Berlin",
                          "name":"nightly","payload":{"full":true},"enabled":true}],
            "events":[{"topic":"orders.created","handler":"/jobs/nightly"}],
            "entry":"dist/main.wasm","sbom":"sbom.spdx.json"}"#
            .to_vec(),
    ));

    let pattern = |bytes: &[u8]| bytes.to_vec();
    out.push((
        "endpoint_match",
        "literal-and-param",
        pattern(&[2, 0, 1, 2, 0, 4, 0, 0, 2, 0, 2, 0, 5, 0]),
    ));
    out.push((
        "endpoint_match",
        "traversal",
        pattern(&[1, 0, 2, 0, 4, 0, 0, 2, 0, 8, 0]),
    ));

    let bundle = signer::endpoint_bundle("com.example.fuzz", "1.0.0", &guests::hello());
    assert!(bundle.len() < 64 << 10, "a WAT bundle is small");
    let mut compressed = vec![0u8];
    compressed.extend_from_slice(&bundle);
    out.push(("bundle_archive", "packed-wat-bundle", compressed));
    let mut tar = vec![1u8];
    tar.extend(zstd::decode_all(&bundle[..]).unwrap());
    out.push(("bundle_archive", "packed-wat-bundle-tar", tar));
    out.push((
        "bundle_archive",
        "structured",
        vec![2, 3, 40, 4, 0, 1, 0, 2, 1, 1, 5, 0, 9, 2],
    ));
    archive::unpack(&bundle, &ArchiveLimits::default()).expect("the seed bundle unpacks");

    let (key, content) = trusted_key();
    let sidecar = key.sign(&content).to_json();
    let trust = TrustBundle::new()
        .with_key(key.public())
        .revoke("old-key")
        .to_json();
    for (name, kind, doc) in [
        ("sidecar", SignatureInput::Sidecar, sidecar.clone()),
        (
            "public-key",
            SignatureInput::PublicKey,
            key.public().to_json(),
        ),
        ("key-file", SignatureInput::KeyFile, key.to_json()),
        ("trust-bundle", SignatureInput::TrustBundle, trust),
        ("recorded-sidecar", SignatureInput::RecordedSigned, sidecar),
        (
            "recorded-pin",
            SignatureInput::RecordedPinned,
            provenance::host_pin_json(&content),
        ),
    ] {
        out.push(("signature", name, signature_input(kind, doc.as_bytes())));
    }

    let hash = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let with_mode = |mode: u8, text: &str| {
        let mut v = vec![mode];
        v.extend_from_slice(text.as_bytes());
        v
    };
    out.push((
        "ui_path",
        "asset",
        with_mode(
            0,
            &format!("/ext-ui/com.example.hello/{hash}/assets/app.js?tenant=t-1&path=/x"),
        ),
    ));
    out.push((
        "ui_path",
        "scoped-entry",
        with_mode(0, &format!("/ext-ui/@acme%2Ftool/sha256%3A{}", &hash[7..])),
    ));
    out.push((
        "ui_path",
        "encoded-traversal",
        with_mode(1, "%2e%2e/%c0%ae/x.js"),
    ));
    out.push((
        "ui_path",
        "asset-path",
        with_mode(2, "assets/logo%20big.png"),
    ));
    out.push(("ui_path", "decoded", with_mode(3, "a//b/index.html")));

    for (name, text) in [
        (
            "business-hours",
            "*/15 9-17 * * 1-5\nEurope/Berlin\n28401120",
        ),
        ("leap-day", "0 0 29 2 *"),
        ("spring-forward", "30 2 * * *\nAmerica/New_York\n28500000"),
        ("both-days", "0 12 1,15 * 0,7\nUTC"),
        ("ranges-steps", "5-55/10 0-23/6 1-31/2 1-12/3 *"),
    ] {
        out.push(("cron", name, text.as_bytes().to_vec()));
    }

    let request = format!(
        r#"{{"context":{{"tenant_id":"t-1","extension_id":"com.example.hello","content_hash":"{hash}",
            "request_id":"r-1","install_id":"i-1","config":{{"greeting":"hi"}}}},
            "http":{{"method":"POST","path":"/api/echo?x=1","query":{{"b":"c d"}},
                     "headers":{{"content-type":"application/json"}},"body_b64":"eyJhIjoxfQ=="}},
            "limits":{{"timeout_ms":5000,"memory_mb":64}},"providers":["cap:log.emit"],
            "secret_envelope":{{"ciphertext_b64":"e30=","algorithm":"inline/base64"}},
            "user":{{"user_id":"u-1","user_type":"internal","company_name":"Acme"}}}}"#
    );
    out.push(("execute_request", "full-request", with_mode(0, &request)));
    out.push((
        "execute_request",
        "structured",
        vec![1, 200, 3, 7, 1, 9, 0, 4, 250, 17, 3, 3, 3, 3],
    ));

    for (name, text) in [
        (
            "public-allowlisted",
            "api.example.com,*.svc.test:443\nhttps://api.example.com/x\n93.184.216.34",
        ),
        ("hex-loopback", "127.0.0.1\nhttp://0x7f.1/\n127.0.0.1"),
        (
            "mapped-v6",
            "[::ffff:7f00:1]:8080\nhttp://[::ffff:127.0.0.1]:8080/\n::ffff:127.0.0.1",
        ),
        (
            "metadata",
            "169.254.169.254\nhttp://169.254.169.254/latest/meta-data/\nfd00:ec2::254",
        ),
        (
            "credentials",
            "allowed.test\nhttps://allowed.test@evil.test/\n8.8.8.8",
        ),
    ] {
        out.push(("egress", name, with_mode(0, text)));
    }
    out.push((
        "egress",
        "structured",
        vec![1, 0, 5, 1, 2, 3, 4, 1, 2, 7, 1, 0],
    ));
    out
}

#[test]
fn seeds_pass_their_checks() {
    for (target, name, data) in seeds() {
        let ok = std::panic::catch_unwind(|| fuzz_checks::run(target, &data));
        assert!(ok.is_ok(), "seed {target}/{name}");
    }
}

/// Writes the seeds into `fuzz/corpus/<target>/seed-<name>` (run once by hand:
/// `cargo test -p runtime-core --test it -- fuzz_corpus::write_seeds --ignored`).
#[test]
#[ignore]
fn write_seeds() {
    for (target, name, data) in seeds() {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    }
}

/// Failed `egress`'s fixed-point invariant (an input written while reading the
/// allowlist parser, run through the built target before its fuzzing run): the
/// entry `.*.x` was kept as `*.x`, which a policy built again from the canonical
/// list (as an install's list is, merged into the session's) read as `x` and all
/// its subdomains.
#[test]
fn egress_allowlist_dot_star_prefix_is_canonical() {
    fuzz_checks::egress(b"\x00.*.x\nhttp://a.x/\n");
}

/// Found by `egress` 16 s into its run: the entry `\0\u{5}paals\t\t\t\t\t\t.` kept its
/// tabs once the trailing dot was gone, and its canonical text, trimmed again, lost
/// them. Entries with whitespace or control characters in the host now allow nothing.
#[test]
fn egress_allowlist_whitespace_inside_the_host() {
    fuzz_checks::egress(include_bytes!("fuzz_regressions/egress-whitespace-host"));
}
