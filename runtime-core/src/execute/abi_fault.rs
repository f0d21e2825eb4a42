//! Recognises the errors Wasmtime raises when a guest breaks the canonical ABI —
//! values the host cannot lift (a string or list outside linear memory, a
//! misaligned pointer, an invalid discriminant, bytes that are not UTF-8), a
//! `cabi_realloc` answer it cannot use, a handle the guest never had — so they
//! are the guest's fault (`guest_trap`), not the runner's (`execute_failed`,
//! which callers see as an internal error and operators are alerted on).
//!
//! Wasmtime reports these as plain errors, not `Trap`s, told apart only by their
//! text; the fragments below are those of the pinned release (`engine::
//! WASMTIME_VERSION`), and runtime-core's hostile-guest tests fail on an
//! upgrade that changes one.

/// Root-cause texts of canonical-ABI violations in Wasmtime 48's lifting,
/// lowering and handle tables.
const FRAGMENTS: &[&str] = &[
    "out of bounds of memory",
    "pointer out of bounds",
    "not aligned",
    "discriminant",
    "realloc return:",
    "unknown handle index",
    "size overflow",
    "byte length overflow",
    "byte length too large",
    "payload provided to `",
    "payload expected to `",
    "cannot lift own resource from a borrow",
    "cannot remove owned resource while borrowed",
    "borrow handles still remain at the end of the call",
    "handle is not a",
    "invalid char",
];

/// Whether `e` (from instantiating or calling a guest) is a canonical-ABI
/// violation by the guest; its root cause's text when so.
pub(super) fn guest_abi_fault(e: &wasmtime::Error) -> Option<String> {
    let root = e.root_cause();
    let text = root.to_string();
    let utf8 = root.downcast_ref::<core::str::Utf8Error>().is_some()
        || root.downcast_ref::<std::string::FromUtf8Error>().is_some();
    (utf8 || FRAGMENTS.iter().any(|f| text.contains(f))).then_some(text)
}

/// Whether `e` is Wasmtime's bound on one guest-to-host transfer
/// (`Store::set_hostcall_fuel`): `Some(true)` when raised inside a host call
/// (wasm frames on the stack), `Some(false)` while lifting the handler's
/// response, `None` when it is another error.
pub(super) fn transfer_too_large(e: &wasmtime::Error) -> Option<bool> {
    e.root_cause()
        .to_string()
        .contains("fuel allocated for hostcalls has been exhausted")
        .then(|| e.downcast_ref::<wasmtime::WasmBacktrace>().is_some())
}
