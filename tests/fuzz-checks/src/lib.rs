//! What each fuzz target checks, shared by the fuzzer and the test suite.
//!
//! `fuzz/fuzz_targets/<target>.rs` depends on this crate and calls its check; runtime-core's `fuzz_corpus` test replays every committed corpus
//! file through the same function on stable Rust, so the two cannot drift. Each
//! check drives one parser's public entry point with the input and panics when an
//! invariant breaks; an input the parser refuses is fine, a panic is a finding.
//!
//! A crate of its own with only `runtime_core`, `arbitrary`, `serde_json`, `tar`
//! and `zstd`: the fuzz crate builds it under the sanitizer without the whole of
//! test-support, whose AWS SDK and Cranelift would cost minutes for nothing.

mod bundle;
mod cron;
mod egress;
mod endpoints;
mod execute;
mod manifest;
mod signature;
mod ui;

pub use bundle::bundle_archive;
pub use cron::cron;
pub use egress::egress;
pub use endpoints::endpoint_match;
pub use execute::execute_request;
pub use manifest::manifest;
pub use signature::{SignatureInput, signature, signature_input, trusted_key};
pub use ui::ui_path;

/// A target's check: panics when an invariant breaks.
pub type Check = fn(&[u8]);

/// Every fuzz target by name (`fuzz/fuzz_targets/<name>.rs`, `fuzz/corpus/<name>/`).
pub const TARGETS: &[(&str, Check)] = &[
    ("manifest", manifest),
    ("endpoint_match", endpoint_match),
    ("bundle_archive", bundle_archive),
    ("signature", signature),
    ("ui_path", ui_path),
    ("cron", cron),
    ("execute_request", execute_request),
    ("egress", egress),
];

/// Runs the check of target `name` on `data`.
pub fn run(name: &str, data: &[u8]) {
    let (_, check) = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fuzz target named {name:?}"));
    check(data)
}

/// Percent-decodes once, keeping a `%` that is not followed by two hex digits;
/// bytes that are not UTF-8 become U+FFFD. The oracle's own decoder (the parsers'
/// are what is under test).
pub(crate) fn percent_decode_lossy(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = bytes.get(i + 1..i + 3)
            && h.iter().all(u8::is_ascii_hexdigit)
        {
            let hex = std::str::from_utf8(h).expect("hex digits are ASCII");
            out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes every byte but ASCII letters, digits and `keep`.
pub(crate) fn percent_encode(text: &str, keep: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || keep.as_bytes().contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
