//! The `/v1/execute` request as the Alga server sends it (snake_case JSON; unknown
//! fields ignored), and the routing headers that come with it.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The request body of `POST /v1/execute`.
#[derive(Debug, Clone, Deserialize)]
pub struct ExecuteRequest {
    /// Who runs what.
    pub context: RequestContext,
    /// The HTTP request handed to the guest.
    pub http: HttpPayload,
    /// Requested limits (clamped to the runner's maxima).
    #[serde(default)]
    pub limits: RequestedLimits,
    /// Inline secrets for the install.
    #[serde(default)]
    pub secret_envelope: Option<SecretEnvelope>,
    /// Capabilities the caller asks for (they can only narrow the install's grants).
    #[serde(default)]
    pub providers: Option<Vec<String>>,
    /// The signed-in user.
    #[serde(default)]
    pub user: Option<UserPayload>,
}

/// `context` of the request.
#[derive(Debug, Clone, Deserialize)]
pub struct RequestContext {
    /// Tenant.
    pub tenant_id: String,
    /// Extension.
    pub extension_id: String,
    /// `sha256:<hex>` or bare hex of the bundle.
    pub content_hash: String,
    /// Request id.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Install id.
    #[serde(default)]
    pub install_id: Option<String>,
    /// Version id.
    #[serde(default)]
    pub version_id: Option<String>,
    /// Install configuration.
    #[serde(default)]
    pub config: Option<BTreeMap<String, String>>,
}

/// `http` of the request.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpPayload {
    /// Method.
    pub method: String,
    /// Path (may already carry a query string).
    pub path: String,
    /// Query parameters, form-urlencoded onto the path.
    #[serde(default)]
    pub query: Option<BTreeMap<String, String>>,
    /// Headers.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Standard base64 body; absent/null → no body, `""` → empty body.
    #[serde(default)]
    pub body_b64: Option<String>,
}

/// `limits` of the request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestedLimits {
    /// Deadline in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Linear memory in MiB.
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// Fuel (only when the runner has fuel metering on).
    #[serde(default)]
    pub fuel: Option<u64>,
}

/// `secret_envelope` of the request.
#[derive(Debug, Clone, Deserialize)]
pub struct SecretEnvelope {
    /// The encoded secrets.
    pub ciphertext_b64: String,
    /// Secret version.
    #[serde(default)]
    pub version: Option<String>,
    /// `inline/base64` (default) or `vault-transit:*`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// RFC 3339 instant after which the secrets are `expired`.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Vault transit key.
    #[serde(default)]
    pub key_path: Option<String>,
    /// Vault transit mount.
    #[serde(default)]
    pub mount: Option<String>,
}

/// `user` of the request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UserPayload {
    /// User id.
    pub user_id: String,
    /// E-mail.
    #[serde(default)]
    pub user_email: String,
    /// Name.
    #[serde(default)]
    pub user_name: String,
    /// `internal` or `client`.
    #[serde(default)]
    pub user_type: String,
    /// Client (company) name.
    #[serde(default, alias = "company_name")]
    pub client_name: String,
    /// Client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Extra fields.
    #[serde(default)]
    pub additional_fields: Option<BTreeMap<String, String>>,
}

/// The routing headers of `/v1/execute` (`x-alga-tenant`, `x-alga-extension`, ...).
#[derive(Debug, Clone, Default)]
pub struct RoutingHeaders {
    /// `x-alga-tenant`.
    pub tenant: Option<String>,
    /// `x-alga-extension`.
    pub extension: Option<String>,
    /// `x-request-id`.
    pub request_id: Option<String>,
}

/// The body of `/v1/execute` could not be read as a request.
#[derive(Debug, thiserror::Error)]
#[error("invalid execute request: {0}")]
pub struct RequestParseError(#[from] serde_json::Error);

impl ExecuteRequest {
    /// Parses the JSON body.
    pub fn from_json(body: &[u8]) -> Result<Self, RequestParseError> {
        Ok(serde_json::from_slice(body)?)
    }

    /// The guest's URL: the path, then the query form-urlencoded after `?` (or `&`
    /// when the path already has a query).
    pub fn guest_url(&self) -> String {
        let mut url = self.http.path.clone();
        if let Some(q) = self.http.query.as_ref().filter(|q| !q.is_empty()) {
            let encoded = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(q.iter())
                .finish();
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&encoded);
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_shape_and_builds_the_url() {
        let r = ExecuteRequest::from_json(
            br#"{"context":{"tenant_id":"t","extension_id":"e","content_hash":"sha256:00","unknown":1},
                "http":{"method":"GET","path":"/a?x=1","query":{"b":"c d"}},
                "user":{"user_id":"u","company_name":"Acme"},"extra":true}"#,
        )
        .unwrap();
        assert_eq!(r.guest_url(), "/a?x=1&b=c+d");
        assert_eq!(r.user.unwrap().client_name, "Acme");
        assert!(r.limits.timeout_ms.is_none());
    }
}
