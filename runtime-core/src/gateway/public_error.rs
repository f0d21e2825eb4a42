//! What a caller sees of a failure behind the gateway. Backend and runtime errors
//! carry text meant for operators: AWS SDK errors with ARNs and account ids, store
//! keys and file paths, Wasmtime error chains. Callers (browsers on the direct
//! route, the host app on `/v1/execute`) get the stable code and a generic message
//! with the request id; the detail goes to the log, under the same request id.

use super::HttpReply;
use crate::execute::Envelope;

/// Codes whose detail is the runner's own business, not the caller's.
const INTERNAL_CODES: &[&str] = &[
    "artifact_integrity",
    "artifact_missing",
    "backend_unavailable",
    "bundle_fetch_failed",
    "bundle_untrusted",
    "engine_init_failed",
    "execute_failed",
    "invalid_manifest",
    "link_failed",
];

/// Whether a failure with this code shows the caller only a generic message.
pub(super) fn is_internal(code: &str) -> bool {
    INTERNAL_CODES.contains(&code)
}

/// The caller's message for an internal failure.
pub(super) fn generic_message(code: &str, request_id: &str) -> String {
    let what = match code {
        "backend_unavailable" | "bundle_fetch_failed" => "backend unavailable",
        _ => "internal error",
    };
    format!("{what} (request {request_id})")
}

/// `env` as the caller may see it: an internal failure keeps its status and code,
/// with the generic message in place of the detail.
pub(super) fn public_envelope(env: &Envelope, code: &str, request_id: &str) -> Envelope {
    match &env.error {
        Some(_) if is_internal(code) => Envelope {
            error: Some(format!("{code}: {}", generic_message(code, request_id))),
            ..env.clone()
        },
        _ => env.clone(),
    }
}

/// Logs an internal failure's detail and returns the caller's JSON error.
pub(super) fn internal_failure(
    status: u16,
    code: &str,
    detail: impl std::fmt::Display,
    request_id: &str,
) -> HttpReply {
    tracing::warn!(target: "alga::backend", request_id, code, detail = %detail, "request failed behind the gateway");
    HttpReply::error(status, code, generic_message(code, request_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::ExecError;

    #[test]
    fn internal_codes_keep_status_and_code_and_lose_the_detail() {
        let env = Envelope::error(&ExecError::BundleFetchFailed(
            "s3://alga-artifacts-123456789012/blobs/ab: AccessDenied".into(),
        ));
        let public = public_envelope(&env, "bundle_fetch_failed", "req-9");
        assert_eq!(public.status, 502);
        assert_eq!(
            public.error.as_deref(),
            Some("bundle_fetch_failed: backend unavailable (request req-9)")
        );
        // A guest's own failure is the caller's to see.
        let env = Envelope::error(&ExecError::Timeout(2000));
        assert_eq!(public_envelope(&env, "timeout", "r"), env);
    }
}
