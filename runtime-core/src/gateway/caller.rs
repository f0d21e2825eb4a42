//! Who calls the direct route: the tenant and user that API Gateway's authorizer
//! (JWT claims or a Lambda authorizer's context) vouches for.

use std::collections::BTreeMap;

use crate::execute::request::UserPayload;

/// Authorizer claims, flattened to strings.
pub type Claims = BTreeMap<String, String>;

/// The authenticated caller of the direct route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Tenant id.
    pub tenant: String,
    /// The signed-in user, when the claims name one.
    pub user: Option<UserPayload>,
}

impl Caller {
    /// Reads the caller from claims: the tenant from `tenant_claim` (required), the
    /// user id from `user_claim`, and `email`, `name`, `user_type`, `client_name`,
    /// `client_id` when present. `user_type` is `internal` only when the claim says
    /// exactly that; missing or anything else is `client` (see [`user_type`]).
    pub fn from_claims(claims: &Claims, tenant_claim: &str, user_claim: &str) -> Option<Self> {
        let get = |k: &str| claims.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let tenant = get(tenant_claim)?.to_string();
        let user = get(user_claim).map(|id| UserPayload {
            user_id: id.to_string(),
            user_email: get("email").unwrap_or_default().to_string(),
            user_name: get("name").unwrap_or_default().to_string(),
            user_type: user_type(get("user_type")).to_string(),
            client_name: get("client_name").unwrap_or_default().to_string(),
            client_id: get("client_id").map(String::from),
            additional_fields: None,
        });
        Some(Caller { tenant, user })
    }
}

/// The less privileged of Alga's two user types: client-portal users. Guests
/// branch on `user_type` (staff-only data, admin actions), so a token that does
/// not say "internal" must not be treated as staff.
const LEAST_PRIVILEGED_USER_TYPE: &str = "client";

/// The user type a claim grants: `internal` only when it says exactly that.
fn user_type(claim: Option<&str>) -> &'static str {
    match claim {
        Some("internal") => "internal",
        _ => LEAST_PRIVILEGED_USER_TYPE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_claims_name_tenant_and_user() {
        let claims: Claims = [
            ("custom:tenant", "acme"),
            ("username", "u-1"),
            ("email", "a@example.com"),
            ("tenant_id", "not-this-one"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = Caller::from_claims(&claims, "custom:tenant", "username").unwrap();
        assert_eq!(c.tenant, "acme");
        let user = c.user.unwrap();
        assert_eq!(
            (user.user_id.as_str(), user.user_email.as_str()),
            ("u-1", "a@example.com")
        );
        // No (or a blank) tenant claim: no caller, so the route answers 401.
        assert_eq!(Caller::from_claims(&claims, "absent", "username"), None);
        let blank: Claims = [("tenant_id".to_string(), "  ".to_string())].into();
        assert_eq!(Caller::from_claims(&blank, "tenant_id", "sub"), None);
    }

    #[test]
    fn sec_05_a_missing_or_unknown_user_type_is_the_least_privileged() {
        let mut claims: Claims = [("tenant_id", "acme"), ("sub", "u-1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let user_type = |claims: &Claims| {
            Caller::from_claims(claims, "tenant_id", "sub")
                .unwrap()
                .user
                .unwrap()
                .user_type
        };
        // A client portal user whose token lacks the claim must not become staff.
        assert_eq!(user_type(&claims), "client");
        for (value, expected) in [
            ("", "client"),
            ("admin", "client"),
            ("Internal ", "client"),
            ("client", "client"),
            ("internal", "internal"),
        ] {
            claims.insert("user_type".into(), value.into());
            assert_eq!(user_type(&claims), expected, "{value:?}");
        }
    }
}
