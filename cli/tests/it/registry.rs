//! The CLI against a local data directory: the signed-bundle round trip, exit codes,
//! and two processes publishing and installing at once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use test_support::guests;

const EXAMPLE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hello");

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn alga(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_alga-lambda"))
            .current_dir(self.dir.path())
            .env_remove("SIGNING_TRUST_BUNDLE")
            .env_remove("ALGA_PUBLISH_STRICT")
            .env("ALGA_DATA", self.path("data"))
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.alga(args);
        assert!(
            out.status.success(),
            "alga-lambda {args:?} failed ({:?})\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn example_built() -> &'static str {
    assert!(
        Path::new(EXAMPLE_DIR).join("dist/main.wasm").exists(),
        "examples/hello/dist/main.wasm missing: run scripts/build-example"
    );
    EXAMPLE_DIR
}

#[test]
fn keygen_pack_sign_publish_install_invoke() {
    let w = Workspace::new();
    let example = example_built();
    w.ok(&["keygen", "--key-id", "ci", "--out", "key.json", "--trust"]);
    let hash = w.ok(&["pack", example, "--out", "hello.tar.zst"]);
    assert!(hash.trim().starts_with("sha256:"), "{hash}");
    // Not signed yet: publish refuses (exit 1) and says why.
    let unsigned = w.alga(&["publish", "hello.tar.zst"]);
    assert_eq!(unsigned.status.code(), Some(1), "{}", stderr(&unsigned));
    assert!(
        stderr(&unsigned).contains("signature_missing"),
        "{}",
        stderr(&unsigned)
    );

    w.ok(&["sign", "hello.tar.zst", "--key", "key.json"]);
    assert!(w.ok(&["verify", "hello.tar.zst"]).starts_with("ok: "));
    let published = w.ok(&["publish", "hello.tar.zst"]);
    assert_eq!(
        published.trim(),
        format!("com.example.hello 0.1.0 {} published", hash.trim())
    );
    // Publishing the same bytes again is a success with no change.
    assert!(
        w.ok(&["publish", "hello.tar.zst"])
            .trim()
            .ends_with("unchanged")
    );

    let listed = w.ok(&["list"]);
    assert!(listed.contains("com.example.hello 0.1.0"), "{listed}");
    let installed = w.ok(&[
        "install",
        "com.example.hello",
        "--tenant",
        "acme",
        "--grant-requested",
    ]);
    assert!(installed.contains("enabled"), "{installed}");
    assert!(installed.contains("cap:storage.kv"), "{installed}");

    let response = w.ok(&[
        "invoke",
        "--tenant",
        "acme",
        "--extension",
        "com.example.hello",
        "GET",
        "/api/hello",
    ]);
    assert!(response.starts_with("HTTP 200\n"), "{response}");
    assert!(response.contains("\"tenant\":\"acme\""), "{response}");
    assert!(response.contains("\"visits\":1"), "{response}");

    // Disabled: invoke gets install_disabled (exit 1).
    w.ok(&["disable", "com.example.hello", "--tenant", "acme"]);
    let off = w.alga(&[
        "invoke",
        "--tenant",
        "acme",
        "--extension",
        "com.example.hello",
        "GET",
        "/api/hello",
    ]);
    assert_eq!(off.status.code(), Some(1));
    assert!(
        stderr(&off).contains("install_disabled"),
        "{}",
        stderr(&off)
    );
    // Another tenant: not installed.
    let other = w.alga(&[
        "invoke",
        "--tenant",
        "globex",
        "--extension",
        "com.example.hello",
    ]);
    assert_eq!(other.status.code(), Some(1));
    assert!(
        stderr(&other).contains("not_installed"),
        "{}",
        stderr(&other)
    );
    // A tampered bundle does not verify.
    let mut bytes = std::fs::read(w.path("hello.tar.zst")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(w.path("hello.tar.zst"), bytes).unwrap();
    let bad = w.alga(&["verify", "hello.tar.zst"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("hash_mismatch"), "{}", stderr(&bad));
}

/// A manifest with Alga's component `entry` and a `schedulable` flag (shapes of
/// Alga's own samples): `publish` warns and publishes, `publish --strict` refuses.
#[test]
fn publish_warns_about_alga_manifest_keys_and_strict_refuses_them() {
    let w = Workspace::new();
    let ext = w.path("ext");
    std::fs::create_dir_all(ext.join("dist")).unwrap();
    std::fs::create_dir_all(ext.join("ui")).unwrap();
    std::fs::copy(
        Path::new(example_built()).join("dist/main.wasm"),
        ext.join("dist/main.wasm"),
    )
    .unwrap();
    std::fs::write(ext.join("ui/index.html"), "<p>hi</p>").unwrap();
    std::fs::write(
        ext.join("manifest.json"),
        r#"{"name":"com.example.alga","version":"0.2.0","runtime":"wasm-js@1","entry":"dist/main.wasm",
            "ui":{"type":"iframe","entry":"ui/index.html"},
            "api":{"endpoints":[{"method":"GET","path":"/api/hello","handler":"dist/main","schedulable":true}]}}"#,
    )
    .unwrap();
    w.ok(&["keygen", "--key-id", "ci", "--out", "key.json", "--trust"]);
    let hash = w.ok(&["pack", "ext", "--out", "alga.tar.zst"]);
    w.ok(&["sign", "alga.tar.zst", "--key", "key.json"]);

    let strict = w.alga(&["publish", "alga.tar.zst", "--strict"]);
    assert_eq!(strict.status.code(), Some(1), "{}", stderr(&strict));
    assert!(
        stderr(&strict).contains("invalid_manifest")
            && stderr(&strict).contains("manifest.json: entry: unknown key \"entry\""),
        "{}",
        stderr(&strict)
    );
    assert!(!w.ok(&["list"]).contains("com.example.alga"));

    let out = w.alga(&["publish", "alga.tar.zst"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("com.example.alga 0.2.0 {} published", hash.trim())
    );
    let warnings: Vec<&str> = std::str::from_utf8(&out.stderr)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with("warning: manifest.json: entry: unknown key \"entry\" ignored")
    );
    assert!(warnings[1].starts_with(
        "warning: manifest.json: api.endpoints[0].schedulable: unknown key \"schedulable\" ignored"
    ));
}

#[test]
fn two_processes_publishing_and_installing_at_once_never_corrupt_the_registry() {
    let w = Workspace::new();
    w.ok(&["keygen", "--key-id", "ci", "--out", "key.json", "--trust"]);
    // Two versions of a small extension (a WAT component: compiling is not what is
    // under test here, the registry is).
    for version in ["1.0.0", "2.0.0"] {
        let dir = w.path(version);
        std::fs::create_dir_all(dir.join("dist")).unwrap();
        std::fs::create_dir_all(dir.join("ui")).unwrap();
        std::fs::write(
            dir.join("manifest.json"),
            format!(r#"{{"name":"com.example.hello","version":"{version}","runtime":"wasm-js@1","capabilities":["cap:storage.kv"],"ui":{{"type":"iframe","entry":"ui/index.html"}}}}"#),
        )
        .unwrap();
        std::fs::write(dir.join("dist/main.wasm"), guests::hello()).unwrap();
        std::fs::write(dir.join("ui/index.html"), "<p>hi</p>").unwrap();
        let bundle = format!("{version}.tar.zst");
        w.ok(&["pack", dir.to_str().unwrap(), "--out", &bundle]);
        w.ok(&["sign", &bundle, "--key", "key.json"]);
    }
    let spawn = |bundle: &str, tenant: &str| {
        let data = w.path("data");
        let bin = env!("CARGO_BIN_EXE_alga-lambda");
        let dir = w.dir.path().to_path_buf();
        let (bundle, tenant) = (bundle.to_string(), tenant.to_string());
        std::thread::spawn(move || {
            let run = |args: &[&str]| {
                let out = Command::new(bin)
                    .current_dir(&dir)
                    .env_remove("SIGNING_TRUST_BUNDLE")
                    .env("ALGA_DATA", &data)
                    .args(args)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            run(&["publish", &bundle]);
            for i in 0..5 {
                let t = format!("{tenant}-{i}");
                run(&[
                    "install",
                    "com.example.hello",
                    "--tenant",
                    &t,
                    "--grant-requested",
                ]);
                run(&["disable", "com.example.hello", "--tenant", &t]);
                run(&["enable", "com.example.hello", "--tenant", &t]);
            }
        })
    };
    let a = spawn("1.0.0.tar.zst", "alpha");
    let b = spawn("2.0.0.tar.zst", "beta");
    a.join().unwrap();
    b.join().unwrap();

    let listed = w.ok(&["list"]);
    assert!(listed.contains("com.example.hello 1.0.0"), "{listed}");
    assert!(listed.contains("com.example.hello 2.0.0"), "{listed}");
    for tenant in ["alpha", "beta"] {
        for i in 0..5 {
            let installs = w.ok(&["list", "--tenant", &format!("{tenant}-{i}")]);
            assert_eq!(installs.lines().count(), 1, "{installs}");
            assert!(installs.contains(" enabled "), "{installs}");
        }
    }
    let hello = w.ok(&[
        "invoke",
        "--tenant",
        "alpha-0",
        "--extension",
        "com.example.hello",
    ]);
    assert!(hello.ends_with("hello\n"), "{hello}");
    let integrity = Command::new("python3")
        .args(["-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('pragma integrity_check').fetchone()[0])"])
        .arg(w.path("data/registry.db"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&integrity.stdout).trim(), "ok");
}
