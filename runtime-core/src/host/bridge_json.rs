//! Reading the host API's JSON answers into WIT records: camelCase as the Alga
//! server writes them, snake_case accepted too.

use serde_json::{Map, Value};

/// A JSON object's field under any of `keys`.
pub(crate) fn field<'a>(obj: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .find_map(|k| obj.get(*k).filter(|v| !v.is_null()))
}

/// A string field.
pub(crate) fn string(obj: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    field(obj, keys)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// A number field.
pub(crate) fn number(obj: &Map<String, Value>, keys: &[&str]) -> Option<f64> {
    field(obj, keys).and_then(|v| v.as_f64())
}

/// A bool field.
pub(crate) fn boolean(obj: &Map<String, Value>, keys: &[&str]) -> Option<bool> {
    field(obj, keys).and_then(|v| v.as_bool())
}

/// A u32 field.
pub(crate) fn uint(obj: &Map<String, Value>, keys: &[&str]) -> Option<u32> {
    field(obj, keys)
        .and_then(|v| v.as_u64())
        .and_then(|n| u32::try_from(n).ok())
}

/// `fieldErrors` as JSON text (the WIT carries it as a string).
pub(crate) fn field_errors(obj: &Map<String, Value>) -> Option<String> {
    field(obj, &["fieldErrors", "field_errors"]).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}
