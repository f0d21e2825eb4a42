//! Hostile guests built from WAT: each tries one way to hurt the host (loops in
//! every place a guest gets control, memory and resource bombs, floods, malformed
//! canonical-ABI values). `runtime-core/tests/it/hostile.rs` runs them and
//! asserts the documented outcome; [`crate::guests`] holds the first dozen.
//!
//! Layouts follow [`crate::guests`]: the request record's url at +60/+64, body
//! at +76 (tag) / +80 / +84; the response record at 256 (status @0, headers
//! @4/@8, body tag @12, ptr @16, len @20).

use crate::guests::{component, component_plus, encode, module, module_wat, wit_dir};

/// The parts of WASI 0.2 the hostile guests import (a guest may import a subset
/// of an interface the host provides; the types must match Wasmtime's).
const WASI_IO_WIT: &str = r#"
package wasi:io@0.2.0;
interface error { resource error; }
interface poll {
  resource pollable { block: func(); }
}
interface streams {
  use error.{error};
  variant stream-error { last-operation-failed(error), closed }
  resource output-stream {
    blocking-write-and-flush: func(contents: list<u8>) -> result<_, stream-error>;
  }
}
"#;

const WASI_CLOCKS_WIT: &str = r#"
package wasi:clocks@0.2.0;
interface monotonic-clock {
  use wasi:io/poll@0.2.0.{pollable};
  type instant = u64;
  type duration = u64;
  now: func() -> instant;
  subscribe-duration: func(when: duration) -> pollable;
}
"#;

const WASI_CLI_WIT: &str = r#"
package wasi:cli@0.2.0;
interface stdout {
  use wasi:io/streams@0.2.0.{output-stream};
  get-stdout: func() -> output-stream;
}
"#;

/// A component of a world that is `runner` plus the WASI subsets above.
fn component_with_wasi(wat: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let (runner_pkg, _) = resolve.push_dir(wit_dir()).expect("wit/ parses");
    for (name, text) in [
        ("wasi-io.wit", WASI_IO_WIT),
        ("wasi-clocks.wit", WASI_CLOCKS_WIT),
        ("wasi-cli.wit", WASI_CLI_WIT),
    ] {
        resolve.push_str(name, text).expect("WASI subset parses");
    }
    let runner = resolve.id_of_name(runner_pkg, "runner");
    let pkg = resolve
        .push_str(
            "hostile.wit",
            &format!(
                "package test:hostile;\nworld hostile {{\n  include {runner};\n  \
                 import wasi:io/poll@0.2.0;\n  import wasi:io/streams@0.2.0;\n  \
                 import wasi:clocks/monotonic-clock@0.2.0;\n  import wasi:cli/stdout@0.2.0;\n}}\n"
            ),
        )
        .expect("hostile world parses");
    let world = resolve
        .select_world(&[pkg], Some("hostile"))
        .expect("world hostile");
    encode(wat, &resolve, world)
}

const CLOCK_IMPORTS: &str = r#"
  (import "wasi:clocks/monotonic-clock@0.2.0" "now" (func $now (result i64)))
  (import "wasi:clocks/monotonic-clock@0.2.0" "subscribe-duration" (func $subscribe (param i64) (result i32)))
  (import "wasi:io/poll@0.2.0" "[method]pollable.block" (func $block (param i32)))
  (import "wasi:io/poll@0.2.0" "[resource-drop]pollable" (func $drop_pollable (param i32)))
"#;

/// A handler answering 200 `done` (the body of guests that misbehave elsewhere).
const HANDLER_DONE: &str = r#"
  (data (i32.const 1040) "done")
  (func (export "handler") (param i32) (result i32)
    (call $respond (i32.const 200) (i32.const 1040) (i32.const 4)))
"#;

// ---- loops ---------------------------------------------------------------

/// Spins in the core module's start function: during instantiation, before
/// the handler is ever called.
pub fn start_loop() -> Vec<u8> {
    module(
        "",
        &format!(
            r#"(func $spin (loop $l (br $l)))
               (start $spin)
               {HANDLER_DONE}"#
        ),
    )
}

/// Spins in `cabi_realloc`, which the host calls to lower the request into the
/// guest's memory: before the handler runs, inside the host's own lowering.
pub fn realloc_loop() -> Vec<u8> {
    // Its own prelude: the shared one's `cabi_realloc` is the well-behaved one.
    component(
        r#"(module
          (memory (export "memory") 2)
          (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
            (loop $l (br $l)) (unreachable))
          (func (export "handler") (param i32) (result i32) (unreachable)))"#,
    )
}

/// Answers 200 and then spins in its post-return function (`cabi_post_handler`,
/// called after the host has read the response).
pub fn post_return_loop() -> Vec<u8> {
    module(
        "",
        &format!(
            r#"{HANDLER_DONE}
               (func (export "cabi_post_handler") (param i32) (loop $l (br $l)))"#
        ),
    )
}

/// Blocks on a one-hour `wasi:clocks` timer: parked in a host call, where epoch
/// interruption cannot reach it.
pub fn sleep_forever() -> Vec<u8> {
    component_with_wasi(&module_wat(
        CLOCK_IMPORTS,
        r#"(func (export "handler") (param i32) (result i32)
             (call $block (call $subscribe (i64.const 3600000000000)))
             (call $respond (i32.const 200) (i32.const 1040) (i32.const 4)))
           (data (i32.const 1040) "done")"#,
    ))
}

/// Writes a 64-byte log line every 10 ms, forever: slow output that stops only
/// at the deadline (the lines written until then are kept).
pub fn slow_logger() -> Vec<u8> {
    component_with_wasi(&module_wat(
        &format!(
            r#"{CLOCK_IMPORTS}
               (import "alga:extension/logging" "log-info" (func $log (param i32 i32)))"#
        ),
        r#"(func (export "handler") (param i32) (result i32)
             (local $p i32)
             (loop $l
               (call $log (i32.const 4096) (i32.const 64))
               (local.set $p (call $subscribe (i64.const 10000000)))
               (call $block (local.get $p))
               (call $drop_pollable (local.get $p))
               (br $l))
             (unreachable))"#,
    ))
}

/// Spins until `spin_ms` have passed on the monotonic clock since the handler
/// started, then answers 200: set `spin_ms` at the deadline to race it.
pub fn deadline_racer(spin_ms: u64) -> Vec<u8> {
    let ns = spin_ms * 1_000_000;
    component_with_wasi(&module_wat(
        CLOCK_IMPORTS,
        &format!(
            r#"(data (i32.const 1040) "done")
               (func (export "handler") (param i32) (result i32)
                 (local $until i64)
                 (local.set $until (i64.add (call $now) (i64.const {ns})))
                 (loop $l (br_if $l (i64.lt_u (call $now) (local.get $until))))
                 (call $respond (i32.const 200) (i32.const 1040) (i32.const 4)))"#
        ),
    ))
}

/// Retries `storage.get` (refused: the install has no storage grant) until it
/// succeeds: a loop around a host call.
pub fn storage_retry() -> Vec<u8> {
    module(
        r#"(import "alga:extension/storage" "get" (func $get (param i32 i32 i32 i32 i32)))"#,
        r#"(data (i32.const 1024) "ns")
           (data (i32.const 1032) "key")
           (func (export "handler") (param i32) (result i32)
             (loop $retry
               (call $get (i32.const 1024) (i32.const 2) (i32.const 1032) (i32.const 3) (i32.const 2048))
               (br_if $retry (i32.load8_u (i32.const 2048))))
             (call $respond (i32.const 200) (i32.const 0) (i32.const 0)))"#,
    )
}

// ---- memory --------------------------------------------------------------

/// Asks for 4 GiB of linear memory in one `memory.grow`.
pub fn one_big_grow() -> Vec<u8> {
    module(
        "",
        r#"(func (export "handler") (param i32) (result i32)
             (drop (memory.grow (i32.const 65535)))
             (call $respond (i32.const 200) (i32.const 0) (i32.const 0)))"#,
    )
}

/// Declares an initial linear memory of `pages` 64 KiB pages: the bomb goes
/// off while instantiating.
pub fn huge_initial_memory(pages: u32) -> Vec<u8> {
    component(&format!(
        r#"(module
          (memory (export "memory") {pages})
          (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 4096))
          (func (export "handler") (param i32) (result i32) (unreachable)))"#
    ))
}

/// Grows a function table by 10,000 elements at a time, forever.
pub fn table_grower() -> Vec<u8> {
    module(
        "",
        r#"(table $t 1 funcref)
           (func (export "handler") (param i32) (result i32)
             (loop $l (drop (table.grow $t (ref.null func) (i32.const 10000))) (br $l))
             (unreachable))"#,
    )
}

/// Grows a second, private linear memory by 1 MiB at a time, forever: the
/// limit covers all memories together.
pub fn second_memory_grower() -> Vec<u8> {
    module(
        "",
        r#"(memory $second 0)
           (func (export "handler") (param i32) (result i32)
             (loop $l (drop (memory.grow $second (i32.const 16))) (br $l))
             (unreachable))"#,
    )
}

/// Creates `wasi:clocks` pollables forever and never drops them.
pub fn pollable_hoarder() -> Vec<u8> {
    component_with_wasi(&module_wat(
        CLOCK_IMPORTS,
        r#"(func (export "handler") (param i32) (result i32)
             (loop $l (drop (call $subscribe (i64.const 1000000000))) (br $l))
             (unreachable))"#,
    ))
}

/// Opens stdout streams forever and never drops them.
pub fn stream_hoarder() -> Vec<u8> {
    component_with_wasi(&module_wat(
        r#"(import "wasi:cli/stdout@0.2.0" "get-stdout" (func $stdout (result i32)))"#,
        r#"(func (export "handler") (param i32) (result i32)
             (loop $l (drop (call $stdout)) (br $l))
             (unreachable))"#,
    ))
}

// ---- recursion -----------------------------------------------------------

/// Recurses without end through frames of 64 `v128` locals each.
pub fn fat_frame_recursion() -> Vec<u8> {
    let locals = "(local v128) ".repeat(64);
    module(
        "",
        &format!(
            r#"(func $r (param i32) (result i32) {locals}
                 (local.set 1 (i32x4.splat (local.get 0)))
                 (i32.add (call $r (i32.add (local.get 0) (i32.const 1)))
                          (i32x4.extract_lane 0 (local.get 1))))
               (func (export "handler") (param i32) (result i32) (call $r (i32.const 0)))"#
        ),
    )
}

/// Two functions calling each other through a table (`call_indirect`), forever.
pub fn indirect_recursion() -> Vec<u8> {
    module(
        "",
        r#"(type $f (func (param i32) (result i32)))
           (table 2 funcref)
           (elem (i32.const 0) $a $b)
           (func $a (type $f) (call_indirect (type $f) (local.get 0) (i32.const 1)))
           (func $b (type $f) (call_indirect (type $f) (i32.add (local.get 0) (i32.const 1)) (i32.const 0)))
           (func (export "handler") (param i32) (result i32) (call $a (i32.const 0)))"#,
    )
}

// ---- outputs -------------------------------------------------------------

/// Answers `count` response headers that all point at the same `value_len`-byte
/// value: a few MiB of guest memory the host would copy `count` times.
pub fn header_bomb(count: u32, value_len: u32) -> Vec<u8> {
    module(
        "",
        &format!(
            r#"(data (i32.const 1024) "x-ext-bomb")
               (func (export "handler") (param i32) (result i32)
                 (local $value i32) (local $list i32) (local $i i32) (local $e i32)
                 (local.set $value (call $alloc (i32.const {value_len}) (i32.const 1)))
                 (memory.fill (local.get $value) (i32.const 97) (i32.const {value_len}))
                 (local.set $list (call $alloc (i32.mul (i32.const {count}) (i32.const 16)) (i32.const 4)))
                 (block $done
                   (loop $l
                     (br_if $done (i32.ge_u (local.get $i) (i32.const {count})))
                     (local.set $e (i32.add (local.get $list) (i32.mul (local.get $i) (i32.const 16))))
                     (i32.store (local.get $e) (i32.const 1024))
                     (i32.store offset=4 (local.get $e) (i32.const 10))
                     (i32.store offset=8 (local.get $e) (local.get $value))
                     (i32.store offset=12 (local.get $e) (i32.const {value_len}))
                     (local.set $i (i32.add (local.get $i) (i32.const 1)))
                     (br $l)))
                 (drop (call $respond (i32.const 200) (i32.const 0) (i32.const 0)))
                 (i32.store (i32.const 260) (local.get $list))
                 (i32.store (i32.const 264) (i32.const {count}))
                 (i32.const 256))"#
        ),
    )
}

/// Records one counter with `count` dimensions that all point at the same
/// `value_len`-byte value (world `runner-plus`): the same amplification through
/// a host call's arguments.
pub fn dimension_bomb(count: u32, value_len: u32) -> Vec<u8> {
    component_plus(&module_wat(
        r#"(import "alga:extension/metrics" "counter" (func $counter (param i32 i32 f64 i32 i32)))"#,
        &format!(
            r#"(data (i32.const 1024) "bombs")
               (func (export "handler") (param i32) (result i32)
                 (local $value i32) (local $list i32) (local $i i32) (local $e i32)
                 (local.set $value (call $alloc (i32.const {value_len}) (i32.const 1)))
                 (memory.fill (local.get $value) (i32.const 98) (i32.const {value_len}))
                 (local.set $list (call $alloc (i32.mul (i32.const {count}) (i32.const 16)) (i32.const 4)))
                 (block $done
                   (loop $l
                     (br_if $done (i32.ge_u (local.get $i) (i32.const {count})))
                     (local.set $e (i32.add (local.get $list) (i32.mul (local.get $i) (i32.const 16))))
                     (i32.store (local.get $e) (i32.const 1024))
                     (i32.store offset=4 (local.get $e) (i32.const 5))
                     (i32.store offset=8 (local.get $e) (local.get $value))
                     (i32.store offset=12 (local.get $e) (i32.const {value_len}))
                     (local.set $i (i32.add (local.get $i) (i32.const 1)))
                     (br $l)))
                 (call $counter (i32.const 1024) (i32.const 5) (f64.const 1) (local.get $list) (i32.const {count}))
                 (call $respond (i32.const 200) (i32.const 0) (i32.const 0)))"#
        ),
    ))
}

/// Writes 1 KiB to stdout (WASI) forever.
pub fn stdout_flood() -> Vec<u8> {
    component_with_wasi(&module_wat(
        r#"(import "wasi:cli/stdout@0.2.0" "get-stdout" (func $stdout (result i32)))
           (import "wasi:io/streams@0.2.0" "[method]output-stream.blocking-write-and-flush"
             (func $write (param i32 i32 i32 i32)))"#,
        r#"(func (export "handler") (param i32) (result i32)
             (local $out i32)
             (local.set $out (call $stdout))
             (memory.fill (i32.const 4096) (i32.const 122) (i32.const 1024))
             (loop $l
               (call $write (local.get $out) (i32.const 4096) (i32.const 1024) (i32.const 2048))
               (br $l))
             (unreachable))"#,
    ))
}

/// Emits `{}` on topic `flood` forever, whatever `emit` answers (world
/// `runner-plus`).
pub fn emit_flood() -> Vec<u8> {
    component_plus(&module_wat(
        r#"(import "alga:extension/events" "emit" (func $emit (param i32 i32 i32 i32 i32)))"#,
        r#"(data (i32.const 1024) "flood")
           (data (i32.const 1040) "{}")
           (func (export "handler") (param i32) (result i32)
             (loop $l
               (call $emit (i32.const 1024) (i32.const 5) (i32.const 1040) (i32.const 2) (i32.const 2048))
               (br $l))
             (unreachable))"#,
    ))
}

// ---- malformed canonical-ABI values ----------------------------------------

/// A handler whose response record at 256 is written by `fill` (WAT run after
/// a well-formed 200 with no headers and no body has been written), then
/// returns `ret`.
fn malformed_response(data: &str, fill: &str, ret: &str) -> Vec<u8> {
    module(
        "",
        &format!(
            r#"{data}
               (func (export "handler") (param i32) (result i32)
                 (drop (call $respond (i32.const 200) (i32.const 0) (i32.const 0)))
                 (i32.store8 (i32.const 268) (i32.const 0))
                 {fill}
                 {ret})"#
        ),
    )
}

/// One header whose name is `ff fe` (not UTF-8).
pub fn invalid_utf8_header() -> Vec<u8> {
    malformed_response(
        r#"(data (i32.const 1024) "\ff\fe")
           (data (i32.const 1040) "x")"#,
        r#"(i32.store (i32.const 768) (i32.const 1024))
           (i32.store (i32.const 772) (i32.const 2))
           (i32.store (i32.const 776) (i32.const 1040))
           (i32.store (i32.const 780) (i32.const 1))
           (i32.store (i32.const 260) (i32.const 768))
           (i32.store (i32.const 264) (i32.const 1))"#,
        "(i32.const 256)",
    )
}

/// One header whose name points past the end of linear memory.
pub fn string_out_of_bounds() -> Vec<u8> {
    malformed_response(
        "",
        r#"(i32.store (i32.const 768) (i32.const 0xfffffff0))
           (i32.store (i32.const 772) (i32.const 64))
           (i32.store (i32.const 776) (i32.const 0))
           (i32.store (i32.const 780) (i32.const 0))
           (i32.store (i32.const 260) (i32.const 768))
           (i32.store (i32.const 264) (i32.const 1))"#,
        "(i32.const 256)",
    )
}

/// A header list claiming 2^28 elements (4 GiB of records) in 128 KiB of memory.
pub fn list_length_overflow() -> Vec<u8> {
    malformed_response(
        "",
        r#"(i32.store (i32.const 260) (i32.const 768))
           (i32.store (i32.const 264) (i32.const 0x10000000))"#,
        "(i32.const 256)",
    )
}

/// A body whose `option` discriminant is 7.
pub fn invalid_option_discriminant() -> Vec<u8> {
    malformed_response(
        "",
        "(i32.store8 (i32.const 268) (i32.const 7))",
        "(i32.const 256)",
    )
}

/// Returns its response record at a misaligned address (257).
pub fn misaligned_return() -> Vec<u8> {
    malformed_response("", "", "(i32.const 257)")
}

/// Returns its response record at the very end of linear memory, so it
/// overhangs it.
pub fn return_out_of_bounds() -> Vec<u8> {
    malformed_response("", "", "(i32.const 131068)")
}

/// Answers HTTP status 0.
pub fn invalid_status() -> Vec<u8> {
    malformed_response(
        "",
        "(i32.store16 (i32.const 256) (i32.const 0))",
        "(i32.const 256)",
    )
}

/// A `cabi_realloc` that answers a pointer past the end of memory when the host
/// lowers the request.
pub fn realloc_out_of_bounds() -> Vec<u8> {
    component(
        r#"(module
          (memory (export "memory") 2)
          (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0x7ffffff0))
          (func (export "handler") (param i32) (result i32) (unreachable)))"#,
    )
}

/// A `cabi_realloc` that answers a misaligned pointer (the request's record
/// needs 4).
pub fn realloc_misaligned() -> Vec<u8> {
    component(
        r#"(module
          (memory (export "memory") 2)
          (global $heap (mut i32) (i32.const 4097))
          (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
            (local $p i32)
            (local.set $p (global.get $heap))
            (global.set $heap (i32.add (global.get $heap) (i32.add (local.get 3) (i32.const 1))))
            (local.get $p))
          (func (export "handler") (param i32) (result i32) (unreachable)))"#,
    )
}

/// Passes `log-info` a message that is not UTF-8.
pub fn invalid_utf8_host_argument() -> Vec<u8> {
    module(
        r#"(import "alga:extension/logging" "log-info" (func $log (param i32 i32)))"#,
        r#"(data (i32.const 1024) "ok \c3\28 then \ff")
           (func (export "handler") (param i32) (result i32)
             (call $log (i32.const 1024) (i32.const 13))
             (call $respond (i32.const 200) (i32.const 0) (i32.const 0)))"#,
    )
}

/// Passes `metrics.gauge` a `metric-unit` enum discriminant of 99 (world
/// `runner-plus`).
pub fn invalid_enum_host_argument() -> Vec<u8> {
    component_plus(&module_wat(
        r#"(import "alga:extension/metrics" "gauge" (func $gauge (param i32 i32 f64 i32 i32 i32)))"#,
        r#"(data (i32.const 1024) "depth")
           (func (export "handler") (param i32) (result i32)
             (call $gauge (i32.const 1024) (i32.const 5) (f64.const 1) (i32.const 99) (i32.const 0) (i32.const 0))
             (call $respond (i32.const 200) (i32.const 0) (i32.const 0)))"#,
    ))
}

/// Drops a `wasi:io` pollable handle it never had.
pub fn forged_handle() -> Vec<u8> {
    component_with_wasi(&module_wat(
        CLOCK_IMPORTS,
        r#"(func (export "handler") (param i32) (result i32)
             (call $drop_pollable (i32.const 4242))
             (call $respond (i32.const 200) (i32.const 0) (i32.const 0)))"#,
    ))
}
