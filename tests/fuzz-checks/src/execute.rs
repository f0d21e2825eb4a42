//! The `/v1/execute` body as the gateway reads it.

use arbitrary::{Result, Unstructured};
use runtime_core::content::ContentHash;
use runtime_core::gateway::parse_execute_body;
use serde_json::{Value, json};

/// The first byte picks the mode: 0 the rest is the body; otherwise the rest
/// chooses a request-shaped JSON document (every field of the contract, with
/// wrong types, nulls and extremes mixed in). A refusal is 400 `malformed_json`
/// exactly when the body is not JSON, else 422 `invalid_execute_request`, both
/// as a JSON envelope naming the code. An accepted request's replay fingerprint
/// is 64 hex digits, ignores `context.request_id` (fresh on every retry) and
/// changes with anything else; its guest URL starts with its path.
pub fn execute_request(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let body = if mode == 0 {
        rest.to_vec()
    } else {
        match document(&mut Unstructured::new(rest)) {
            Ok(v) => serde_json::to_vec(&v).expect("a Value serializes"),
            Err(_) => return,
        }
    };
    check(&body);
}

fn check(body: &[u8]) {
    let parsed = parse_execute_body(body, true);
    let value = serde_json::from_slice::<Value>(body).ok();
    let (req, fingerprint) = match parsed {
        Err(reply) => {
            let (status, code) = match value {
                None => (400, "malformed_json"),
                Some(_) => (422, "invalid_execute_request"),
            };
            assert_eq!(reply.status, status);
            let envelope: Value = serde_json::from_slice(&reply.body).expect("a JSON refusal");
            assert_eq!(envelope["status"], status);
            let error = envelope["error"].as_str().expect("an error string");
            assert!(error.starts_with(&format!("{code}: ")), "{error}");
            return;
        }
        Ok(ok) => ok,
    };
    let mut value = value.expect("an accepted body is JSON");
    let fingerprint = fingerprint.expect("asked for a fingerprint");
    assert!(
        fingerprint.len() == 64 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit()),
        "{fingerprint}"
    );
    let (_, none) = parse_execute_body(body, false).expect("accepted once");
    assert!(none.is_none());

    let url = req.guest_url();
    assert!(url.starts_with(&req.http.path), "{url:?}");
    if req.http.query.as_ref().is_some_and(|q| !q.is_empty()) {
        assert!(
            url.len() > req.http.path.len() && url.contains('?'),
            "{url:?}"
        );
    }
    // What the executor does next with the strings must not panic either.
    let _ = ContentHash::parse(req.context.content_hash.trim());

    // serde also reads a struct from an array; Alga sends objects, and only an
    // object's `request_id` is named, so only then is the fingerprint blind to it.
    let Some(context) = value["context"].as_object_mut() else {
        return;
    };
    let had = context.insert("request_id".into(), json!("another-request-id"));
    let with_other_id = serde_json::to_vec(&value).expect("a Value serializes");
    let (_, other) = parse_execute_body(&with_other_id, true).expect("still a request");
    assert_eq!(
        other.as_deref(),
        Some(fingerprint.as_str()),
        "request_id changed it"
    );
    match had {
        Some(id) => value["context"]["request_id"] = id,
        None => {
            value["context"]
                .as_object_mut()
                .unwrap()
                .remove("request_id");
        }
    }
    value["context"]["tenant_id"] = json!(format!("{}-other", req.context.tenant_id));
    let changed = serde_json::to_vec(&value).expect("a Value serializes");
    let (_, third) = parse_execute_body(&changed, true).expect("still a request");
    assert_ne!(
        third.as_deref(),
        Some(fingerprint.as_str()),
        "tenant_id did not change it"
    );
}

/// A value for a string field: usually a string, sometimes a wrong type.
fn text(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=15)? {
        0 => Value::Null,
        1 => json!(u.arbitrary::<i64>()?),
        2 => json!([]),
        3 => json!(""),
        _ => json!(u.arbitrary::<String>()?),
    })
}

/// A value for a `u64` field: in range, negative, fractional, huge or a string.
fn number(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=7)? {
        0 => Value::Null,
        1 => json!(u.arbitrary::<i64>()?),
        2 => json!(u.arbitrary::<f64>()?),
        3 => json!("100"),
        4 => json!(u64::MAX),
        _ => json!(u.arbitrary::<u32>()?),
    })
}

/// A string map, or (rarely) something else.
fn map(u: &mut Unstructured<'_>) -> Result<Value> {
    if u.ratio(1, 8)? {
        return text(u);
    }
    let n = u.int_in_range(0..=3)?;
    let mut m = serde_json::Map::new();
    for _ in 0..n {
        m.insert(u.arbitrary::<String>()?, text(u)?);
    }
    Ok(Value::Object(m))
}

/// Sets `key` in `obj` unless the input says to leave it out.
fn maybe(
    u: &mut Unstructured<'_>,
    obj: &mut serde_json::Map<String, Value>,
    key: &str,
    value: impl FnOnce(&mut Unstructured<'_>) -> Result<Value>,
) -> Result<()> {
    if u.ratio(3, 4)? {
        let v = value(u)?;
        obj.insert(key.to_string(), v);
    }
    Ok(())
}

fn document(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut context = serde_json::Map::new();
    maybe(u, &mut context, "tenant_id", text)?;
    maybe(u, &mut context, "extension_id", text)?;
    maybe(u, &mut context, "content_hash", |u| {
        if u.ratio(1, 2)? {
            let bytes: [u8; 32] = u.arbitrary()?;
            Ok(json!(format!("sha256:{}", ContentHash::of(&bytes).hex())))
        } else {
            text(u)
        }
    })?;
    maybe(u, &mut context, "request_id", text)?;
    maybe(u, &mut context, "install_id", text)?;
    maybe(u, &mut context, "config", map)?;

    let mut http = serde_json::Map::new();
    maybe(u, &mut http, "method", text)?;
    maybe(u, &mut http, "path", text)?;
    maybe(u, &mut http, "query", map)?;
    maybe(u, &mut http, "headers", map)?;
    maybe(u, &mut http, "body_b64", text)?;

    let mut limits = serde_json::Map::new();
    maybe(u, &mut limits, "timeout_ms", number)?;
    maybe(u, &mut limits, "memory_mb", number)?;
    maybe(u, &mut limits, "fuel", number)?;

    let mut doc = serde_json::Map::new();
    maybe(u, &mut doc, "context", |_| Ok(Value::Object(context)))?;
    maybe(u, &mut doc, "http", |_| Ok(Value::Object(http)))?;
    maybe(u, &mut doc, "limits", |_| Ok(Value::Object(limits)))?;
    maybe(u, &mut doc, "providers", |u| {
        let n = u.int_in_range(0..=3)?;
        (0..n)
            .map(|_| text(u))
            .collect::<Result<Vec<_>>>()
            .map(Value::Array)
    })?;
    maybe(u, &mut doc, "user", map)?;
    maybe(u, &mut doc, "secret_envelope", map)?;
    Ok(Value::Object(doc))
}
