//! Schedules of an install (the scheduler interface's data), with the seed's
//! limits: a 5-field cron (UTC), at least 5 minutes between firings, at most 50
//! per install, and an endpoint `"[METHOD ]/path"` naming a declared GET or POST
//! endpoint without parameters. [`due`] lists what fires in a
//! minute; the caller (`up`'s cron, or the events function) runs each through the
//! execute path with a fresh request id and the payload as the body ([`fire`]).
//!
//! Storage is [`crate::store::ScheduleStore`] (SQLite, memory, DynamoDB; on AWS
//! mirrored to EventBridge Scheduler); [`Scheduler`] is what the host functions
//! use; [`sync_for_install`] creates a manifest's schedules for an install.

pub mod aws_cron;
pub mod cron;
mod firing;
mod service;
mod sync;

use crate::manifest::Manifest;
pub use crate::store::schedules::{MAX_PER_INSTALL, Schedule};
pub use cron::{Cron, CronError};
pub use firing::{FireError, ScheduleFiring};
pub use service::{InstallScope, SchedulePatch, Scheduler, SchedulerFailure, new_schedule_id};
pub use sync::{MANIFEST_PREFIX, SyncReport, remove_for_install, sync_for_install, sync_installed};

/// Minutes between two firings, at least.
pub const MIN_INTERVAL_MINUTES: i64 = 5;
/// Largest payload (JSON text), bytes.
pub const MAX_PAYLOAD_BYTES: usize = 64 << 10;
/// Longest name, characters.
pub const MAX_NAME_CHARS: usize = 256;

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
    /// `endpoint`, `cron`, `timezone`, `name` or `payload`.
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
    if let Some(n) = &input.name
        && n.chars().count() > MAX_NAME_CHARS
    {
        return Err(err(
            "name",
            format!("longer than {MAX_NAME_CHARS} characters"),
        ));
    }
    if let Some(p) = &input.payload
        && p.len() > MAX_PAYLOAD_BYTES
    {
        return Err(err(
            "payload",
            format!("larger than {MAX_PAYLOAD_BYTES} bytes"),
        ));
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

/// The enabled schedules among `schedules` that fire in the minute containing
/// `now_unix_secs` (what `up`'s cron runs each minute).
pub fn due(schedules: &[Schedule], now_unix_secs: i64) -> Vec<Schedule> {
    let minute = now_unix_secs.div_euclid(60);
    schedules
        .iter()
        .filter(|s| s.enabled)
        .filter(|s| Cron::parse(&s.cron).is_ok_and(|c| c.matches(minute)))
        .cloned()
        .collect()
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
    fn due_lists_the_enabled_ones_firing_that_minute() {
        let at = |id: &str, cron: &str, enabled: bool| Schedule {
            id: id.into(),
            tenant: "t".into(),
            install_id: "i".into(),
            extension_id: "e".into(),
            method: "GET".into(),
            path: "/api/report".into(),
            cron: cron.into(),
            timezone: "UTC".into(),
            name: None,
            payload: None,
            enabled,
            created_at: 0,
        };
        let all = [
            at("a", "30 * * * *", true),
            at("b", "30 * * * *", false),
            at("c", "0 * * * *", true),
        ];
        // 2024-01-01T10:30:15Z
        let now = 19_723 * 86_400 + 10 * 3600 + 30 * 60 + 15;
        assert_eq!(due(&all, now), vec![all[0].clone()]);
        assert_eq!(due(&all, now - 30 * 60), vec![all[2].clone()]);
        assert!(due(&all, now + 60).is_empty());
    }
}
