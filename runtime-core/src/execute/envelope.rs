//! The `/v1/execute` response: always the four keys `status`, `headers`,
//! `body_b64`, `error` (null when absent). The body is kept as bytes and put in
//! base64 only when the envelope is serialized (the `/v1/execute` edge and the
//! idempotency record), so the direct route never encodes or decodes it.

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
    /// The body (serialized as `body_b64`: standard padded base64, or null).
    #[serde(rename = "body_b64", with = "base64_body")]
    pub body: Option<Vec<u8>>,
    /// `code` or `code: detail`, or null on success.
    pub error: Option<String>,
}

/// The body as `body_b64`.
mod base64_body {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(body: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match body {
            Some(b) => s.serialize_some(&base64::engine::general_purpose::STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(D::Error::custom)
            })
            .transpose()
    }
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
    pub fn success(status: u16, headers: BTreeMap<String, String>, body: Option<Vec<u8>>) -> Self {
        Envelope {
            status,
            headers: Some(headers),
            body,
            error: None,
        }
    }

    /// An error, with its status and code.
    pub fn error(e: &ExecError) -> Self {
        Envelope {
            status: e.status(),
            headers: Some(BTreeMap::new()),
            body: None,
            error: Some(e.to_string()),
        }
    }

    /// An error outside [`ExecError`]'s codes (gateway-level), with its status.
    pub fn error_code(status: u16, code: &str, detail: &str) -> Self {
        Envelope {
            status,
            headers: Some(BTreeMap::new()),
            body: None,
            error: Some(format!("{code}: {detail}")),
        }
    }

    /// A copy of the body, if any.
    pub fn body(&self) -> Option<Vec<u8>> {
        self.body.clone()
    }

    /// The body as the wire's `body_b64` (standard padded base64).
    pub fn body_b64(&self) -> Option<String> {
        self.body
            .as_ref()
            .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
    }
}
