//! `alga-lambda run` as an extension author uses it, on the JavaScript example.

use std::process::Command;

use test_support::guests;

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/hello/dist/main.wasm"
);

fn alga() -> Command {
    assert!(
        std::path::Path::new(EXAMPLE).exists(),
        "{EXAMPLE} missing: run scripts/build-example"
    );
    Command::new(env!("CARGO_BIN_EXE_alga-lambda"))
}

#[test]
fn runs_the_example_and_prints_the_response() {
    let out = alga()
        .args([
            "run",
            EXAMPLE,
            "GET",
            "/api/hello",
            "--extension",
            "com.example.hello",
        ])
        .args(["--grant", "cap:storage.kv", "--grant", "cap:secrets.get"])
        .args(["--secret", "greeting=Howdy"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.starts_with("HTTP 200\n"), "{stdout}");
    assert!(
        stdout.contains("content-type: application/json"),
        "{stdout}"
    );
    assert!(stdout.contains("Howdy from com.example.hello"), "{stdout}");
    assert!(stdout.contains("\"visits\":1"), "{stdout}");
    // Guest logs go to stderr.
    assert!(stderr.contains("hello handler: GET /api/hello"), "{stderr}");
}

#[test]
fn json_mode_prints_the_execute_envelope() {
    let out = alga()
        .args([
            "run",
            EXAMPLE,
            "POST",
            "/api/echo",
            "--body",
            "ping",
            "--json",
        ])
        .args(["--header", "X-Trace: abc"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(env["status"], 200);
    assert!(env["error"].is_null());
    let body = base64_decode(env["body_b64"].as_str().unwrap());
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["body"], "ping");
    assert_eq!(body["headers"], serde_json::json!([["x-trace", "abc"]]));
}

#[test]
fn errors_have_exit_codes_a_script_can_rely_on() {
    // An unknown capability: an execution error, exit 1, the code on stderr.
    let out = alga()
        .args(["run", EXAMPLE, "--grant", "cap:everything"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("error[unknown_capabilities]: cap:everything (status 400)")
    );
    // A malformed flag: exit 2 with the flag named.
    let out = alga()
        .args(["run", EXAMPLE, "--header", "no-colon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--header \"no-colon\""));
    // Not a component: exit 2, said plainly.
    let dir = std::env::temp_dir().join(format!("alga-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bogus = dir.join("bogus.wasm");
    std::fs::write(&bogus, b"\0asm\x01\0\0\0").unwrap();
    let out = alga().arg("run").arg(&bogus).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a WebAssembly component"));
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// A guest's log line is text from an untrusted party: printed raw, an escape
/// sequence would clear the developer's terminal and a carriage return would let
/// the guest overwrite what the line appears to say.
#[test]
fn sec_17_guest_log_control_characters_are_escaped() {
    // Logs "\x1b[2J\rfake\u{202e}x\ny" (ESC, CR, a bidi override, a newline), then
    // answers 200 with no body.
    let guest = guests::component(
        r#"(module
          (import "alga:extension/logging" "log-info" (func $log (param i32 i32)))
          (memory (export "memory") 1)
          (global $heap (mut i32) (i32.const 8192))
          (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
            (local $p i32)
            (local.set $p (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
            (global.set $heap (i32.add (local.get $p) (local.get 3)))
            (local.get $p))
          (data (i32.const 1024) "\1b[2J\0dfake\e2\80\aex\0ay")
          (func (export "handler") (param i32) (result i32)
            (call $log (i32.const 1024) (i32.const 15))
            (i32.store16 (i32.const 256) (i32.const 200))
            (i32.store (i32.const 260) (i32.const 0))
            (i32.store (i32.const 264) (i32.const 0))
            (i32.store8 (i32.const 268) (i32.const 0))
            (i32.const 256)))"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("logger.wasm");
    std::fs::write(&wasm, guest).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_alga-lambda"))
        .arg("run")
        .arg(&wasm)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(r"\u{1b}[2J\rfake\u{202e}x\ny"),
        "the line is shown, escaped: {stderr:?}"
    );
    for raw in ['\x1b', '\r', '\u{202e}'] {
        assert!(
            !stderr.contains(raw),
            "{raw:?} reached the terminal: {stderr:?}"
        );
    }
    // One guest line is one terminal line.
    let line = stderr.lines().find(|l| l.contains("fake")).unwrap();
    assert!(line.ends_with("x\\ny"), "{line:?}");
}
