//! Schedules of an install (the scheduler interface's data), with the seed's
//! limits: a 5-field cron (UTC), at least 5 minutes between firings, at most 50
//! per install, and an endpoint `"[METHOD ]/path"` naming a declared GET or POST
//! endpoint without parameters. [`ScheduleStore::due`] lists what fires in a
//! minute; the caller (`up`'s cron, or the events function) runs each through the
//! execute path with a fresh request id and the payload as the body.
//!
//! The store here is in memory (per process); the registry-backed stores and the
//! scheduler host functions are not wired yet.

pub mod cron;

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::manifest::Manifest;
pub use cron::Cron;

/// Schedules per install, at most.
pub const MAX_PER_INSTALL: usize = 50;
/// Minutes between two firings, at least.
pub const MIN_INTERVAL_MINUTES: i64 = 5;

/// A stored schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Stable id.
    pub id: String,
    /// Tenant.
    pub tenant: String,
    /// Install.
    pub install_id: String,
    /// `GET` or `POST`.
    pub method: String,
    /// The endpoint path.
    pub path: String,
    /// The cron expression as given (normalised spacing).
    pub cron: String,
    /// Always `UTC` for now.
    pub timezone: String,
    /// Optional name.
    pub name: Option<String>,
    /// JSON text sent as the body.
    pub payload: Option<String>,
    /// Disabled schedules never fire.
    pub enabled: bool,
}

/// What a guest (or the manifest) asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleInput {
    /// `"[METHOD ]/path"`.
    pub endpoint: String,
    /// 5-field cron.
    pub cron: String,
    /// Only `UTC` (or none).
    pub timezone: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// JSON text.
    pub payload: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// Why a schedule was refused; `field` names the input field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ScheduleError {
    /// `endpoint`, `cron`, `timezone`, `payload`, `id` or `install`.
    pub field: &'static str,
    /// Why.
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> ScheduleError {
    ScheduleError {
        field,
        message: message.into(),
    }
}

/// Checks an input against the seed's rules and the install's manifest; returns
/// (method, path, normalised cron).
pub fn validate(
    input: &ScheduleInput,
    manifest: &Manifest,
) -> Result<(String, String, String), ScheduleError> {
    let selector = input.endpoint.trim();
    let (method, path) = match selector.split_once(' ') {
        Some((m, p)) => (m.trim().to_ascii_uppercase(), p.trim().to_string()),
        None => ("GET".to_string(), selector.to_string()),
    };
    let endpoint = manifest
        .endpoints()
        .iter()
        .find(|e| e.method == method && e.path == path)
        .ok_or_else(|| {
            err(
                "endpoint",
                format!("{method} {path} is not a declared endpoint"),
            )
        })?;
    if !endpoint.is_schedulable() {
        return Err(err(
            "endpoint",
            "only GET and POST endpoints without parameters can be scheduled",
        ));
    }
    let cron = Cron::parse(&input.cron).map_err(|m| err("cron", m))?;
    match cron.min_gap_minutes() {
        Some(gap) if gap < MIN_INTERVAL_MINUTES => {
            return Err(err(
                "cron",
                format!(
                    "fires {gap} minute(s) apart; at least {MIN_INTERVAL_MINUTES} are required"
                ),
            ));
        }
        None => return Err(err("cron", "never fires")),
        _ => {}
    }
    if let Some(tz) = &input.timezone
        && !matches!(tz.trim(), "" | "UTC" | "Etc/UTC")
    {
        return Err(err("timezone", "only UTC is supported"));
    }
    if let Some(p) = &input.payload
        && !p.is_empty()
        && serde_json::from_str::<serde_json::Value>(p).is_err()
    {
        return Err(err("payload", "not JSON"));
    }
    let normalised = input.cron.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok((method, path, normalised))
}

/// Schedules by (tenant, install).
type ByInstall = BTreeMap<(String, String), Vec<Schedule>>;

/// In-memory schedules, keyed by (tenant, install); the `u64` numbers the ids.
#[derive(Debug, Default)]
pub struct ScheduleStore {
    inner: Mutex<(u64, ByInstall)>,
}

impl ScheduleStore {
    /// Creates a schedule after [`validate`]; refuses the 51st of an install.
    pub fn create(
        &self,
        tenant: &str,
        install_id: &str,
        input: &ScheduleInput,
        manifest: &Manifest,
    ) -> Result<Schedule, ScheduleError> {
        let (method, path, cron) = validate(input, manifest)?;
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (next_id, map) = &mut *guard;
        let list = map
            .entry((tenant.to_string(), install_id.to_string()))
            .or_default();
        if list.len() >= MAX_PER_INSTALL {
            return Err(err(
                "install",
                format!("at most {MAX_PER_INSTALL} schedules per install"),
            ));
        }
        *next_id += 1;
        let schedule = Schedule {
            id: format!("sch-{next_id}"),
            tenant: tenant.to_string(),
            install_id: install_id.to_string(),
            method,
            path,
            cron,
            timezone: "UTC".into(),
            name: input.name.clone(),
            payload: input.payload.clone().filter(|p| !p.is_empty()),
            enabled: input.enabled.unwrap_or(true),
        };
        list.push(schedule.clone());
        Ok(schedule)
    }

    /// The install's schedules.
    pub fn list(&self, tenant: &str, install_id: &str) -> Vec<Schedule> {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .1
            .get(&(tenant.to_string(), install_id.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Deletes one; false when it does not exist.
    pub fn delete(&self, tenant: &str, install_id: &str, id: &str) -> bool {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = guard
            .1
            .get_mut(&(tenant.to_string(), install_id.to_string()))
        else {
            return false;
        };
        let before = list.len();
        list.retain(|s| s.id != id);
        list.len() != before
    }

    /// The enabled schedules that fire in the minute containing `now_unix_secs`.
    pub fn due(&self, now_unix_secs: i64) -> Vec<Schedule> {
        let minute = now_unix_secs.div_euclid(60);
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .1
            .values()
            .flatten()
            .filter(|s| s.enabled)
            .filter(|s| Cron::parse(&s.cron).is_ok_and(|c| c.matches(minute)))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::parse(
            br#"{"name":"x","version":"1.0.0","runtime":"wasm-js@1","api":{"endpoints":[
                {"method":"GET","path":"/api/report","handler":"h"},
                {"method":"POST","path":"/api/sync","handler":"h"},
                {"method":"GET","path":"/api/items/:id","handler":"h"},
                {"method":"DELETE","path":"/api/purge","handler":"h"}]}}"#,
        )
        .unwrap()
    }

    fn input(endpoint: &str, cron: &str) -> ScheduleInput {
        ScheduleInput {
            endpoint: endpoint.into(),
            cron: cron.into(),
            ..ScheduleInput::default()
        }
    }

    #[test]
    fn the_seed_limits_hold() {
        let m = manifest();
        validate(&input("/api/report", "*/5 * * * *"), &m).unwrap();
        let (method, path, cron) = validate(&input("post /api/sync", "0  3 * * 1"), &m).unwrap();
        assert_eq!(
            (method.as_str(), path.as_str(), cron.as_str()),
            ("POST", "/api/sync", "0 3 * * 1")
        );
        for (endpoint, cron, field) in [
            ("/api/report", "* * * * *", "cron"),
            ("/api/report", "0,3 * * * *", "cron"),
            ("/api/report", "0 0 31 2 *", "cron"),
            ("/api/items/:id", "0 * * * *", "endpoint"),
            ("DELETE /api/purge", "0 * * * *", "endpoint"),
            ("/api/missing", "0 * * * *", "endpoint"),
        ] {
            assert_eq!(
                validate(&input(endpoint, cron), &m).unwrap_err().field,
                field,
                "{endpoint} {cron}"
            );
        }
        let mut bad_tz = input("/api/report", "0 * * * *");
        bad_tz.timezone = Some("Europe/Paris".into());
        assert_eq!(validate(&bad_tz, &m).unwrap_err().field, "timezone");
    }

    #[test]
    fn at_most_fifty_per_install_and_due_lists_the_firing_ones() {
        let m = manifest();
        let store = ScheduleStore::default();
        for _ in 0..MAX_PER_INSTALL {
            store
                .create("t", "i", &input("/api/report", "0 * * * *"), &m)
                .unwrap();
        }
        let e = store
            .create("t", "i", &input("/api/report", "0 * * * *"), &m)
            .unwrap_err();
        assert_eq!(e.field, "install");
        // Another install has its own budget.
        let mut disabled = input("POST /api/sync", "30 * * * *");
        disabled.enabled = Some(false);
        store.create("t", "j", &disabled, &m).unwrap();
        let other = store
            .create("t", "j", &input("POST /api/sync", "30 * * * *"), &m)
            .unwrap();
        // 2024-01-01T10:30:15Z
        let now = 19_723 * 86_400 + 10 * 3600 + 30 * 60 + 15;
        assert_eq!(store.due(now), vec![other.clone()]);
        assert_eq!(store.due(now - 30 * 60).len(), MAX_PER_INSTALL);
        assert!(store.delete("t", "j", &other.id));
        assert!(!store.delete("t", "j", &other.id));
        assert!(store.due(now).is_empty());
        assert_eq!(store.list("t", "i").len(), MAX_PER_INSTALL);
    }
}
