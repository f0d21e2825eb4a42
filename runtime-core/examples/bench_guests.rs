//! Writes the guests `scripts/bench` serves, built from WAT like the test guests:
//!
//! - `OUT/alga-hello/`: an extension directory `alga-lambda up` can serve (manifest,
//!   `dist/main.wasm` = the tests' WAT hello: 200, `content-type: text/plain`, `hello`);
//! - `OUT/wasi-http-hello.wasm`: the same response as a `wasi:http/proxy` component for
//!   `wasmtime serve`, built against the WASI WIT that wasmtime-wasi-http 48 itself
//!   implements (`WASI_WIT`: its `wit/` folder, which `scripts/bench` finds with
//!   `cargo metadata`), so both servers run a guest that does the same work.
//!
//! `cargo run --release -p runtime-core --example bench_guests -- OUT WASI_WIT`

use test_support::guests;

use std::path::{Path, PathBuf};

/// The `wasi:http/proxy` hello: drop the request, build headers
/// (`content-type: text/plain`, `content-length: 5`), set a 200 response on the outparam,
/// write `hello` to its body and finish it. Flat signatures follow the canonical ABI
/// (results wider than one value come back through a pointer, here at 2048).
const WASI_HTTP_HELLO: &str = r#"
(module
  (import "wasi:http/types@0.2.12" "[resource-drop]incoming-request" (func $drop_req (param i32)))
  (import "wasi:http/types@0.2.12" "[constructor]fields" (func $fields_new (result i32)))
  (import "wasi:http/types@0.2.12" "[method]fields.append"
    (func $append (param i32 i32 i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-response"
    (func $resp_new (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-response.body"
    (func $resp_body (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]response-outparam.set"
    (func $set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-body.write"
    (func $body_write (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[static]outgoing-body.finish"
    (func $body_finish (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[method]output-stream.blocking-write-and-flush"
    (func $write (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]output-stream" (func $drop_stream (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "hello")
  (data (i32.const 1040) "content-type")
  (data (i32.const 1056) "text/plain")
  (data (i32.const 1072) "content-length")
  (data (i32.const 1088) "5")
  ;; Nothing here returns a list or string to the guest, so the host never allocates.
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 4096))
  (func (export "wasi:http/incoming-handler@0.2.12#handle") (param $req i32) (param $out i32)
    (local $headers i32) (local $resp i32) (local $body i32) (local $stream i32)
    (call $drop_req (local.get $req))
    (local.set $headers (call $fields_new))
    (call $append (local.get $headers) (i32.const 1040) (i32.const 12) (i32.const 1056) (i32.const 10) (i32.const 2048))
    (call $append (local.get $headers) (i32.const 1072) (i32.const 14) (i32.const 1088) (i32.const 1) (i32.const 2048))
    (local.set $resp (call $resp_new (local.get $headers)))
    (call $resp_body (local.get $resp) (i32.const 2048))
    (local.set $body (i32.load (i32.const 2052)))
    (call $set (local.get $out) (i32.const 0) (local.get $resp)
      (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $body_write (local.get $body) (i32.const 2048))
    (local.set $stream (i32.load (i32.const 2052)))
    (call $write (local.get $stream) (i32.const 1024) (i32.const 5) (i32.const 2048))
    (call $drop_stream (local.get $stream))
    (call $body_finish (local.get $body) (i32.const 0) (i32.const 0) (i32.const 2048))))
"#;

fn wasi_http_hello(wit: &Path) -> Vec<u8> {
    let mut core = wat::parse_str(WASI_HTTP_HELLO).expect("valid WAT");
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve.push_dir(wit).expect("the WASI WIT parses");
    let world = resolve
        .select_world(&[pkg], Some("wasi:http/proxy@0.2.12"))
        .expect("world wasi:http/proxy");
    wit_component::embed_component_metadata(
        &mut core,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .expect("embed metadata");
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&core)
        .expect("module")
        .encode()
        .expect("encode component")
}

fn main() {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [out, wit] = args.as_slice() else {
        eprintln!("usage: bench_guests OUT_DIR WASI_HTTP_WIT_DIR");
        std::process::exit(2);
    };
    let ext = out.join("alga-hello");
    std::fs::create_dir_all(ext.join("dist")).unwrap();
    std::fs::create_dir_all(ext.join("ui")).unwrap();
    std::fs::write(
        ext.join("manifest.json"),
        r#"{"name":"com.example.bench","version":"1.0.0","runtime":"wasm-js@1",
  "ui":{"type":"iframe","entry":"ui/index.html"},
  "api":{"endpoints":[{"method":"GET","path":"/hello","handler":"dist/main.wasm"}]}}
"#,
    )
    .unwrap();
    std::fs::write(ext.join("dist/main.wasm"), guests::hello()).unwrap();
    std::fs::write(ext.join("ui/index.html"), "<!doctype html><p>bench</p>\n").unwrap();
    std::fs::write(out.join("wasi-http-hello.wasm"), wasi_http_hello(wit)).unwrap();
    println!("{}", out.display());
}
