//! `alga:extension/user` and `user-v2`: the signed-in user, if any.
//!
//! Not granted → `not-allowed`; no user in the request → `not-available`.

use super::HostState;
use super::bindings::alga::extension::types::{UserData, UserDataV2, UserError};
use super::bindings::alga::extension::{user, user_v2};
use crate::capability::Capability;

impl HostState {
    fn user_info(&mut self) -> wasmtime::Result<Result<super::UserInfo, UserError>> {
        self.budget.charge()?;
        if !self.grants.has(Capability::UserRead) {
            return Ok(Err(UserError::NotAllowed));
        }
        Ok(self.invocation.user.clone().ok_or(UserError::NotAvailable))
    }
}

impl user::Host for HostState {
    async fn get_user(&mut self) -> wasmtime::Result<Result<UserData, UserError>> {
        let tenant = self.invocation.tenant_id.clone();
        Ok(self.user_info()?.map(|u| UserData {
            tenant_id: tenant,
            client_name: u.client_name,
            user_id: u.user_id,
            user_email: u.user_email,
            user_name: u.user_name,
            user_type: u.user_type,
        }))
    }
}

impl user_v2::Host for HostState {
    async fn get_user(&mut self) -> wasmtime::Result<Result<UserDataV2, UserError>> {
        let tenant = self.invocation.tenant_id.clone();
        Ok(self.user_info()?.map(|u| UserDataV2 {
            tenant_id: tenant,
            client_name: u.client_name,
            user_id: u.user_id,
            user_email: u.user_email,
            user_name: u.user_name,
            user_type: u.user_type,
            client_id: u.client_id,
            // BTreeMap iterates in key order: sorted by key as documented.
            additional_fields: u.additional_fields.into_iter().collect(),
        }))
    }
}
