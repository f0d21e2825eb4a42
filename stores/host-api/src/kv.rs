//! Guest storage kept by the host app: [`KvStore`] over Alga's
//! `POST /api/internal/ext-storage/install/{installId}` (`{operation: get|put|delete|list,
//! namespace, key, value, metadata, ifRevision, cursor, limit, includeValues,
//! includeMetadata}`).
//!
//! Values are stored as Alga's own runner stores them — standard base64 text with
//! metadata `{"encoding": "base64-bytes"}` — and read back by its rules, so either
//! runner reads what the other wrote. What the API cannot express is refused before
//! anything is sent (docs/backends.md, "Host app stores").

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use runtime_core::store::kv::{validate_key, validate_namespace, validate_value};
use runtime_core::store::{KvEntry, KvError, KvLimits, KvPage, KvScope, KvStore, StoreError};
use serde_json::{Map, Value, json};

use crate::client::{CallError, InternalApi, Reply, common_failure, internal, unavailable};

const KIND: &str = "ext-storage";

/// Metadata Alga's runner writes beside a value: "the value is base64 of the bytes".
const ENCODING: &str = "base64-bytes";

/// Alga counts a value's size as the bytes of its JSON text (`JSON.stringify`) and
/// refuses more than 64 KiB; a base64 string of `n` bytes is `4⌈n/3⌉ + 2` of them, so
/// 49,149 bytes is the largest value either runner can store there.
pub const VALUE_MAX_BYTES: usize = (((64 << 10) - 2) / 4) * 3;

/// Entries per listing page (Alga's largest `limit`).
const PAGE_MAX: usize = 100;

/// The most one listed entry takes in an answer: a value at the limit as base64,
/// key and namespace escaped at their worst (6 bytes a character), ids, dates,
/// metadata.
const ENTRY_MAX_BYTES: usize = 4 * VALUE_MAX_BYTES.div_ceil(3) + 6 * (256 + 128) + 1024;

/// The limits of Alga's storage (its `DEFAULT_QUOTA`), with the value bound the
/// base64 encoding leaves.
pub fn host_limits() -> KvLimits {
    KvLimits {
        value_max_bytes: VALUE_MAX_BYTES,
        page_size: PAGE_MAX,
        ..KvLimits::default()
    }
}

/// [`KvStore`] over the host app's extension storage.
pub struct HostApiKvStore {
    api: Arc<InternalApi>,
    limits: KvLimits,
}

impl HostApiKvStore {
    /// A store over `api` with Alga's limits ([`host_limits`]).
    pub fn new(api: Arc<InternalApi>) -> Self {
        Self::with_limits(api, host_limits())
    }

    /// A store reporting `limits`: they must be the ones the host app enforces (the
    /// count limits are decided there; the name and value bounds are checked here
    /// first). The page size is at most 100 and the value bound at most
    /// [`VALUE_MAX_BYTES`], whatever `limits` says.
    pub fn with_limits(api: Arc<InternalApi>, limits: KvLimits) -> Self {
        let limits = KvLimits {
            value_max_bytes: limits.value_max_bytes.min(VALUE_MAX_BYTES),
            page_size: limits.page_size.clamp(1, PAGE_MAX),
            ..limits
        };
        HostApiKvStore { api, limits }
    }

    async fn call(&self, scope: &KvScope, body: Value) -> Result<Reply, CallError> {
        // The tenant is not sent: Alga derives it from the install id (see the docs).
        self.api.post(KIND, &scope.install_id, &body).await
    }

    /// One listing request of at most `limit` entries.
    async fn list_page(
        &self,
        scope: &KvScope,
        ns: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Reply, CallError> {
        let mut body = Map::new();
        body.insert("operation".into(), "list".into());
        body.insert("namespace".into(), ns.into());
        body.insert("limit".into(), limit.into());
        body.insert("includeValues".into(), true.into());
        body.insert("includeMetadata".into(), true.into());
        if let Some(after) = after {
            body.insert("cursor".into(), cursor_after(after).into());
        }
        self.call(scope, Value::Object(body)).await
    }
}

/// Alga's cursor for "keys strictly after `key`": base64url of `{"key": key}`.
///
/// Alga's own `nextCursor` names the first key of the *next* page while its query
/// asks for keys after the cursor, so following it skips one entry per page; we
/// never follow it and build the cursor from the last key we returned instead.
pub fn cursor_after(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(json!({ "key": key }).to_string())
}

/// The failure of an answer that is not 2xx (every operation but `get`'s 404).
fn failure(scope: &KvScope, r: &Reply) -> KvError {
    if let Some(e) = common_failure(KIND, &scope.install_id, r) {
        return KvError::Store(e);
    }
    match (r.status, r.code()) {
        (409, _) => KvError::Conflict,
        // Namespace and key counts, and the install's total bytes.
        (429, Some("QUOTA_EXCEEDED")) => KvError::LimitReached(r.message()),
        (429, _) => KvError::Store(unavailable(KIND, r)),
        (400 | 403, _) => KvError::Invalid(r.message()),
        (404, _) => KvError::Store(internal(
            KIND,
            r,
            &format!(
                " (no install {:?} in the host app: it knows installs by its own id)",
                scope.install_id
            ),
        )),
        _ => KvError::Store(internal(KIND, r, "")),
    }
}

fn unreadable(what: &str) -> KvError {
    KvError::Store(StoreError::Internal(format!(
        "host app {KIND}: unreadable answer ({what})"
    )))
}

/// The bytes of a stored value, by the rules of Alga's runner: base64 when the
/// metadata says `base64-bytes`; an object's `_bytes_b64`; a string as base64 when
/// it decodes, else its UTF-8; any other JSON as its text.
pub fn decode_value(value: &Value, metadata: Option<&Value>) -> Result<Vec<u8>, String> {
    let encoding = metadata
        .and_then(|m| m.get("encoding"))
        .and_then(Value::as_str);
    if encoding == Some(ENCODING) {
        let text = value
            .as_str()
            .ok_or("a base64-bytes value that is not a string")?;
        return STANDARD
            .decode(text)
            .map_err(|e| format!("a base64-bytes value that is not base64: {e}"));
    }
    if let Some(text) = value.get("_bytes_b64").and_then(Value::as_str) {
        return STANDARD
            .decode(text)
            .map_err(|e| format!("a _bytes_b64 value that is not base64: {e}"));
    }
    if let Some(text) = value.as_str() {
        return Ok(STANDARD
            .decode(text)
            .unwrap_or_else(|_| text.as_bytes().to_vec()));
    }
    serde_json::to_vec(value).map_err(|e| e.to_string())
}

/// One entry of a `get` answer or a listing's `items`.
fn entry_of(v: &Value, ns: &str, key: Option<&str>) -> Result<KvEntry, KvError> {
    let key = match v.get("key").and_then(Value::as_str) {
        Some(k) => k.to_string(),
        None => key
            .ok_or_else(|| unreadable("an entry without a key"))?
            .to_string(),
    };
    let revision = v
        .get("revision")
        .and_then(Value::as_u64)
        .ok_or_else(|| unreadable("an entry without a revision"))?;
    let value = decode_value(v.get("value").unwrap_or(&Value::Null), v.get("metadata"))
        .map_err(|e| unreadable(&e))?;
    Ok(KvEntry {
        namespace: ns.to_string(),
        key,
        value,
        revision,
    })
}

#[async_trait]
impl KvStore for HostApiKvStore {
    /// Alga looks installs up by its own install UUID.
    fn keyed_by_host_app_ids(&self) -> bool {
        true
    }

    async fn get(&self, scope: &KvScope, ns: &str, key: &str) -> Result<Option<KvEntry>, KvError> {
        validate_namespace(&self.limits, ns)?;
        validate_key(&self.limits, key)?;
        let r = self
            .call(
                scope,
                json!({"operation": "get", "namespace": ns, "key": key}),
            )
            .await
            .map_err(|e| KvError::Store(e.into()))?;
        // A missing record and a missing install are both 404; only the first is
        // "no entry".
        if r.status == 404 && r.message() == "record not found" {
            return Ok(None);
        }
        if !r.ok() {
            return Err(failure(scope, &r));
        }
        let json = r.json.as_ref().ok_or_else(|| unreadable("not JSON"))?;
        entry_of(json, ns, Some(key)).map(Some)
    }

    async fn put(
        &self,
        scope: &KvScope,
        ns: &str,
        key: &str,
        value: &[u8],
        expected: Option<u64>,
    ) -> Result<KvEntry, KvError> {
        validate_namespace(&self.limits, ns)?;
        validate_key(&self.limits, key)?;
        validate_value(&self.limits, value)?;
        let mut body = json!({
            "operation": "put",
            "namespace": ns,
            "key": key,
            "value": STANDARD.encode(value),
            "metadata": {"encoding": ENCODING},
        });
        match expected {
            None => {}
            // Alga's `ifRevision` requires an existing entry with that revision, so
            // "create only if absent" has no atomic form there: refused, nothing sent.
            Some(0) => {
                return Err(KvError::Invalid(
                    "a create-only put (revision 0) cannot be expressed by the host app's \
                     storage, which checks revisions of existing entries only; put without \
                     a revision, or with the entry's current one"
                        .into(),
                ));
            }
            Some(r) => {
                body["ifRevision"] = r.into();
            }
        }
        let r = self
            .call(scope, body)
            .await
            .map_err(|e| KvError::Store(e.into()))?;
        if !r.ok() {
            return Err(failure(scope, &r));
        }
        // The write is done; an answer without its revision still must not pass
        // for success with a made-up one.
        let revision = r
            .json
            .as_ref()
            .and_then(|j| j.get("revision"))
            .and_then(Value::as_u64)
            .ok_or_else(|| unreadable("a put answer without a revision"))?;
        Ok(KvEntry {
            namespace: ns.to_string(),
            key: key.to_string(),
            value: value.to_vec(),
            revision,
        })
    }

    async fn delete(&self, scope: &KvScope, ns: &str, key: &str) -> Result<(), KvError> {
        validate_namespace(&self.limits, ns)?;
        validate_key(&self.limits, key)?;
        let r = self
            .call(
                scope,
                json!({"operation": "delete", "namespace": ns, "key": key}),
            )
            .await
            .map_err(|e| KvError::Store(e.into()))?;
        if !r.ok() {
            return Err(failure(scope, &r));
        }
        // `{"success": false}` is Alga's "there was no such entry": deleting a
        // missing key succeeds (ALGA-COMPAT §2; Alga's runner calls it a conflict).
        Ok(())
    }

    async fn list(
        &self,
        scope: &KvScope,
        ns: &str,
        after: Option<&str>,
    ) -> Result<KvPage, KvError> {
        validate_namespace(&self.limits, ns)?;
        let full = self.limits.page_size;
        let r = match self.list_page(scope, ns, after, full).await {
            // A page of large values can be over the response cap: ask for as many
            // as surely fit instead (a shorter page is still a page).
            Err(CallError::TooLarge) => {
                let fits = (self.api.response_max() / ENTRY_MAX_BYTES).clamp(1, full);
                self.list_page(scope, ns, after, fits).await
            }
            other => other,
        }
        .map_err(|e| KvError::Store(e.into()))?;
        if !r.ok() {
            return Err(failure(scope, &r));
        }
        let json = r.json.as_ref().ok_or_else(|| unreadable("not JSON"))?;
        let items = json
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| unreadable("a listing without items"))?;
        let entries = items
            .iter()
            .map(|item| entry_of(item, ns, None))
            .collect::<Result<Vec<_>, _>>()?;
        let more = json
            .get("nextCursor")
            .is_some_and(|c| c.as_str().is_some_and(|c| !c.is_empty()));
        Ok(KvPage { entries, more })
    }

    fn limits(&self) -> KvLimits {
        self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_by_the_rules_of_algas_runner() {
        let meta = json!({"encoding": "base64-bytes"});
        assert_eq!(
            decode_value(&json!("AAH/"), Some(&meta)).unwrap(),
            [0, 1, 255]
        );
        assert!(decode_value(&json!("not base64!"), Some(&meta)).is_err());
        assert!(decode_value(&json!(7), Some(&meta)).is_err());
        assert_eq!(
            decode_value(&json!({"_bytes_b64": "aGk="}), None).unwrap(),
            b"hi"
        );
        // A plain string: base64 when it decodes, else its text.
        assert_eq!(decode_value(&json!("aGk="), None).unwrap(), b"hi");
        assert_eq!(decode_value(&json!("hi there"), None).unwrap(), b"hi there");
        assert_eq!(
            decode_value(&json!({"a": [1, true]}), None).unwrap(),
            br#"{"a":[1,true]}"#
        );
    }

    #[test]
    fn the_value_bound_is_what_fits_alga_as_base64() {
        let json_len = |n: usize| STANDARD.encode(vec![0u8; n]).len() + 2;
        assert!(json_len(VALUE_MAX_BYTES) <= 64 << 10);
        assert!(json_len(VALUE_MAX_BYTES + 1) > 64 << 10);
    }

    #[test]
    fn the_cursor_is_algas_key_cursor() {
        let c = cursor_after("key-0499");
        let decoded = URL_SAFE_NO_PAD.decode(&c).unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&decoded).unwrap(),
            json!({"key": "key-0499"})
        );
    }
}
