//! The `/v1/execute` response: always the four keys `status`, `headers`,
//! `body_b64`, `error` (null when absent).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::error::ExecError;

/// The four-key response envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The guest's status, or the error's.
    pub status: u16,
    /// Response headers (last duplicate wins); serialized as `{}` when there are
    /// none, since Alga's callers read it as an object (the seed sends `{}` too).
    #[serde(serialize_with = "headers_object")]
    pub headers: Option<BTreeMap<String, String>>,
    /// Standard padded base64 of the body, or null.
    pub body_b64: Option<String>,
    /// `code` or `code: detail`, or null on success.
    pub error: Option<String>,
}

/// `None` (an envelope stored before headers were always set) as `{}`.
fn headers_object<S: serde::Serializer>(
    headers: &Option<BTreeMap<String, String>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match headers {
        Some(h) => h.serialize(serializer),
        None => BTreeMap::<String, String>::new().serialize(serializer),
    }
}

impl Envelope {
    /// A successful guest response.
    pub fn success(status: u16, headers: BTreeMap<String, String>, body: Option<&[u8]>) -> Self {
        Envelope {
            status,
            headers: Some(headers),
            body_b64: body.map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
            error: None,
        }
    }

    /// An error, with its status and code.
    pub fn error(e: &ExecError) -> Self {
        Envelope {
            status: e.status(),
            headers: Some(BTreeMap::new()),
            body_b64: None,
            error: Some(e.to_string()),
        }
    }

    /// An error outside [`ExecError`]'s codes (gateway-level), with its status.
    pub fn error_code(status: u16, code: &str, detail: &str) -> Self {
        Envelope {
            status,
            headers: Some(BTreeMap::new()),
            body_b64: None,
            error: Some(format!("{code}: {detail}")),
        }
    }

    /// The decoded body, if any.
    pub fn body(&self) -> Option<Vec<u8>> {
        self.body_b64
            .as_ref()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
    }
}
