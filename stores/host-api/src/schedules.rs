//! Schedules kept — and fired — by the host app: [`ScheduleStore`] over Alga's
//! `POST /api/internal/ext-scheduler/install/{installId}` (`{operation: list|create|
//! update|delete, scheduleId, endpoint: "METHOD /path", cron, timezone, enabled, name,
//! payload}`).
//!
//! Alga gives every schedule its own id (a UUID) and keeps no other id; ours are
//! chosen before the store sees them (`sch_…`, `manifest-<n>`). So a schedule made
//! here carries its id in its Alga name, `"<name> [alga-lambda:<id>]"`, and every
//! operation finds Alga's UUID through the install's list (at most 50). Schedules
//! made by Alga's own runner have no such tag and keep their UUID as id, so a guest
//! sees the ids it was given on either runner.
//!
//! Alga's job runner fires these schedules (it calls `/v1/execute`), so
//! [`ScheduleStore::list_enabled`] answers none: nothing here fires them a second
//! time, and nothing mirrors them to EventBridge Scheduler.

use std::sync::Arc;

use async_trait::async_trait;
use runtime_core::schedule::Schedule;
use runtime_core::store::{ScheduleStore, ScheduleStoreError, StoreError};
use serde_json::{Value, json};

use crate::client::{InternalApi, Reply, common_failure, internal, unavailable};

const KIND: &str = "ext-scheduler";

/// Marks the id a schedule made here carries in its Alga name.
const TAG: &str = "[alga-lambda:";

/// Alga's longest name (in UTF-16 code units, as JavaScript counts), tag included.
pub const NAME_MAX_UNITS: usize = 128;

/// [`ScheduleStore`] over the host app's scheduler.
pub struct HostApiScheduleStore {
    api: Arc<InternalApi>,
}

/// A schedule as Alga lists it, with the id we know it by.
struct Listed {
    id: String,
    uuid: String,
    schedule: Schedule,
}

impl HostApiScheduleStore {
    /// A store over `api`.
    pub fn new(api: Arc<InternalApi>) -> Self {
        HostApiScheduleStore { api }
    }

    async fn call(&self, install_id: &str, body: Value) -> Result<Reply, ScheduleStoreError> {
        self.api
            .post(KIND, install_id, &body)
            .await
            .map_err(|e| ScheduleStoreError::Store(e.into()))
    }

    /// The install's schedules as Alga has them.
    async fn listed(
        &self,
        tenant: &str,
        install_id: &str,
    ) -> Result<Vec<Listed>, ScheduleStoreError> {
        let r = self.call(install_id, json!({"operation": "list"})).await?;
        if !r.ok() {
            return Err(failure(install_id, "", &r));
        }
        let items = r
            .json
            .as_ref()
            .and_then(|j| j.get("schedules"))
            .and_then(Value::as_array)
            .ok_or_else(|| unreadable("a list without schedules"))?;
        items
            .iter()
            .map(|item| listed(tenant, install_id, item))
            .collect()
    }

    /// The one schedule `id` names, if any; two carrying it is refused rather than
    /// guessed between.
    async fn find(
        &self,
        tenant: &str,
        install_id: &str,
        id: &str,
    ) -> Result<Option<Listed>, ScheduleStoreError> {
        let mut found = self
            .listed(tenant, install_id)
            .await?
            .into_iter()
            .filter(|l| l.id == id);
        let first = found.next();
        if found.next().is_some() {
            return Err(ScheduleStoreError::Store(StoreError::Internal(format!(
                "two of the host app's schedules of install {install_id} carry id {id}"
            ))));
        }
        Ok(first)
    }
}

fn unreadable(what: &str) -> ScheduleStoreError {
    ScheduleStoreError::Store(StoreError::Internal(format!(
        "host app {KIND}: unreadable answer ({what})"
    )))
}

/// Ids we can carry in a name and find again: what our ids are made of.
fn check_id(id: &str) -> Result<(), ScheduleStoreError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(ScheduleStoreError::Invalid {
            field: "id",
            message:
                "the host app's schedules take ids of 1-64 letters, digits, '-', '_', '.', ':'"
                    .into(),
        })
    }
}

/// The Alga name of schedule `id` named `name`.
pub fn tagged_name(id: &str, name: Option<&str>) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!("{n} {TAG}{id}]"),
        None => format!("{TAG}{id}]"),
    }
}

/// (our id, the name) of an Alga name: the tag's id, if it carries one.
pub fn split_name(raw: &str) -> (Option<String>, Option<String>) {
    let parsed = raw.strip_suffix(']').and_then(|rest| {
        let at = rest.rfind(TAG)?;
        let id = &rest[at + TAG.len()..];
        check_id(id).ok()?;
        let name = rest[..at].trim_end();
        Some((id.to_string(), (!name.is_empty()).then(|| name.to_string())))
    });
    match parsed {
        Some((id, name)) => (Some(id), name),
        None => (None, Some(raw.to_string()).filter(|n| !n.is_empty())),
    }
}

/// One item of Alga's list as our schedule of (tenant, install).
fn listed(tenant: &str, install_id: &str, v: &Value) -> Result<Listed, ScheduleStoreError> {
    let text = |k: &str| v.get(k).and_then(Value::as_str);
    let uuid = text("id").ok_or_else(|| unreadable("a schedule without an id"))?;
    let (tag_id, name) = match text("name") {
        Some(raw) => split_name(raw),
        None => (None, None),
    };
    let payload = match v.get("payload") {
        None | Some(Value::Null) => None,
        Some(p) => Some(p.to_string()),
    };
    let created_at = text("createdAt")
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let schedule = Schedule {
        id: tag_id.clone().unwrap_or_else(|| uuid.to_string()),
        tenant: tenant.to_string(),
        install_id: install_id.to_string(),
        // Alga keeps the extension with the install, not the schedule; nothing here
        // needs it, since Alga fires these schedules itself.
        extension_id: String::new(),
        method: text("endpointMethod").unwrap_or_default().to_uppercase(),
        path: text("endpointPath").unwrap_or_default().to_string(),
        cron: text("cron").unwrap_or_default().to_string(),
        timezone: text("timezone").unwrap_or("UTC").to_string(),
        name,
        payload,
        enabled: v.get("enabled").and_then(Value::as_bool).unwrap_or(false),
        created_at,
    };
    Ok(Listed {
        id: schedule.id.clone(),
        uuid: uuid.to_string(),
        schedule,
    })
}

/// The fields a create or an update sends: the whole schedule.
fn fields(s: &Schedule) -> Result<serde_json::Map<String, Value>, ScheduleStoreError> {
    check_id(&s.id)?;
    let name = tagged_name(&s.id, s.name.as_deref());
    if name.encode_utf16().count() > NAME_MAX_UNITS {
        return Err(ScheduleStoreError::Invalid {
            field: "name",
            message: format!(
                "the host app keeps at most {NAME_MAX_UNITS} characters of name, and {} of \
                 them carry the schedule's id",
                tagged_name(&s.id, None).len() + 1
            ),
        });
    }
    let payload = match &s.payload {
        None => Value::Null,
        Some(text) => serde_json::from_str(text).map_err(|e| ScheduleStoreError::Invalid {
            field: "payload",
            message: format!("not JSON: {e}"),
        })?,
    };
    let mut m = serde_json::Map::new();
    m.insert("endpoint".into(), format!("{} {}", s.method, s.path).into());
    m.insert("cron".into(), s.cron.clone().into());
    m.insert("timezone".into(), s.timezone.clone().into());
    m.insert("enabled".into(), s.enabled.into());
    m.insert("name".into(), name.into());
    m.insert("payload".into(), payload);
    Ok(m)
}

/// Alga's field names as ours (the field of a validation error must be static).
fn field(name: &str) -> &'static str {
    match name {
        "endpoint" => "endpoint",
        "cron" => "cron",
        "timezone" => "timezone",
        "name" => "name",
        "payload" => "payload",
        "scheduleId" => "id",
        _ => "schedule",
    }
}

/// The failure of an answer that is not 2xx, for schedule `id`.
fn failure(install_id: &str, id: &str, r: &Reply) -> ScheduleStoreError {
    if let Some(e) = common_failure(KIND, install_id, r) {
        return ScheduleStoreError::Store(e);
    }
    let json = r.json.as_ref();
    match r.status {
        // Alga limits schedule changes to 10 a minute per install.
        429 if r.code() == Some("QUOTA_EXCEEDED") => ScheduleStoreError::QuotaExceeded,
        429 => ScheduleStoreError::Store(unavailable(KIND, r)),
        404 => ScheduleStoreError::Store(internal(
            KIND,
            r,
            &format!(
                " (no install {install_id:?} in the host app: it knows installs by its own id)"
            ),
        )),
        400 => {
            let message = r.message();
            let field_error = json
                .and_then(|j| j.get("fieldErrors"))
                .and_then(Value::as_object)
                .and_then(|m| m.iter().next());
            if let Some((name, text)) = field_error {
                let text = text.as_str().unwrap_or(&message).to_string();
                if name == "name" && text.contains("already in use") {
                    return ScheduleStoreError::Exists(id.to_string());
                }
                return ScheduleStoreError::Invalid {
                    field: field(name),
                    message: text,
                };
            }
            if message.starts_with("Too many schedules") {
                return ScheduleStoreError::QuotaExceeded;
            }
            if message == "Schedule not found" {
                return ScheduleStoreError::NotFound(id.to_string());
            }
            if json.and_then(|j| j.get("success")).is_none() {
                // The request's shape was refused (zod): `details` says why.
                let details = json
                    .and_then(|j| j.get("details"))
                    .map(Value::to_string)
                    .unwrap_or_default();
                return ScheduleStoreError::Invalid {
                    field: "schedule",
                    message: format!("{message} {details}").trim().to_string(),
                };
            }
            // Alga answers 400 for anything its create/update/delete caught,
            // its job runner's failures included: not written, not retried here.
            ScheduleStoreError::Store(internal(KIND, r, ""))
        }
        _ => ScheduleStoreError::Store(internal(KIND, r, "")),
    }
}

#[async_trait]
impl ScheduleStore for HostApiScheduleStore {
    /// Alga looks installs up by its own install UUID.
    fn keyed_by_host_app_ids(&self) -> bool {
        true
    }

    async fn create(&self, schedule: &Schedule) -> Result<(), ScheduleStoreError> {
        let mut body = fields(schedule)?;
        // Alga's unique constraint is on the whole name, and the name holds the
        // guest's name too; so the id's uniqueness is checked against the list (ids
        // we make are random, and `manifest-<n>` ones are written by one process).
        if self
            .find(&schedule.tenant, &schedule.install_id, &schedule.id)
            .await?
            .is_some()
        {
            return Err(ScheduleStoreError::Exists(schedule.id.clone()));
        }
        if body.get("payload") == Some(&Value::Null) {
            body.remove("payload");
        }
        body.insert("operation".into(), "create".into());
        let r = self.call(&schedule.install_id, Value::Object(body)).await?;
        if r.ok() {
            Ok(())
        } else {
            Err(failure(&schedule.install_id, &schedule.id, &r))
        }
    }

    async fn get(
        &self,
        tenant: &str,
        install_id: &str,
        id: &str,
    ) -> Result<Option<Schedule>, ScheduleStoreError> {
        Ok(self.find(tenant, install_id, id).await?.map(|l| l.schedule))
    }

    async fn list(
        &self,
        tenant: &str,
        install_id: &str,
    ) -> Result<Vec<Schedule>, ScheduleStoreError> {
        let mut list: Vec<Schedule> = self
            .listed(tenant, install_id)
            .await?
            .into_iter()
            .map(|l| l.schedule)
            .collect();
        // Alga lists by creation time; the trait promises id order.
        list.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(list)
    }

    async fn update(&self, schedule: &Schedule) -> Result<(), ScheduleStoreError> {
        let mut body = fields(schedule)?;
        let Some(current) = self
            .find(&schedule.tenant, &schedule.install_id, &schedule.id)
            .await?
        else {
            return Err(ScheduleStoreError::NotFound(schedule.id.clone()));
        };
        body.insert("operation".into(), "update".into());
        body.insert("scheduleId".into(), current.uuid.into());
        let r = self.call(&schedule.install_id, Value::Object(body)).await?;
        if r.ok() {
            Ok(())
        } else {
            Err(failure(&schedule.install_id, &schedule.id, &r))
        }
    }

    async fn delete(
        &self,
        tenant: &str,
        install_id: &str,
        id: &str,
    ) -> Result<(), ScheduleStoreError> {
        let Some(current) = self.find(tenant, install_id, id).await? else {
            return Err(ScheduleStoreError::NotFound(id.to_string()));
        };
        let r = self
            .call(
                install_id,
                json!({"operation": "delete", "scheduleId": current.uuid}),
            )
            .await?;
        if r.ok() {
            Ok(())
        } else {
            Err(failure(install_id, id, &r))
        }
    }

    /// None: the host app's job runner fires its schedules (through `/v1/execute`),
    /// so `up`'s cron must not fire them again.
    async fn list_enabled(&self) -> Result<Vec<Schedule>, ScheduleStoreError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_ride_in_the_name_and_come_back() {
        assert_eq!(
            tagged_name("sch_00ff", Some("Nightly sync")),
            "Nightly sync [alga-lambda:sch_00ff]"
        );
        assert_eq!(tagged_name("manifest-0", None), "[alga-lambda:manifest-0]");
        assert_eq!(tagged_name("a", Some("  ")), "[alga-lambda:a]");
        assert_eq!(
            split_name("Nightly sync [alga-lambda:sch_00ff]"),
            (Some("sch_00ff".into()), Some("Nightly sync".into()))
        );
        assert_eq!(
            split_name("[alga-lambda:manifest-0]"),
            (Some("manifest-0".into()), None)
        );
        // Names Alga's runner wrote: no tag, the name as it is.
        assert_eq!(
            split_name("Backup [id:3]"),
            (None, Some("Backup [id:3]".into()))
        );
        assert_eq!(
            split_name("x [alga-lambda:bad id]"),
            (None, Some("x [alga-lambda:bad id]".into()))
        );
        assert!(check_id("sch_0123456789abcdef01234567").is_ok());
        assert!(check_id("a]b").is_err() && check_id("").is_err());
    }
}
