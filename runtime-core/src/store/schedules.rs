//! Where an install's schedules are kept: in the registry's storage (the SQLite
//! registry database, memory, or the DynamoDB single table). Validation against
//! the manifest happens before (in `schedule::validate`); the store
//! enforces what needs atomicity: at most [`MAX_PER_INSTALL`] per install, and
//! unique ids.

use async_trait::async_trait;

use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// Schedules per install, at most.
pub const MAX_PER_INSTALL: usize = 50;

/// A stored schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Stable id (`sch_<hex>` for guest-created ones, `manifest-<n>` for the manifest's).
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// Install.
    pub install_id: String,
    /// The installed extension (firing resolves the install through it).
    pub extension_id: String,
    /// `GET` or `POST`.
    pub method: String,
    /// The endpoint path.
    pub path: String,
    /// The cron expression as given (normalised spacing).
    pub cron: String,
    /// The IANA time zone the cron is read in, by its canonical name
    /// (`UTC`, `Europe/Berlin`; see `schedule::Zone`).
    pub timezone: String,
    /// Optional name.
    pub name: Option<String>,
    /// JSON text sent as the body.
    pub payload: Option<String>,
    /// Disabled schedules never fire.
    pub enabled: bool,
    /// Unix seconds when it was created.
    pub created_at: i64,
}

/// Schedule store failures.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleStoreError {
    /// The install already has [`MAX_PER_INSTALL`] schedules.
    #[error("at most {MAX_PER_INSTALL} schedules per install")]
    QuotaExceeded,
    /// A schedule with this id already exists in the install.
    #[error("schedule {0} already exists")]
    Exists(String),
    /// No such schedule in the install.
    #[error("schedule {0} not found")]
    NotFound(String),
    /// Refused by a backend rule (e.g. a cron EventBridge Scheduler cannot express).
    #[error("{field}: {message}")]
    Invalid {
        /// The input field at fault.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ScheduleStoreError {
    /// A stable code for logs.
    pub fn code(&self) -> &'static str {
        match self {
            ScheduleStoreError::QuotaExceeded => "quota_exceeded",
            ScheduleStoreError::Exists(_) => "exists",
            ScheduleStoreError::NotFound(_) => "not_found",
            ScheduleStoreError::Invalid { .. } => "invalid",
            ScheduleStoreError::Store(StoreError::Unavailable(_)) => "backend_unavailable",
            ScheduleStoreError::Store(_) => "internal",
        }
    }
}

/// Schedules per (tenant, install). Every operation is scoped by both, so one
/// install can never read or change another's schedules.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Whether installs are named by the host app's ids here (see
    /// [`crate::store::KvStore::keyed_by_host_app_ids`]).
    fn keyed_by_host_app_ids(&self) -> bool {
        false
    }
    /// Stores a new schedule; refuses the install's 51st ([`ScheduleStoreError::QuotaExceeded`],
    /// decided atomically) and an id already used in the install.
    async fn create(&self, schedule: &Schedule) -> Result<(), ScheduleStoreError>;
    /// One schedule of an install.
    async fn get(
        &self,
        tenant: &str,
        install_id: &str,
        id: &str,
    ) -> Result<Option<Schedule>, ScheduleStoreError>;
    /// An install's schedules, ordered by id.
    async fn list(
        &self,
        tenant: &str,
        install_id: &str,
    ) -> Result<Vec<Schedule>, ScheduleStoreError>;
    /// Replaces an existing schedule (same tenant, install and id).
    async fn update(&self, schedule: &Schedule) -> Result<(), ScheduleStoreError>;
    /// Deletes one schedule.
    async fn delete(
        &self,
        tenant: &str,
        install_id: &str,
        id: &str,
    ) -> Result<(), ScheduleStoreError>;
    /// Deletes every schedule of an install; returns what was deleted. By default
    /// one by one through [`ScheduleStore::delete`] (so a mirror deletes its copies
    /// too); a store that can do it in one statement overrides it.
    async fn delete_install(
        &self,
        tenant: &str,
        install_id: &str,
    ) -> Result<Vec<Schedule>, ScheduleStoreError> {
        let list = self.list(tenant, install_id).await?;
        for sch in &list {
            match self.delete(tenant, install_id, &sch.id).await {
                Ok(()) | Err(ScheduleStoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(list)
    }
    /// Every enabled schedule of every install (the local cron's view).
    async fn list_enabled(&self) -> Result<Vec<Schedule>, ScheduleStoreError>;
}
