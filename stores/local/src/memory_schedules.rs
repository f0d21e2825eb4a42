//! Schedules in memory (tests, `alga-lambda run`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use runtime_core::schedule::{MAX_PER_INSTALL, Schedule};
use runtime_core::store::schedules::{ScheduleStore, ScheduleStoreError};

type Installs = BTreeMap<(String, String), BTreeMap<String, Schedule>>;

/// A [`ScheduleStore`] in a map; one lock makes the per-install limit atomic.
#[derive(Default)]
pub struct MemoryScheduleStore {
    installs: Mutex<Installs>,
}

fn scope(tenant: &str, install_id: &str) -> (String, String) {
    (tenant.to_string(), install_id.to_string())
}

#[async_trait]
impl ScheduleStore for MemoryScheduleStore {
    async fn create(&self, s: &Schedule) -> Result<(), ScheduleStoreError> {
        let mut installs = self.installs.lock().unwrap();
        let list = installs.entry(scope(&s.tenant, &s.install_id)).or_default();
        if list.contains_key(&s.id) {
            return Err(ScheduleStoreError::Exists(s.id.clone()));
        }
        if list.len() >= MAX_PER_INSTALL {
            return Err(ScheduleStoreError::QuotaExceeded);
        }
        list.insert(s.id.clone(), s.clone());
        Ok(())
    }

    async fn get(
        &self,
        tenant: &str,
        install_id: &str,
        id: &str,
    ) -> Result<Option<Schedule>, ScheduleStoreError> {
        let installs = self.installs.lock().unwrap();
        Ok(installs
            .get(&scope(tenant, install_id))
            .and_then(|l| l.get(id))
            .cloned())
    }

    async fn list(
        &self,
        tenant: &str,
        install_id: &str,
    ) -> Result<Vec<Schedule>, ScheduleStoreError> {
        let installs = self.installs.lock().unwrap();
        Ok(installs
            .get(&scope(tenant, install_id))
            .map(|l| l.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn update(&self, s: &Schedule) -> Result<(), ScheduleStoreError> {
        let mut installs = self.installs.lock().unwrap();
        match installs
            .get_mut(&scope(&s.tenant, &s.install_id))
            .and_then(|l| l.get_mut(&s.id))
        {
            Some(slot) => {
                *slot = s.clone();
                Ok(())
            }
            None => Err(ScheduleStoreError::NotFound(s.id.clone())),
        }
    }

    async fn delete(
        &self,
        tenant: &str,
        install_id: &str,
        id: &str,
    ) -> Result<(), ScheduleStoreError> {
        let mut installs = self.installs.lock().unwrap();
        installs
            .get_mut(&scope(tenant, install_id))
            .and_then(|l| l.remove(id))
            .map(|_| ())
            .ok_or_else(|| ScheduleStoreError::NotFound(id.to_string()))
    }

    async fn delete_install(
        &self,
        tenant: &str,
        install_id: &str,
    ) -> Result<Vec<Schedule>, ScheduleStoreError> {
        let mut installs = self.installs.lock().unwrap();
        Ok(installs
            .remove(&scope(tenant, install_id))
            .map(|l| l.into_values().collect())
            .unwrap_or_default())
    }

    async fn list_enabled(&self) -> Result<Vec<Schedule>, ScheduleStoreError> {
        let installs = self.installs.lock().unwrap();
        Ok(installs
            .values()
            .flat_map(|l| l.values())
            .filter(|s| s.enabled)
            .cloned()
            .collect())
    }
}
