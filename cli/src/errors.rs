//! How the CLI reports a failure: one line, `error[code]: what happened — what to
//! do`; the detail (the whole error chain, an AWS SDK report) only with `-v`.
//!
//! The codes and their meaning belong to whoever produced the error: runtime-core's
//! error types carry a stable `code()`, and an AWS problem is recognised by
//! `stores_aws` where the typed SDK error exists ([`stores_aws::explain`]). This
//! module only picks the line to print, and the hint for codes a person meets at
//! the command line.

use std::fmt::Write as _;

use crate::commands::request::one_line;

/// A failure with its exit code: 1 the operation was refused or failed, 2 usage,
/// I/O or configuration.
pub struct Failure {
    exit: u8,
    error: anyhow::Error,
    code: Option<String>,
    fix: Option<String>,
}

impl Failure {
    /// The operation was refused (exit 1).
    pub fn refused(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            exit: 1,
            error: error.into(),
            code: None,
            fix: None,
        }
    }

    /// With a stable code (`error[code]`).
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// With what to do about it.
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        self.exit
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            exit: 2,
            error: e.into(),
            code: None,
            fix: None,
        }
    }
}

/// What is printed for a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Stable code, e.g. `aws.table_not_found`, `version_conflict`, `io`.
    pub code: String,
    /// What happened (one line).
    pub what: String,
    /// What to do (one line).
    pub fix: String,
    /// Everything known, for `-v`.
    pub detail: String,
}

/// The longest `what` printed without `-v` (the rest is in the detail).
const WHAT_MAX: usize = 400;

impl Report {
    /// The report of a failure.
    pub fn of(f: &Failure) -> Report {
        let detail = format!("{:#}", f.error);
        if let Some(h) = stores_aws::explain(&detail) {
            return Report {
                code: h.code.to_string(),
                what: h.what,
                fix: h.fix,
                detail,
            };
        }
        let code = f.code.clone().unwrap_or_else(|| code_of(&f.error));
        let fix = f
            .fix
            .clone()
            .or_else(|| fix_for(&code).map(String::from))
            .unwrap_or_else(|| "run again with -v for the detail".into());
        let mut what = one_line(&detail).into_owned();
        if what.chars().count() > WHAT_MAX {
            what = what.chars().take(WHAT_MAX).collect::<String>() + "… (-v shows all)";
        }
        Report {
            code,
            what,
            fix,
            detail,
        }
    }

    /// The one line (plus the detail with `verbose`).
    pub fn render(&self, verbose: bool) -> String {
        let mut out = format!("error[{}]: {} — {}", self.code, self.what, self.fix);
        if verbose && self.detail != self.what {
            out.push('\n');
            for line in self.detail.lines() {
                let _ = write!(out, "\n  {}", one_line(line));
            }
        }
        out
    }
}

/// The stable code of an error without one given: the code of a known error type
/// in its chain, else its kind.
fn code_of(e: &anyhow::Error) -> String {
    use runtime_core::backends::BackendError;
    use runtime_core::publish::PublishError;
    use runtime_core::store::{RegistryError, StoreError};
    for cause in e.chain() {
        if cause
            .downcast_ref::<runtime_core::config::ConfigError>()
            .is_some()
        {
            return "config".into();
        }
        if let Some(p) = cause.downcast_ref::<PublishError>() {
            return p.code().into();
        }
        if let Some(b) = cause.downcast_ref::<BackendError>() {
            return match b {
                BackendError::Config(_) => "config",
                BackendError::Trust { .. } => "trust_bundle_unreadable",
                BackendError::Engine(_) => "engine",
                BackendError::Registry(_) => "backend_unavailable",
            }
            .into();
        }
        if let Some(r) = cause.downcast_ref::<RegistryError>() {
            return match r {
                RegistryError::NotFound(_) => "not_found",
                RegistryError::Invalid(_) => "invalid",
                RegistryError::VersionConflict { .. } => "version_conflict",
                _ => "backend_unavailable",
            }
            .into();
        }
        if cause.downcast_ref::<StoreError>().is_some() {
            return "backend_unavailable".into();
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::NotFound => "not_found",
                std::io::ErrorKind::PermissionDenied => "permission_denied",
                std::io::ErrorKind::AlreadyExists => "already_exists",
                std::io::ErrorKind::AddrInUse => "address_in_use",
                std::io::ErrorKind::ConnectionRefused => "connection_refused",
                _ => "io",
            }
            .into();
        }
    }
    "failed".into()
}

/// What to do about the codes a person meets at the command line.
pub fn fix_for(code: &str) -> Option<&'static str> {
    Some(match code {
        "usage" => "see alga-lambda --help",
        "config" => "fix or set the variables named (docs/configuration.md lists them all)",
        "not_found" => "check the path or name",
        "permission_denied" => "check the file's permissions, or choose another --data directory",
        "already_exists" => "choose another name or remove the existing one",
        "connection_refused" => "start it (alga-lambda up), or point --url at where it listens",
        "address_in_use" => "stop the other server or pick another --port (0 picks a free one)",
        "backend_unavailable" => "check that the backend is reachable (-v shows its error)",
        "signature_missing" => {
            "sign the bundle: alga-lambda sign BUNDLE --key KEY (alga-lambda keygen --trust makes a trusted key)"
        }
        "untrusted_key" => {
            "sign with a key in the trust bundle, or trust the key (alga-lambda keygen --trust, or SIGNING_TRUST_BUNDLE)"
        }
        "revoked_key" => "sign with a key that is not revoked",
        "hash_mismatch" | "bad_signature" | "signature_malformed" => {
            "sign the bundle again: alga-lambda sign BUNDLE --key KEY"
        }
        "trust_bundle_unreadable" | "trust_bundle_malformed" | "duplicate_key" => {
            "fix the trust bundle (the data directory's trust.json, or SIGNING_TRUST_BUNDLE)"
        }
        "invalid_manifest" => {
            "fix manifest.json as the message says (docs/bundles-and-publishing.md)"
        }
        "missing_file" | "missing_manifest" => {
            "build the extension first (npm run build) so the bundle holds every file its manifest names"
        }
        "compile_failed" => {
            "rebuild the component; it must be a WebAssembly component for world runner"
        }
        "version_conflict" => "raise \"version\" in manifest.json and pack again",
        "too_large" | "too_many_entries" => {
            "leave build leftovers (node_modules, sources) out of the bundle"
        }
        "absolute_path" | "parent_dir" | "hidden_segment" | "invalid_path" | "link"
        | "special_file" | "duplicate_entry" | "path_conflict" | "corrupt" => {
            "pack the extension again with alga-lambda pack"
        }
        "not_installed" => {
            "install it: alga-lambda install EXTENSION --tenant TENANT --grant-requested"
        }
        "install_disabled" => "enable it: alga-lambda enable EXTENSION --tenant TENANT",
        "unknown_capabilities" => {
            "name capabilities as cap:context.read, cap:storage.kv, cap:secrets.get, cap:http.fetch, … (docs/host-apis.md)"
        }
        "timeout" => "make the handler faster, or raise the deadline (--timeout-ms)",
        "memory_limit" => "use less memory, or raise the limit (--memory-mb)",
        "guest_trap" | "stack_overflow" | "invalid_response" => {
            "the handler failed: the guest's log lines above say where"
        }
        "output_too_large" => "return a smaller response body",
        "log_limit" | "host_call_limit" | "fuel_exhausted" => "do less work per request",
        "quota_exceeded" => "wait for the quota window to pass, or raise the tenant's quota",
        "bundle_untrusted" => "publish the bundle again with a trusted signature",
        "artifact_missing" | "artifact_integrity" => {
            "recompile it: alga-lambda recompile EXTENSION VERSION"
        }
        "csrf_rejected" | "host_not_allowed" => "see docs/local-development.md (up's guards)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_one_line_with_code_and_fix_and_the_detail_only_when_verbose() {
        let f = Failure::refused(anyhow::anyhow!("line one\nline two")).code("version_conflict");
        let r = Report::of(&f);
        let line = r.render(false);
        assert_eq!(
            line,
            "error[version_conflict]: line one\\nline two — raise \"version\" in manifest.json and pack again"
        );
        assert!(!line.contains('\n'));
        let verbose = r.render(true);
        assert!(verbose.starts_with(&line), "{verbose}");
        assert!(verbose.contains("\n  line one\n  line two"), "{verbose}");
    }

    #[test]
    fn io_errors_get_a_code_from_their_kind() {
        let e = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let f = Failure::from(anyhow::Error::new(e).context("reading x.json"));
        let r = Report::of(&f);
        assert_eq!(r.code, "not_found");
        assert_eq!(r.what, "reading x.json: gone");
        assert_eq!(f.exit_code(), 2);
    }
}
