//! Every schedule write mirrored to EventBridge Scheduler, so AWS fires it: one
//! EventBridge schedule per stored schedule, targeting the events function
//! (`ALGA_SCHEDULER_TARGET_ARN`, assumed through `ALGA_SCHEDULER_ROLE_ARN`) in
//! group `ALGA_SCHEDULER_GROUP`, with the [`ScheduleFiring`] JSON as its input.
//!
//! Order: the registry (the inner store) first, then the Scheduler API. When the
//! API call fails the registry write is undone and the caller gets
//! `Store(Internal)`, so the registry never holds a schedule AWS would not fire
//! (and a crash between the two leaves at most a registry row without an
//! EventBridge schedule, which the next update or delete repairs).

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_scheduler::types::{FlexibleTimeWindow, FlexibleTimeWindowMode, ScheduleState, Target};
use sha2::{Digest, Sha256};

use super::error::map_sdk;
use runtime_core::schedule::{Schedule, ScheduleFiring, Zone, aws_cron};
use runtime_core::store::StoreError;
use runtime_core::store::schedules::{ScheduleStore, ScheduleStoreError};

/// Where mirrored schedules point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerTarget {
    /// ARN of the events function (`ALGA_SCHEDULER_TARGET_ARN`).
    pub target_arn: String,
    /// Role EventBridge Scheduler assumes to invoke it (`ALGA_SCHEDULER_ROLE_ARN`).
    pub role_arn: String,
    /// Schedule group (`ALGA_SCHEDULER_GROUP`, default `default`).
    pub group: String,
}

impl SchedulerTarget {
    /// Reads the three variables; `None` when `ALGA_SCHEDULER_TARGET_ARN` is unset
    /// (schedules are then stored but nothing on AWS fires them).
    pub fn from_env() -> Result<Option<Self>, String> {
        let var = |n: &str| {
            std::env::var(n)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(target_arn) = var("ALGA_SCHEDULER_TARGET_ARN") else {
            return Ok(None);
        };
        let role_arn = var("ALGA_SCHEDULER_ROLE_ARN")
            .ok_or("ALGA_SCHEDULER_ROLE_ARN must be set when ALGA_SCHEDULER_TARGET_ARN is")?;
        Ok(Some(SchedulerTarget {
            target_arn,
            role_arn,
            group: var("ALGA_SCHEDULER_GROUP").unwrap_or_else(|| "default".into()),
        }))
    }
}

/// The EventBridge schedule name of a schedule: `alga-` + 40 hex digits of
/// sha256(tenant, install, id). Names are at most 64 characters of
/// `[0-9A-Za-z_.-]`; ids may hold anything, so they are hashed, never embedded
/// (the firing input carries them instead).
pub fn schedule_name(tenant: &str, install_id: &str, id: &str) -> String {
    let mut h = Sha256::new();
    for part in [tenant, install_id, id] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    format!("alga-{}", &hex::encode(h.finalize())[..40])
}

/// A [`ScheduleStore`] that mirrors writes to EventBridge Scheduler.
pub struct MirroredScheduleStore {
    inner: Arc<dyn ScheduleStore>,
    client: aws_sdk_scheduler::Client,
    target: SchedulerTarget,
}

fn invalid_cron(message: String) -> ScheduleStoreError {
    ScheduleStoreError::Invalid {
        field: "cron",
        message,
    }
}

fn internal(e: StoreError) -> ScheduleStoreError {
    // Whatever the API said (down or refused), the write did not happen.
    ScheduleStoreError::Store(StoreError::Internal(e.to_string()))
}

/// CreateSchedule and UpdateSchedule take the same fields on two builder types.
macro_rules! put_schedule {
    ($store:expr, $sch:expr, $operation:ident, $name:literal) => {{
        let (expression, zone, target, window) = $store
            .parts($sch)
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        $store
            .client
            .$operation()
            .name(schedule_name(&$sch.tenant, &$sch.install_id, &$sch.id))
            .group_name(&$store.target.group)
            .schedule_expression(expression)
            .schedule_expression_timezone(zone)
            .flexible_time_window(window)
            .target(target)
            .state(Self::state($sch))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| map_sdk($name, &e))
    }};
}

impl MirroredScheduleStore {
    /// Mirrors `inner` through `client` to `target`.
    pub fn new(
        inner: Arc<dyn ScheduleStore>,
        client: aws_sdk_scheduler::Client,
        target: SchedulerTarget,
    ) -> Self {
        MirroredScheduleStore {
            inner,
            client,
            target,
        }
    }

    /// What CreateSchedule and UpdateSchedule send: the AWS cron, the time zone
    /// it is evaluated in, the target and the window.
    fn parts(
        &self,
        sch: &Schedule,
    ) -> Result<(String, String, Target, FlexibleTimeWindow), ScheduleStoreError> {
        // The cron's fields do not depend on the zone: EventBridge Scheduler
        // reads them on the wall clock of `ScheduleExpressionTimezone`, which
        // takes IANA names, as `up` reads ours.
        let expression = aws_cron::to_aws(&sch.cron).map_err(invalid_cron)?;
        // The canonical name (what `Schedule.timezone` holds once validated);
        // a row written before zones, or by another writer, is checked here so
        // AWS never gets a zone we would not fire in.
        let zone = Zone::parse(&sch.timezone)
            .map_err(|e| ScheduleStoreError::Invalid {
                field: "timezone",
                message: e.to_string(),
            })?
            .name()
            .to_string();
        let input = serde_json::to_string(&ScheduleFiring::of(sch)).expect("serializes");
        let target = Target::builder()
            .arn(&self.target.target_arn)
            .role_arn(&self.target.role_arn)
            .input(input)
            .build()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        Ok((expression, zone, target, window))
    }

    fn state(sch: &Schedule) -> ScheduleState {
        if sch.enabled {
            ScheduleState::Enabled
        } else {
            ScheduleState::Disabled
        }
    }

    async fn api_create(&self, sch: &Schedule) -> Result<(), StoreError> {
        put_schedule!(self, sch, create_schedule, "CreateSchedule")
    }

    async fn api_update(&self, sch: &Schedule) -> Result<(), StoreError> {
        put_schedule!(self, sch, update_schedule, "UpdateSchedule")
    }

    async fn api_delete(&self, sch: &Schedule) -> Result<(), StoreError> {
        match self
            .client
            .delete_schedule()
            .name(schedule_name(&sch.tenant, &sch.install_id, &sch.id))
            .group_name(&self.target.group)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Already gone is what we wanted.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|x| x.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(map_sdk("DeleteSchedule", &e)),
        }
    }
}

#[async_trait]
impl ScheduleStore for MirroredScheduleStore {
    async fn create(&self, sch: &Schedule) -> Result<(), ScheduleStoreError> {
        // Refuse what AWS cannot express before writing anything.
        self.parts(sch)?;
        self.inner.create(sch).await?;
        if let Err(e) = self.api_create(sch).await {
            if let Err(undo) = self
                .inner
                .delete(&sch.tenant, &sch.install_id, &sch.id)
                .await
            {
                tracing::error!(error = %undo, schedule = %sch.id, "schedule create not undone");
            }
            return Err(internal(e));
        }
        Ok(())
    }

    async fn get(
        &self,
        tenant: &str,
        install_id: &str,
        id: &str,
    ) -> Result<Option<Schedule>, ScheduleStoreError> {
        self.inner.get(tenant, install_id, id).await
    }

    async fn list(
        &self,
        tenant: &str,
        install_id: &str,
    ) -> Result<Vec<Schedule>, ScheduleStoreError> {
        self.inner.list(tenant, install_id).await
    }

    async fn update(&self, sch: &Schedule) -> Result<(), ScheduleStoreError> {
        self.parts(sch)?;
        let before = self
            .inner
            .get(&sch.tenant, &sch.install_id, &sch.id)
            .await?
            .ok_or_else(|| ScheduleStoreError::NotFound(sch.id.clone()))?;
        self.inner.update(sch).await?;
        if let Err(e) = self.api_update(sch).await {
            if let Err(undo) = self.inner.update(&before).await {
                tracing::error!(error = %undo, schedule = %sch.id, "schedule update not undone");
            }
            return Err(internal(e));
        }
        Ok(())
    }

    async fn delete(
        &self,
        tenant: &str,
        install_id: &str,
        id: &str,
    ) -> Result<(), ScheduleStoreError> {
        let before = self
            .inner
            .get(tenant, install_id, id)
            .await?
            .ok_or_else(|| ScheduleStoreError::NotFound(id.to_string()))?;
        self.inner.delete(tenant, install_id, id).await?;
        if let Err(e) = self.api_delete(&before).await {
            if let Err(undo) = self.inner.create(&before).await {
                tracing::error!(error = %undo, schedule = %id, "schedule delete not undone");
            }
            return Err(internal(e));
        }
        Ok(())
    }

    async fn list_enabled(&self) -> Result<Vec<Schedule>, ScheduleStoreError> {
        self.inner.list_enabled().await
    }
}
