//! Guest components built at test time from WAT against `wit/`, for exact edge cases.
//!
//! Each module implements the canonical ABI by hand: `handler` receives a pointer to
//! the lowered `execute-request` (it has more than 16 flat values) and returns a
//! pointer to the `execute-response` record (status u16 @0, headers list @4/@8,
//! body option<list<u8>> tag @12, ptr @16, len @20).

/// The repository's `wit/`, found upwards from the including crate (this file is
/// shared by crates at different depths).
pub fn wit_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("wit"))
        .find(|wit| wit.is_dir())
        .expect("the repository's wit/ folder")
}

/// Wraps a core module (WAT) into a component of world `runner` (Alga's own: a
/// module importing `metrics` or `events` does not encode against it).
pub fn component(wat: &str) -> Vec<u8> {
    component_of("runner", wat)
}

/// Wraps a core module (WAT) into a component of world `runner-plus` (`runner`
/// plus our `metrics` and `events`).
pub fn component_plus(wat: &str) -> Vec<u8> {
    component_of("runner-plus", wat)
}

fn component_of(world_name: &str, wat: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve.push_dir(wit_dir()).expect("wit/ parses");
    let world = resolve
        .select_world(&[pkg], Some(world_name))
        .unwrap_or_else(|e| panic!("world {world_name}: {e:#}"));
    encode(wat, &resolve, world)
}

/// Embeds `world`'s metadata into the core module and encodes the component.
pub(crate) fn encode(
    wat: &str,
    resolve: &wit_parser::Resolve,
    world: wit_parser::WorldId,
) -> Vec<u8> {
    let mut core = wat::parse_str(wat).expect("valid WAT");
    wit_component::embed_component_metadata(
        &mut core,
        resolve,
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

/// Memory, a bump allocator (`cabi_realloc`) and `$respond(status, ptr, len)`.
const PRELUDE: &str = r#"
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func $alloc (param $size i32) (param $align i32) (result i32)
    (local $p i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.xor (i32.sub (local.get $align) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $p) (local.get $size)))
    (block $ok
      (br_if $ok (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
      (drop (memory.grow
        (i32.add
          (i32.shr_u (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536))) (i32.const 16))
          (i32.const 1)))))
    (local.get $p))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (call $alloc (local.get 3) (local.get 2)))
  (func $respond (param $status i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store16 (i32.const 256) (local.get $status))
    (i32.store (i32.const 260) (i32.const 0))
    (i32.store (i32.const 264) (i32.const 0))
    (i32.store8 (i32.const 268) (i32.const 1))
    (i32.store (i32.const 272) (local.get $ptr))
    (i32.store (i32.const 276) (local.get $len))
    (i32.const 256))
"#;

pub(crate) fn module_wat(imports: &str, body: &str) -> String {
    format!("(module {imports} {PRELUDE} {body})")
}

/// A component of world `runner` from [`module_wat`].
pub(crate) fn module(imports: &str, body: &str) -> Vec<u8> {
    component(&module_wat(imports, body))
}

/// 200, `content-type: text/plain`, body `hello`.
pub fn hello() -> Vec<u8> {
    module(
        "",
        r#"
        (data (i32.const 1024) "hello")
        (data (i32.const 1040) "content-type")
        (data (i32.const 1056) "text/plain")
        (func (export "handler") (param i32) (result i32)
          (i32.store (i32.const 768) (i32.const 1040))
          (i32.store (i32.const 772) (i32.const 12))
          (i32.store (i32.const 776) (i32.const 1056))
          (i32.store (i32.const 780) (i32.const 10))
          (drop (call $respond (i32.const 200) (i32.const 1024) (i32.const 5)))
          (i32.store (i32.const 260) (i32.const 768))
          (i32.store (i32.const 264) (i32.const 1))
          (i32.const 256))
        "#,
    )
}

/// 200 with the request's headers plus `x-echo-method` and `x-echo-url`, and the
/// request's body (or none).
pub fn echo() -> Vec<u8> {
    module(
        "",
        r#"
        (data (i32.const 1024) "x-echo-method")
        (data (i32.const 1040) "x-echo-url")
        (func (export "handler") (param $req i32) (result i32)
          (local $n i32) (local $dst i32) (local $e i32)
          (local.set $n (i32.load offset=72 (local.get $req)))
          (local.set $dst (call $alloc (i32.mul (i32.add (local.get $n) (i32.const 2)) (i32.const 16)) (i32.const 4)))
          (memory.copy (local.get $dst) (i32.load offset=68 (local.get $req)) (i32.mul (local.get $n) (i32.const 16)))
          (local.set $e (i32.add (local.get $dst) (i32.mul (local.get $n) (i32.const 16))))
          (i32.store (local.get $e) (i32.const 1024))
          (i32.store offset=4 (local.get $e) (i32.const 13))
          (i32.store offset=8 (local.get $e) (i32.load offset=52 (local.get $req)))
          (i32.store offset=12 (local.get $e) (i32.load offset=56 (local.get $req)))
          (local.set $e (i32.add (local.get $e) (i32.const 16)))
          (i32.store (local.get $e) (i32.const 1040))
          (i32.store offset=4 (local.get $e) (i32.const 10))
          (i32.store offset=8 (local.get $e) (i32.load offset=60 (local.get $req)))
          (i32.store offset=12 (local.get $e) (i32.load offset=64 (local.get $req)))
          (i32.store16 (i32.const 256) (i32.const 200))
          (i32.store (i32.const 260) (local.get $dst))
          (i32.store (i32.const 264) (i32.add (local.get $n) (i32.const 2)))
          (i32.store8 (i32.const 268) (i32.load8_u offset=76 (local.get $req)))
          (i32.store (i32.const 272) (i32.load offset=80 (local.get $req)))
          (i32.store (i32.const 276) (i32.load offset=84 (local.get $req)))
          (i32.const 256))
        "#,
    )
}

/// Spins forever.
pub fn infinite_loop() -> Vec<u8> {
    module(
        "",
        r#"(func (export "handler") (param i32) (result i32) (loop $l (br $l)) (unreachable))"#,
    )
}

/// Grows linear memory by 1 MiB at a time, forever.
pub fn memory_grower() -> Vec<u8> {
    module(
        "",
        r#"(func (export "handler") (param i32) (result i32)
             (loop $l (drop (memory.grow (i32.const 16))) (br $l))
             (unreachable))"#,
    )
}

/// Recurses without end.
pub fn deep_recursion() -> Vec<u8> {
    module(
        "",
        r#"(func $r (param i32) (result i32) (call $r (i32.add (local.get 0) (i32.const 1))))
           (func (export "handler") (param i32) (result i32) (call $r (i32.const 0)))"#,
    )
}

/// Traps with `unreachable`.
pub fn trap() -> Vec<u8> {
    module(
        "",
        r#"(func (export "handler") (param i32) (result i32) (unreachable))"#,
    )
}

/// Returns a body of `bytes` zero bytes.
pub fn huge_response(bytes: u32) -> Vec<u8> {
    module(
        "",
        &format!(
            r#"(func (export "handler") (param i32) (result i32)
                 (call $respond (i32.const 200) (call $alloc (i32.const {bytes}) (i32.const 1)) (i32.const {bytes})))"#
        ),
    )
}

/// Logs 1 KiB lines forever.
pub fn log_flood() -> Vec<u8> {
    module(
        r#"(import "alga:extension/logging" "log-info" (func $log (param i32 i32)))"#,
        r#"(func (export "handler") (param i32) (result i32)
             (loop $l (call $log (i32.const 4096) (i32.const 1024)) (br $l))
             (unreachable))"#,
    )
}

/// Calls `log-info` with an empty message forever: only the host-call budget stops it.
pub fn host_call_flood() -> Vec<u8> {
    module(
        r#"(import "alga:extension/logging" "log-info" (func $log (param i32 i32)))"#,
        r#"(func (export "handler") (param i32) (result i32)
             (loop $l (call $log (i32.const 0) (i32.const 0)) (br $l))
             (unreachable))"#,
    )
}

/// Calls a host function returning `result<T, enum>` through a return pointer and
/// reports it: ok → 200 with the string at payload (+0,+4) when `ok_is_string`,
/// else an empty body; err → 400 + the enum's index.
///
/// `sig` is the core signature's params (without the return pointer), `args` the
/// WAT pushing them, `payload` the payload's offset in the return area. A
/// component of world `runner`, or of `runner-plus` when `module_name` is one of
/// the interfaces only that world has (`metrics`, `events`).
pub fn result_caller(
    module_name: &str,
    func: &str,
    sig: &str,
    args: &str,
    payload: u32,
    ok_is_string: bool,
    data: &str,
) -> Vec<u8> {
    let wat = result_caller_wat(module_name, func, sig, args, payload, ok_is_string, data);
    if RUNNER_PLUS_ONLY.contains(&module_name) {
        component_plus(&wat)
    } else {
        component(&wat)
    }
}

/// The interfaces world `runner-plus` adds to Alga's `runner`.
const RUNNER_PLUS_ONLY: [&str; 2] = ["alga:extension/metrics", "alga:extension/events"];

fn result_caller_wat(
    module_name: &str,
    func: &str,
    sig: &str,
    args: &str,
    payload: u32,
    ok_is_string: bool,
    data: &str,
) -> String {
    let ok_body = if ok_is_string {
        format!(
            "(i32.load offset={payload} (i32.const 2048)) (i32.load offset={} (i32.const 2048))",
            payload + 4
        )
    } else {
        "(i32.const 0) (i32.const 0)".to_string()
    };
    module_wat(
        &format!(r#"(import "{module_name}" "{func}" (func $f (param {sig} i32)))"#),
        &format!(
            r#"{data}
            (func (export "handler") (param i32) (result i32)
              (call $f {args} (i32.const 2048))
              (if (result i32) (i32.eqz (i32.load8_u (i32.const 2048)))
                (then (call $respond (i32.const 200) {ok_body}))
                (else (call $respond
                  (i32.add (i32.const 400) (i32.load8_u offset={payload} (i32.const 2048)))
                  (i32.const 0) (i32.const 0)))))"#
        ),
    )
}

/// Calls `alga:extension/context.get-context` and returns the tenant id it saw.
pub fn context_reader() -> Vec<u8> {
    module(
        r#"(import "alga:extension/context" "get-context" (func $ctx (param i32)))"#,
        r#"(func (export "handler") (param i32) (result i32)
             (call $ctx (i32.const 2048))
             (call $respond (i32.const 200)
               (i32.load offset=12 (i32.const 2048)) (i32.load offset=16 (i32.const 2048))))"#,
    )
}

/// Calls a host function returning a `{success: bool, ...}` record whose
/// `error: option<string>` sits at `error_at`; 200 on success, else 400 with the error.
pub fn record_caller(
    module_name: &str,
    func: &str,
    sig: &str,
    args: &str,
    error_at: u32,
) -> Vec<u8> {
    module(
        &format!(r#"(import "{module_name}" "{func}" (func $f (param {sig} i32)))"#),
        &format!(
            r#"(func (export "handler") (param i32) (result i32)
              (call $f {args} (i32.const 2048))
              (if (result i32) (i32.load8_u (i32.const 2048))
                (then (call $respond (i32.const 200) (i32.const 0) (i32.const 0)))
                (else (call $respond (i32.const 400)
                  (i32.load offset={} (i32.const 2048)) (i32.load offset={} (i32.const 2048))))))"#,
            error_at + 4,
            error_at + 8
        ),
    )
}

/// `http.fetch` GET of the URL given as the request body; answers the fetched
/// status, headers and body, or 460 + the `http-error` index (460 invalid-url,
/// 461 not-allowed, 462 transport, 463 internal).
pub fn fetcher() -> Vec<u8> {
    module(
        r#"(import "alga:extension/http" "fetch" (func $fetch (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))"#,
        r#"(data (i32.const 1024) "GET")
        (func (export "handler") (param $req i32) (result i32)
          (call $fetch (i32.const 1024) (i32.const 3)
            (i32.load offset=80 (local.get $req)) (i32.load offset=84 (local.get $req))
            (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
            (i32.const 2048))
          (if (result i32) (i32.eqz (i32.load8_u (i32.const 2048)))
            (then
              (i32.store16 (i32.const 256) (i32.load16_u offset=4 (i32.const 2048)))
              (i32.store (i32.const 260) (i32.load offset=8 (i32.const 2048)))
              (i32.store (i32.const 264) (i32.load offset=12 (i32.const 2048)))
              (i32.store8 (i32.const 268) (i32.load8_u offset=16 (i32.const 2048)))
              (i32.store (i32.const 272) (i32.load offset=20 (i32.const 2048)))
              (i32.store (i32.const 276) (i32.load offset=24 (i32.const 2048)))
              (i32.const 256))
            (else (call $respond
              (i32.add (i32.const 460) (i32.load8_u offset=4 (i32.const 2048)))
              (i32.const 0) (i32.const 0)))))"#,
    )
}

/// Records `n` histogram values (`latency`, milliseconds, value = i) through
/// `alga:extension/metrics`, then answers 200 `done` (world `runner-plus`).
pub fn metrics_flood(n: u32) -> Vec<u8> {
    component_plus(&module_wat(
        r#"(import "alga:extension/metrics" "histogram" (func $h (param i32 i32 f64 i32 i32 i32)))
           (import "alga:extension/metrics" "counter" (func $c (param i32 i32 f64 i32 i32)))"#,
        &format!(
            r#"(data (i32.const 1024) "latency")
            (data (i32.const 1040) "done")
            (data (i32.const 1056) "requests")
            (data (i32.const 1072) "route")
            (data (i32.const 1088) "/a")
            (func (export "handler") (param i32) (result i32)
              (local $i i32)
              ;; one counter with a dimension {{route: /a}} (record at 1536)
              (i32.store (i32.const 1536) (i32.const 1072))
              (i32.store (i32.const 1540) (i32.const 5))
              (i32.store (i32.const 1544) (i32.const 1088))
              (i32.store (i32.const 1548) (i32.const 2))
              (call $c (i32.const 1056) (i32.const 8) (f64.const 1) (i32.const 1536) (i32.const 1))
              (block $done
                (loop $l
                  (br_if $done (i32.ge_u (local.get $i) (i32.const {n})))
                  (call $h (i32.const 1024) (i32.const 7) (f64.convert_i32_u (local.get $i))
                    (i32.const 2) (i32.const 0) (i32.const 0))
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br $l)))
              (call $respond (i32.const 200) (i32.const 1040) (i32.const 4)))"#
        ),
    ))
}

/// Exercises `alga:extension/scheduler`, dispatching on the 6th character of the
/// path (`/api/<op>…`), and records firings:
/// - `c…` create-schedule(endpoint = the body, cron `*/5 * * * *`, payload
///   `{"k":1}`) → 201 with the new id, or 400 with the error;
/// - `d…` delete-schedule(id = the body) → 200, or 400 with the error;
/// - `g…` get-schedule(id = the body) → 200 found, 404 none, 400 + error index;
/// - `l…` list-schedules / `e…` get-endpoints → 200 + the count, or 400 + error index;
/// - anything else: storage.put(`sched`, key = the request id, value = the body)
///   and 200 echoing the body.
pub fn scheduler_guest() -> Vec<u8> {
    module(
        r#"(import "alga:extension/scheduler" "create-schedule" (func $create (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
           (import "alga:extension/scheduler" "delete-schedule" (func $delete (param i32 i32 i32)))
           (import "alga:extension/scheduler" "get-schedule" (func $get (param i32 i32 i32)))
           (import "alga:extension/scheduler" "list-schedules" (func $list (param i32)))
           (import "alga:extension/scheduler" "get-endpoints" (func $endpoints (param i32)))
           (import "alga:extension/storage" "put" (func $put (param i32 i32 i32 i32 i32 i32 i32 i64 i32)))"#,
        r#"(data (i32.const 1024) "sched")
        (data (i32.const 1056) "*/5 * * * *")
        (data (i32.const 1072) "{\"k\":1}")
        (func (export "handler") (param $req i32) (result i32)
          (local $op i32) (local $bp i32) (local $bl i32)
          (local.set $op (i32.load8_u offset=5 (i32.load offset=60 (local.get $req))))
          (local.set $bp (i32.load offset=80 (local.get $req)))
          (local.set $bl (i32.load offset=84 (local.get $req)))
          (if (i32.eq (local.get $op) (i32.const 99))
            (then
              (call $create (local.get $bp) (local.get $bl) (i32.const 1056) (i32.const 11)
                (i32.const 0) (i32.const 0) (i32.const 0)
                (i32.const 0) (i32.const 0)
                (i32.const 0) (i32.const 0) (i32.const 0)
                (i32.const 1) (i32.const 1072) (i32.const 7)
                (i32.const 2048))
              (if (i32.load8_u (i32.const 2048))
                (then (return (call $respond (i32.const 201)
                  (i32.load offset=8 (i32.const 2048)) (i32.load offset=12 (i32.const 2048))))))
              (return (call $respond (i32.const 400)
                (i32.load offset=20 (i32.const 2048)) (i32.load offset=24 (i32.const 2048))))))
          (if (i32.eq (local.get $op) (i32.const 100))
            (then
              (call $delete (local.get $bp) (local.get $bl) (i32.const 2048))
              (if (i32.load8_u (i32.const 2048))
                (then (return (call $respond (i32.const 200) (i32.const 0) (i32.const 0)))))
              (return (call $respond (i32.const 400)
                (i32.load offset=8 (i32.const 2048)) (i32.load offset=12 (i32.const 2048))))))
          (if (i32.eq (local.get $op) (i32.const 103))
            (then
              (call $get (local.get $bp) (local.get $bl) (i32.const 2048))
              (if (i32.load8_u (i32.const 2048))
                (then (return (call $respond
                  (i32.add (i32.const 400) (i32.load8_u offset=4 (i32.const 2048)))
                  (i32.const 0) (i32.const 0)))))
              (return (call $respond
                (select (i32.const 200) (i32.const 404) (i32.load8_u offset=4 (i32.const 2048)))
                (i32.const 0) (i32.const 0)))))
          (if (i32.eq (local.get $op) (i32.const 108)) (then (call $list (i32.const 2048))))
          (if (i32.eq (local.get $op) (i32.const 101)) (then (call $endpoints (i32.const 2048))))
          (if (i32.or (i32.eq (local.get $op) (i32.const 108)) (i32.eq (local.get $op) (i32.const 101)))
            (then
              (if (i32.load8_u (i32.const 2048))
                (then (return (call $respond
                  (i32.add (i32.const 400) (i32.load8_u offset=4 (i32.const 2048)))
                  (i32.const 0) (i32.const 0)))))
              (return (call $respond
                (i32.add (i32.const 200) (i32.load offset=8 (i32.const 2048)))
                (i32.const 0) (i32.const 0)))))
          (call $put (i32.const 1024) (i32.const 5)
            (i32.load offset=4 (local.get $req)) (i32.load offset=8 (local.get $req))
            (local.get $bp) (local.get $bl) (i32.const 0) (i64.const 0) (i32.const 2048))
          (call $respond (i32.const 200) (local.get $bp) (local.get $bl)))"#,
    )
}

/// `http.fetch` GET of the URL given as the request body, `n` times in a row
/// (every answer ignored), then 200 `done`.
pub fn fetch_loop(n: u32) -> Vec<u8> {
    module(
        r#"(import "alga:extension/http" "fetch" (func $fetch (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))"#,
        &format!(
            r#"(data (i32.const 1024) "GET")
            (data (i32.const 1040) "done")
            (func (export "handler") (param $req i32) (result i32)
              (local $i i32)
              (block $done
                (loop $l
                  (br_if $done (i32.ge_u (local.get $i) (i32.const {n})))
                  (call $fetch (i32.const 1024) (i32.const 3)
                    (i32.load offset=80 (local.get $req)) (i32.load offset=84 (local.get $req))
                    (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                    (i32.const 2048))
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br $l)))
              (call $respond (i32.const 200) (i32.const 1040) (i32.const 4)))"#
        ),
    )
}

/// A minimal `wasi:http/types` (only what [`fields_hoarder`] imports): a guest may
/// import a subset of an instance the host provides.
const WASI_HTTP_FIELDS_WIT: &str = r#"
package wasi:http@0.2.0;
interface types {
  variant header-error { invalid-syntax, forbidden, immutable }
  resource fields {
    constructor();
    append: func(name: string, value: list<u8>) -> result<_, header-error>;
  }
}
"#;

/// Creates `n` `wasi:http` fields resources and never drops them, appending a
/// `value_len`-byte header value to each (errors ignored), then 200 `done`.
pub fn fields_hoarder(n: u32, value_len: u32) -> Vec<u8> {
    let wat = format!(
        r#"(module
          (import "wasi:http/types@0.2.0" "[constructor]fields" (func $new (result i32)))
          (import "wasi:http/types@0.2.0" "[method]fields.append" (func $append (param i32 i32 i32 i32 i32 i32)))
          {PRELUDE}
          (data (i32.const 1024) "x-big")
          (data (i32.const 1040) "done")
          (func (export "handler") (param $req i32) (result i32)
            (local $i i32) (local $value i32)
            (local.set $value (call $alloc (i32.const {value_len}) (i32.const 1)))
            (memory.fill (local.get $value) (i32.const 97) (i32.const {value_len}))
            (block $done
              (loop $l
                (br_if $done (i32.ge_u (local.get $i) (i32.const {n})))
                (call $append (call $new) (i32.const 1024) (i32.const 5)
                  (local.get $value) (i32.const {value_len}) (i32.const 2048))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $l)))
            (call $respond (i32.const 200) (i32.const 1040) (i32.const 4))))"#
    );
    let mut resolve = wit_parser::Resolve::default();
    let (runner_pkg, _) = resolve.push_dir(wit_dir()).expect("wit/ parses");
    resolve
        .push_str("wasi-http.wit", WASI_HTTP_FIELDS_WIT)
        .expect("wasi:http subset parses");
    let runner_name = resolve.id_of_name(runner_pkg, "runner");
    let pkg = resolve
        .push_str(
            "guest.wit",
            &format!(
                "package test:guest;\nworld hoarder {{\n  include {runner_name};\n  import wasi:http/types@0.2.0;\n}}\n"
            ),
        )
        .expect("guest world parses");
    let world = resolve
        .select_world(&[pkg], Some("hoarder"))
        .expect("world hoarder");
    encode(&wat, &resolve, world)
}
