//! `alga-lambda new`: each template is created in a temp dir, installed, built
//! with `npm run build` and served with `up`, and its endpoints answer. One
//! `npm install` (the ts template's, `--prefer-offline`: the packages are in npm's
//! cache once the example is built) serves both: the js template's pins are a
//! subset of the same tree, so it links the same node_modules. Timings are
//! printed (`--nocapture`), never asserted.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use test_support::http_client::send;

use crate::up::{events, read_events, start_in};

fn alga(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_alga-lambda"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "alga-lambda {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn npm(dir: &Path, args: &[&str]) -> f64 {
    let started = Instant::now();
    let out = Command::new("npm")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("npm runs (Node 20 + npm are required)");
    assert!(
        out.status.success(),
        "npm {args:?} in {}:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed().as_secs_f64()
}

#[test]
fn new_refuses_what_it_cannot_make() {
    let root = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_alga-lambda"))
            .current_dir(root.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["new", "x", "--capabilities", "cap:everything"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error[unknown_capabilities]: unknown capability cap:everything — choose from cap:context.read,"),
        "{err}"
    );
    assert!(!root.path().join("x").exists());

    std::fs::create_dir_all(root.path().join("taken")).unwrap();
    std::fs::write(root.path().join("taken/file"), "").unwrap();
    let out = run(&["new", "taken"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("error[already_exists]: taken already exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["new", "bad name"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("error[invalid_id]:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn new_templates_build_and_serve() {
    let root = tempfile::tempdir().unwrap();
    let said = alga(root.path(), &["new", "ts-ext"]);
    assert!(
        said.contains("created ts-ext (TypeScript, extension ts-ext)"),
        "{said}"
    );
    assert!(said.contains("alga-lambda up ts-ext"), "{said}");
    alga(
        root.path(),
        &[
            "new",
            "js-ext",
            "--template",
            "js",
            "--id",
            "com.example.js-ext",
            "--capabilities",
            "cap:storage.kv,secrets.get",
        ],
    );
    let ts = root.path().join("ts-ext");
    let js = root.path().join("js-ext");
    for file in [
        "manifest.json",
        "package.json",
        "README.md",
        "ui/bridge.js",
        "wit/extension-runner.wit",
        ".gitignore",
    ] {
        assert!(ts.join(file).is_file() && js.join(file).is_file(), "{file}");
    }
    assert!(ts.join("src/handler.ts").is_file() && ts.join("tsconfig.json").is_file());
    assert!(js.join("src/handler.js").is_file() && js.join("src/router.js").is_file());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(js.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["name"], "com.example.js-ext");
    assert_eq!(
        manifest["capabilities"],
        serde_json::json!([
            "cap:context.read",
            "cap:log.emit",
            "cap:storage.kv",
            "cap:secrets.get"
        ])
    );
    // The exact pins of examples/hello, overrides included.
    let example: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello/package.json"),
        )
        .unwrap(),
    )
    .unwrap();
    for dir in [&ts, &js] {
        let package: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("package.json")).unwrap()).unwrap();
        for (name, version) in example["devDependencies"].as_object().unwrap() {
            assert_eq!(&package["devDependencies"][name], version, "{name}");
        }
        assert_eq!(package["overrides"], example["overrides"]);
    }

    // One install for both; its postinstall generates the ts template's types.
    let install = npm(
        &ts,
        &[
            "install",
            "--prefer-offline",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ],
    );
    assert!(
        ts.join("types/interfaces/alga-extension-storage.d.ts")
            .is_file()
    );
    #[cfg(unix)]
    std::os::unix::fs::symlink(ts.join("node_modules"), js.join("node_modules")).unwrap();
    let ts_build = npm(&ts, &["run", "build"]);
    let js_build = npm(&js, &["run", "build"]);
    eprintln!(
        "templates: npm install {install:.1} s (shared), ts build {ts_build:.1} s, js build {js_build:.1} s"
    );
    assert!(ts.join("dist/main.wasm").is_file() && ts.join("build/handler.js").is_file());
    assert!(js.join("dist/main.wasm").is_file());

    // A type error fails the ts build before jco runs.
    let handler = std::fs::read_to_string(ts.join("src/handler.ts")).unwrap();
    std::fs::write(
        ts.join("src/handler.ts"),
        handler.replace("ctx.tenantId,", "ctx.tenant,"),
    )
    .unwrap();
    let out = Command::new("npm")
        .current_dir(&ts)
        .args(["run", "build"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tenant"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Restored: `up` sees sources newer than dist/main.wasm and builds again.
    std::fs::write(ts.join("src/handler.ts"), handler).unwrap();

    for (dir, id, extra) in [
        (&ts, "ts-ext", &[][..]),
        (&js, "com.example.js-ext", &["--json"][..]),
    ] {
        let started = Instant::now();
        let up = start_in(
            dir,
            &root.path().join(format!("data-{id}")),
            &[],
            "dev",
            extra,
        );
        eprintln!(
            "templates: up {id} ready in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let base = format!("/api/ext/{id}");
        let r = send(up.addr, "GET", &format!("{base}/api/hello"), &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["message"], format!("Hello from {id}"));
        assert_eq!(r.json()["tenant"], "dev");
        let json = ("content-type", "application/json");
        for want in [1, 3] {
            let by = if want == 1 { "{}" } else { r#"{"by": 2}"# };
            let r = send(
                up.addr,
                "POST",
                &format!("{base}/api/counter"),
                &[json],
                by.as_bytes(),
            );
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.json()["count"], want);
        }
        let r = send(
            up.addr,
            "POST",
            &format!("{base}/api/counter"),
            &[json],
            br#"{"by": 0}"#,
        );
        assert_eq!(
            (r.status, r.json()["error"].as_str()),
            (400, Some("invalid_by"))
        );
        let r = send(up.addr, "GET", &format!("{base}/api/counter"), &[], b"");
        assert_eq!(r.status, 404, "{}", r.text());
        assert_eq!(r.json()["error"], "endpoint_not_found");
        // The UI and its bridge are served.
        let page = send(up.addr, "GET", "/", &[], b"").text();
        assert!(page.contains(&format!("/ext-ui/{id}/")), "{page}");

        if extra.is_empty() {
            let out = up.wait_for_output("counter 1 -> 3");
            assert!(out.contains(&format!("GET {base}/api/hello 200 ")), "{out}");
            assert!(out.contains("    info  hello for tenant dev"), "{out}");
            let text = read_events(up.addr, None, |t| t.contains("endpoint_not_found"));
            let posts: Vec<_> = events(&text)
                .into_iter()
                .filter(|e| e["method"] == "POST")
                .collect();
            assert_eq!(posts.len(), 3, "{text}");
            assert_eq!(posts[1]["logs"][0]["message"], "counter 1 -> 3");
        } else {
            // --json: the Lambda functions' JSON lines, no readable ones.
            let out = up.wait_for_output("counter 1 -> 3");
            let records: Vec<serde_json::Value> = out
                .lines()
                .filter(|l| l.starts_with('{'))
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let request = records
                .iter()
                .find(|r| r["target"] == "alga::request" && r["fields"]["status"] == 200)
                .unwrap_or_else(|| panic!("{out}"));
            assert_eq!(request["fields"]["outcome"], "ok");
            assert_eq!(request["fields"]["extension"], id);
            assert!(
                records.iter().any(|r| r["target"] == "alga::guest"
                    && r["fields"]["message"] == "hello for tenant dev"),
                "{out}"
            );
            assert!(!out.contains(&format!("GET {base}/api/hello 200")), "{out}");
        }
    }
}
