//! Execution errors: a stable code and status for each, in the envelope's `error`
//! as `code` or `code: detail`. The first six keep the seed runner's strings.

/// Why a request did not produce a guest response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// `x-alga-tenant` or `x-alga-extension` is missing or empty.
    #[error("missing_routing_headers")]
    MissingRoutingHeaders,
    /// The routing headers disagree with the request's context.
    #[error("routing_mismatch: {0}")]
    RoutingMismatch(String),
    /// The engine could not be built.
    #[error("engine_init_failed: {0}")]
    EngineInitFailed(String),
    /// The artifact could not be fetched from its store.
    #[error("bundle_fetch_failed: {0}")]
    BundleFetchFailed(String),
    /// `providers` named capabilities that do not exist.
    #[error("unknown_capabilities: {}", .0.join(", "))]
    UnknownCapabilities(Vec<String>),
    /// The secret envelope could not be decoded.
    #[error("secret_decrypt_failed")]
    SecretDecryptFailed,
    /// Anything else that failed while running the guest.
    #[error("execute_failed: {0}")]
    ExecuteFailed(String),
    /// `content_hash` is not a sha256.
    #[error("invalid_content_hash: {0}")]
    InvalidContentHash(String),
    /// The request could not be handed to the guest (bad base64, oversize body).
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// No artifact for this runtime; a recompile is needed.
    #[error("artifact_missing: {0}")]
    ArtifactMissing(String),
    /// The artifact failed its sha256 check and was not loaded.
    #[error("artifact_integrity: {0}")]
    ArtifactIntegrity(String),
    /// A backend is unavailable; retry later.
    #[error("backend_unavailable: {0}")]
    BackendUnavailable(String),
    /// The component imports something this runner does not provide.
    #[error("link_failed: {0}")]
    LinkFailed(String),
    /// The tenant has no install of the extension with this bundle.
    #[error("not_installed: {0}")]
    NotInstalled(String),
    /// The install is disabled.
    #[error("install_disabled: {0}")]
    InstallDisabled(String),
    /// The bundle's signature no longer verifies against the trust bundle (revoked key).
    #[error("bundle_untrusted: {0}")]
    BundleUntrusted(String),
    /// The wall-clock deadline passed.
    #[error("timeout: deadline of {0} ms exceeded")]
    Timeout(u64),
    /// Linear memory (or a table) went past its limit.
    #[error("memory_limit: {0}")]
    MemoryLimit(String),
    /// The fuel budget ran out.
    #[error("fuel_exhausted: fuel budget of {0} exhausted")]
    FuelExhausted(u64),
    /// The guest's stack overflowed (deep recursion).
    #[error("stack_overflow: guest stack exhausted")]
    StackOverflow,
    /// The guest trapped.
    #[error("guest_trap: {0}")]
    GuestTrap(String),
    /// The guest logged more than its budget.
    #[error("log_limit: {0}")]
    LogLimit(String),
    /// The guest made more host calls than its budget.
    #[error("host_call_limit: {0}")]
    HostCallLimit(String),
    /// The response body is over the cap.
    #[error("output_too_large: response body of {size} bytes exceeds the {limit} byte limit")]
    OutputTooLarge {
        /// Body size.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// The guest's response is not a valid HTTP response.
    #[error("invalid_response: {0}")]
    InvalidResponse(String),
    /// All instance slots are busy.
    #[error("capacity_exhausted: no free instance slot")]
    CapacityExhausted,
    /// The tenant's invocation quota for this extension is used up.
    #[error(
        "quota_exceeded: {limit} invocations per {window} used up; retry after {retry_after_secs} s"
    )]
    QuotaExceeded {
        /// `minute` or `day`.
        window: &'static str,
        /// The limit.
        limit: u64,
        /// Seconds until the window resets.
        retry_after_secs: u64,
    },
}

impl ExecError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        use ExecError::*;
        match self {
            MissingRoutingHeaders => "missing_routing_headers",
            RoutingMismatch(_) => "routing_mismatch",
            EngineInitFailed(_) => "engine_init_failed",
            BundleFetchFailed(_) => "bundle_fetch_failed",
            UnknownCapabilities(_) => "unknown_capabilities",
            SecretDecryptFailed => "secret_decrypt_failed",
            ExecuteFailed(_) => "execute_failed",
            InvalidContentHash(_) => "invalid_content_hash",
            InvalidRequest(_) => "invalid_request",
            ArtifactMissing(_) => "artifact_missing",
            ArtifactIntegrity(_) => "artifact_integrity",
            BackendUnavailable(_) => "backend_unavailable",
            LinkFailed(_) => "link_failed",
            NotInstalled(_) => "not_installed",
            InstallDisabled(_) => "install_disabled",
            BundleUntrusted(_) => "bundle_untrusted",
            Timeout(_) => "timeout",
            MemoryLimit(_) => "memory_limit",
            FuelExhausted(_) => "fuel_exhausted",
            StackOverflow => "stack_overflow",
            GuestTrap(_) => "guest_trap",
            LogLimit(_) => "log_limit",
            HostCallLimit(_) => "host_call_limit",
            OutputTooLarge { .. } => "output_too_large",
            InvalidResponse(_) => "invalid_response",
            CapacityExhausted => "capacity_exhausted",
            QuotaExceeded { .. } => "quota_exceeded",
        }
    }

    /// The envelope's `status` for this error.
    pub fn status(&self) -> u16 {
        use ExecError::*;
        match self {
            MissingRoutingHeaders
            | RoutingMismatch(_)
            | UnknownCapabilities(_)
            | InvalidContentHash(_)
            | InvalidRequest(_) => 400,
            InstallDisabled(_) | BundleUntrusted(_) => 403,
            NotInstalled(_) => 404,
            BundleFetchFailed(_) | OutputTooLarge { .. } | InvalidResponse(_) => 502,
            ArtifactMissing(_)
            | ArtifactIntegrity(_)
            | BackendUnavailable(_)
            | CapacityExhausted => 503,
            Timeout(_) => 504,
            QuotaExceeded { .. } => 429,
            EngineInitFailed(_) | SecretDecryptFailed | ExecuteFailed(_) | LinkFailed(_)
            | MemoryLimit(_) | FuelExhausted(_) | StackOverflow | GuestTrap(_) | LogLimit(_)
            | HostCallLimit(_) => 500,
        }
    }
}

impl ExecError {
    /// What happened, without the code (the envelope's `error` is `code: detail`).
    pub fn detail(&self) -> String {
        let text = self.to_string();
        match text.strip_prefix(self.code()) {
            Some(rest) => rest.trim_start_matches(':').trim().to_string(),
            None => text,
        }
    }

    /// Whether the same request may succeed later without anyone changing
    /// anything (a backend back, capacity freed, a quota window passed, an
    /// artifact recompiled).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ExecError::BackendUnavailable(_)
                | ExecError::CapacityExhausted
                | ExecError::QuotaExceeded { .. }
                | ExecError::ArtifactMissing(_)
                | ExecError::BundleFetchFailed(_)
        )
    }

    /// Seconds a client should wait before retrying, when the error says so.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ExecError::QuotaExceeded {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            ExecError::CapacityExhausted | ExecError::BackendUnavailable(_) => Some(1),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ExecError;

    #[test]
    fn detail_is_the_message_without_its_code() {
        assert_eq!(
            ExecError::NotInstalled("x is not installed".into()).detail(),
            "x is not installed"
        );
        assert_eq!(
            ExecError::Timeout(250).detail(),
            "deadline of 250 ms exceeded"
        );
        // A detail that itself starts with a code-like word keeps it.
        assert_eq!(
            ExecError::ExecuteFailed("execute_failed: inner".into()).detail(),
            "execute_failed: inner"
        );
        // Codes without a detail give an empty one.
        assert_eq!(ExecError::SecretDecryptFailed.detail(), "");
    }

    #[test]
    fn retryable_errors_are_the_ones_time_can_fix() {
        for e in [
            ExecError::BackendUnavailable("x".into()),
            ExecError::CapacityExhausted,
            ExecError::ArtifactMissing("x".into()),
        ] {
            assert!(e.is_retryable(), "{e}");
        }
        for e in [
            ExecError::NotInstalled("x".into()),
            ExecError::Timeout(1),
            ExecError::GuestTrap("x".into()),
            ExecError::InvalidRequest("x".into()),
        ] {
            assert!(!e.is_retryable(), "{e}");
        }
    }
}
