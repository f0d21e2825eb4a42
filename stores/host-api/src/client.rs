//! One call to the host app's internal API (`/api/internal/ext-*/install/{id}`): a
//! JSON POST with the runner's credential (`x-runner-auth`), through runtime-core's
//! host API client (bounded request and response sizes, a time limit, no redirects).

use bytes::Bytes;
use runtime_core::backends::BackendError;
use runtime_core::host::HostApiSettings;
use runtime_core::host::host_api::{Credential, HostApi};
use runtime_core::host::http::EgressError;
use runtime_core::store::StoreError;
use serde_json::Value;

/// The host app's internal API, configured.
pub struct InternalApi {
    api: HostApi,
    response_max: usize,
}

/// What the host app answered: its status and its body as JSON (when it is JSON).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub json: Option<Value>,
}

impl Reply {
    /// The answer's `code` (`REVISION_MISMATCH`, `RATE_LIMITED`, ...), if any.
    pub fn code(&self) -> Option<&str> {
        self.json.as_ref()?.get("code")?.as_str()
    }

    /// The answer's `error` text, else a line naming the status.
    pub fn message(&self) -> String {
        self.json
            .as_ref()
            .and_then(|j| j.get("error"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("the host app answered {}", self.status))
    }

    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a call produced no answer.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The answer was over the response cap (a listing page with large values).
    TooLarge,
    /// Transport failure (→ `Unavailable`) or a request we could not send (→ `Internal`).
    Store(StoreError),
}

impl From<CallError> for StoreError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::TooLarge => StoreError::Internal(
                "the host app's answer is over the host API response cap (ALGA_HOST_API_MAX_BYTES)"
                    .into(),
            ),
            CallError::Store(e) => e,
        }
    }
}

impl InternalApi {
    /// The internal API of `settings`; refuses settings without a base URL or
    /// without the runner's credential (`what` names the feature for the message).
    pub fn new(settings: &HostApiSettings, what: &str) -> Result<Self, BackendError> {
        if settings.base.as_deref().is_none_or(|b| b.trim().is_empty()) {
            return Err(BackendError::Config(format!(
                "{what} needs the host app's base URL (ALGA_HOST_API_BASE, or Alga's \
                 STORAGE_API_BASE_URL)"
            )));
        }
        if settings.bridge_token.is_none() && settings.token.is_none() {
            return Err(BackendError::Config(format!(
                "{what} needs the runner's credential for the host app's internal API \
                 (ALGA_HOST_API_BRIDGE_TOKEN, or Alga's RUNNER_STORAGE_API_TOKEN): Alga \
                 refuses calls without x-runner-auth"
            )));
        }
        let api = HostApi::new(settings.clone()).ok_or_else(|| {
            BackendError::Config(format!(
                "{what}: the host app's base URL {:?} is not a URL",
                settings.base.as_deref().unwrap_or_default()
            ))
        })?;
        Ok(InternalApi {
            api,
            response_max: settings.response_body_max,
        })
    }

    /// The largest answer read.
    pub fn response_max(&self) -> usize {
        self.response_max
    }

    /// POSTs `body` to `/api/internal/{kind}/install/{install_id}`.
    pub(crate) async fn post(
        &self,
        kind: &str,
        install_id: &str,
        body: &Value,
    ) -> Result<Reply, CallError> {
        let path = format!("/api/internal/{kind}/install/{}", path_segment(install_id));
        let bytes = serde_json::to_vec(body)
            .map_err(|e| CallError::Store(StoreError::Internal(format!("request body: {e}"))))?;
        let headers = [("content-type", "application/json".to_string())];
        let r = self
            .api
            .call(
                Credential::Bridge,
                http::Method::POST,
                &path,
                &headers,
                Some(Bytes::from(bytes)),
                None,
            )
            .await
            .map_err(|e| transport(kind, e))?;
        Ok(Reply {
            status: r.status,
            json: serde_json::from_slice(&r.body).ok(),
        })
    }
}

/// `segment` percent-encoded for one path segment: everything but RFC 3986's
/// unreserved characters (Alga decodes it with `decodeURIComponent`; a form
/// encoder's `+` for a space would come back as a plus).
fn path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A failed call as a store error: the network and the peer's time → `Unavailable`
/// (the request answers 503 and the next one works once the host app is back);
/// what we could not send at all → `Internal`.
fn transport(kind: &str, e: EgressError) -> CallError {
    match e {
        EgressError::ResponseTooLarge { .. } => CallError::TooLarge,
        EgressError::Dns(_)
        | EgressError::Timeout { .. }
        | EgressError::Connect(_)
        | EgressError::Tls(_)
        | EgressError::Protocol(_) => CallError::Store(StoreError::Unavailable(format!(
            "host app {kind}: {}: {e}",
            e.code()
        ))),
        other => CallError::Store(StoreError::Internal(format!(
            "host app {kind}: {}: {other}",
            other.code()
        ))),
    }
}

/// The failure every 5xx and rate limit becomes: retry later.
pub(crate) fn unavailable(kind: &str, r: &Reply) -> StoreError {
    StoreError::Unavailable(format!(
        "host app {kind} answered {}: {}",
        r.status,
        r.message()
    ))
}

/// A refusal no retry fixes (credential, missing install, edition), logged with its
/// status.
pub(crate) fn internal(kind: &str, r: &Reply, hint: &str) -> StoreError {
    StoreError::Internal(format!(
        "host app {kind} answered {}: {}{hint}",
        r.status,
        r.message()
    ))
}

/// The store error of a status that means the same for every operation, or `None`
/// for the statuses the operation maps itself (2xx, 400, 404, 409, 429).
pub(crate) fn common_failure(kind: &str, install_id: &str, r: &Reply) -> Option<StoreError> {
    Some(match r.status {
        401 | 403 if r.code() != Some("NAMESPACE_DENIED") => internal(
            kind,
            r,
            " (the runner's credential, ALGA_HOST_API_BRIDGE_TOKEN, or a disabled install)",
        ),
        // The Community Edition has no extension storage or scheduler.
        501 => internal(kind, r, " (the host app's edition has no such API)"),
        500..=599 => unavailable(kind, r),
        200..=299 | 400 | 403 | 404 | 409 | 429 => return None,
        _ => internal(kind, r, &format!(" (install {install_id})")),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn install_ids_are_one_path_segment() {
        assert_eq!(
            super::path_segment("5ca1ab1e-0000-4000-8000-000000000001"),
            "5ca1ab1e-0000-4000-8000-000000000001"
        );
        assert_eq!(super::path_segment("a b/c#d%"), "a%20b%2Fc%23d%25");
        assert_eq!(super::path_segment("é"), "%C3%A9");
    }
}
