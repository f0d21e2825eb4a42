//! Item keys of the single table. Every user-supplied part is escaped (`%` and `#`)
//! before it is joined with `#`, so no tenant, install or namespace can spell
//! another one's key.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use runtime_core::store::StoreError;

/// Name of the one global secondary index.
pub const GSI1: &str = "gsi1";

/// Escapes one key part: `%` → `%25`, `#` → `%23`.
pub fn part(s: &str) -> String {
    s.replace('%', "%25").replace('#', "%23")
}

/// A string attribute.
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The key map `{pk, sk}`.
pub fn key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// Reads attributes out of an item, naming what is missing.
pub struct Item<'a>(pub &'a HashMap<String, AttributeValue>);

impl Item<'_> {
    fn missing(name: &str) -> StoreError {
        StoreError::Internal(format!("stored item lacks attribute {name:?}"))
    }

    /// A string attribute.
    pub fn str(&self, name: &str) -> Result<String, StoreError> {
        self.opt_str(name)?.ok_or_else(|| Self::missing(name))
    }

    /// An optional string attribute.
    pub fn opt_str(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.0.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
            Some(_) => Err(StoreError::Internal(format!(
                "attribute {name:?} is not a string"
            ))),
        }
    }

    /// A number attribute.
    pub fn u64(&self, name: &str) -> Result<u64, StoreError> {
        self.opt_u64(name)?.ok_or_else(|| Self::missing(name))
    }

    /// An optional number attribute.
    pub fn opt_u64(&self, name: &str) -> Result<Option<u64>, StoreError> {
        match self.0.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => v
                .parse()
                .map(Some)
                .map_err(|_| StoreError::Internal(format!("attribute {name:?} is not a u64"))),
            Some(_) => Err(StoreError::Internal(format!(
                "attribute {name:?} is not a number"
            ))),
        }
    }

    /// A binary attribute.
    pub fn bytes(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        match self.0.get(name) {
            Some(AttributeValue::B(b)) => Ok(b.clone().into_inner()),
            None => Err(Self::missing(name)),
            Some(_) => Err(StoreError::Internal(format!(
                "attribute {name:?} is not binary"
            ))),
        }
    }

    /// A boolean attribute.
    pub fn bool(&self, name: &str) -> Result<bool, StoreError> {
        match self.0.get(name) {
            Some(AttributeValue::Bool(b)) => Ok(*b),
            None => Err(Self::missing(name)),
            Some(_) => Err(StoreError::Internal(format!(
                "attribute {name:?} is not a boolean"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cannot_forge_separators() {
        assert_eq!(part("a#b"), "a%23b");
        assert_eq!(part("a%23b"), "a%2523b");
        assert_ne!(
            format!("{}#{}", part("t#x"), part("i")),
            format!("{}#{}", part("t"), part("x#i"))
        );
    }
}
