//! Schedules of an install (the scheduler interface's data), with the seed's
//! limits: a 5-field cron evaluated in the schedule's IANA time zone (UTC by
//! default), at least 5 minutes between firings, at most 50 per install, and an
//! endpoint `"[METHOD ]/path"` naming a declared GET or POST endpoint without
//! parameters. [`due`] lists what fires in a minute; the caller (`up`'s cron, or
//! the events function) runs each through the execute path with a fresh
//! request id and the payload as the body ([`fire`]).
//!
//! Storage is [`crate::store::ScheduleStore`] (SQLite, memory, DynamoDB; on AWS
//! mirrored to EventBridge Scheduler); [`Scheduler`] is what the host functions
//! use; [`sync_for_install`] creates a manifest's schedules for an install.

pub mod aws_cron;
pub mod cron;
mod firing;
mod service;
mod sync;

pub use crate::clock::zone::{Zone, ZoneError};
use crate::manifest::{Endpoint, Manifest};
pub use crate::store::schedules::{MAX_PER_INSTALL, Schedule};
pub use cron::{Cron, CronError};
pub use firing::{FireError, ScheduleFiring};
pub use service::{InstallScope, SchedulePatch, Scheduler, SchedulerFailure, new_schedule_id};
pub use sync::{
    MANIFEST_PREFIX, SyncReport, install_key, remove_for_install, sync_for_install, sync_installed,
};

/// Minutes between two firings, at least.
pub const MIN_INTERVAL_MINUTES: i64 = 5;
/// Largest payload (JSON text), bytes.
pub const MAX_PAYLOAD_BYTES: usize = 64 << 10;
/// Longest name, characters.
pub const MAX_NAME_CHARS: usize = 256;

/// What a guest (or the manifest) asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleInput {
    /// `"[METHOD ]/path"`; without a method, the GET endpoint of that path, else its POST one.
    pub endpoint: String,
    /// 5-field cron.
    pub cron: String,
    /// IANA time zone the cron is read in (`Europe/Berlin`); none, empty or `Etc/UTC` is UTC.
    pub timezone: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// JSON text.
    pub payload: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// An accepted input, normalised: what a [`Schedule`] stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    /// `GET` or `POST`: the declared endpoint the selector resolved to.
    pub method: String,
    /// Its path.
    pub path: String,
    /// The cron with single spaces.
    pub cron: String,
    /// The canonical zone name (`UTC`, `Europe/Berlin`).
    pub timezone: String,
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

/// `/`-prefixed, with runs of `/` collapsed: Alga's host API reads a selector
/// path `reports//daily` as `/reports/daily`, so ours does too.
fn normalise_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 1);
    for c in std::iter::once('/').chain(path.chars()) {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

/// Resolves a selector `"[METHOD ]/path"` to a declared endpoint. With a method,
/// that method must be declared for the path. Without one (as in Alga), a GET
/// endpoint of the path is taken, else its POST one: GET first because a
/// method-less selector has always meant GET here (stored schedules keep their
/// endpoint), and because Alga's own lookup leaves the choice between the two
/// to its database's row order, so only a fixed rule makes it predictable.
fn resolve_endpoint<'m>(
    selector: &str,
    manifest: &'m Manifest,
) -> Result<&'m Endpoint, ScheduleError> {
    let selector = selector.trim();
    let (method, path) = match selector.split_once(char::is_whitespace) {
        Some((m, p)) if !m.starts_with('/') => (Some(m.to_ascii_uppercase()), p.trim()),
        _ => (None, selector),
    };
    if path.is_empty() {
        return Err(err(
            "endpoint",
            "expected \"[METHOD ]/path\", like \"POST /api/sync\"",
        ));
    }
    let path = normalise_path(path);
    let declared = |m: &str| {
        manifest
            .endpoints()
            .iter()
            .find(|e| e.method == m && e.path == path)
    };
    let endpoint = match &method {
        Some(m) => declared(m)
            .ok_or_else(|| err("endpoint", format!("{m} {path} is not a declared endpoint")))?,
        None => declared("GET")
            .or_else(|| declared("POST"))
            .ok_or_else(|| {
                err(
                    "endpoint",
                    format!("{path} is not a declared GET or POST endpoint"),
                )
            })?,
    };
    if !endpoint.is_schedulable() {
        return Err(err(
            "endpoint",
            "only GET and POST endpoints without parameters can be scheduled",
        ));
    }
    Ok(endpoint)
}

/// Checks an input against the seed's rules and the install's manifest.
pub fn validate(input: &ScheduleInput, manifest: &Manifest) -> Result<Validated, ScheduleError> {
    validate_at(input, manifest, crate::clock::unix_secs() as i64)
}

/// [`validate`] as of `now_unix_secs`: the minimum interval is checked across
/// the zone's offset changes from then on.
pub fn validate_at(
    input: &ScheduleInput,
    manifest: &Manifest,
    now_unix_secs: i64,
) -> Result<Validated, ScheduleError> {
    let endpoint = resolve_endpoint(&input.endpoint, manifest)?;
    let zone = Zone::parse(input.timezone.as_deref().unwrap_or_default())
        .map_err(|e| err("timezone", e.to_string()))?;
    let cron = Cron::parse(&input.cron).map_err(|m| err("cron", m))?;
    match cron.min_gap_minutes_in(&zone, now_unix_secs.div_euclid(60)) {
        Some(gap) if gap < MIN_INTERVAL_MINUTES => {
            let when = if cron
                .min_gap_minutes()
                .is_some_and(|g| g >= MIN_INTERVAL_MINUTES)
            {
                format!(" when {} changes its clocks", zone.name())
            } else {
                String::new()
            };
            return Err(err(
                "cron",
                format!(
                    "fires {gap} minute(s) apart{when}; at least {MIN_INTERVAL_MINUTES} are required"
                ),
            ));
        }
        None => return Err(err("cron", "never fires")),
        _ => {}
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
    Ok(Validated {
        method: endpoint.method.clone(),
        path: endpoint.path.clone(),
        cron: input.cron.split_whitespace().collect::<Vec<_>>().join(" "),
        timezone: zone.name().to_string(),
    })
}

/// The enabled schedules among `schedules` that fire in the minute containing
/// `now_unix_secs` (what `up`'s cron runs each minute), each read in its own
/// time zone. A schedule whose stored zone or cron no longer parses never
/// fires (rather than firing at the wrong instant), and says so in the log.
pub fn due(schedules: &[Schedule], now_unix_secs: i64) -> Vec<Schedule> {
    let minute = now_unix_secs.div_euclid(60);
    schedules
        .iter()
        .filter(|s| s.enabled)
        .filter(|s| match (Cron::parse(&s.cron), Zone::parse(&s.timezone)) {
            (Ok(cron), Ok(zone)) => cron.matches_in(minute, &zone),
            (cron, zone) => {
                tracing::warn!(
                    schedule = %s.id,
                    tenant = %s.tenant,
                    cron = ?cron.err(),
                    timezone = ?zone.err(),
                    "stored schedule does not parse; not fired"
                );
                false
            }
        })
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

    /// 2027-01-01T00:00Z: validation "now" in these tests, so the zone's
    /// transitions checked are those of 2027 on.
    const NOW_2027: i64 = 1_798_761_600;

    fn check(input: &ScheduleInput, m: &Manifest) -> Result<Validated, ScheduleError> {
        validate_at(input, m, NOW_2027)
    }

    fn in_zone(endpoint: &str, cron: &str, tz: &str) -> ScheduleInput {
        ScheduleInput {
            timezone: Some(tz.into()),
            ..input(endpoint, cron)
        }
    }

    #[test]
    fn the_seed_limits_hold() {
        let m = manifest();
        check(&input("/api/report", "*/5 * * * *"), &m).unwrap();
        let v = check(&input("post /api/sync", "0  3 * * 1"), &m).unwrap();
        assert_eq!(
            (
                v.method.as_str(),
                v.path.as_str(),
                v.cron.as_str(),
                v.timezone.as_str()
            ),
            ("POST", "/api/sync", "0 3 * * 1", "UTC")
        );
        for (endpoint, cron, field) in [
            ("/api/report", "* * * * *", "cron"),
            ("/api/report", "0,3 * * * *", "cron"),
            ("/api/report", "0 0 31 2 *", "cron"),
            ("/api/items/:id", "0 * * * *", "endpoint"),
            ("DELETE /api/purge", "0 * * * *", "endpoint"),
            ("/api/missing", "0 * * * *", "endpoint"),
            ("", "0 * * * *", "endpoint"),
        ] {
            assert_eq!(
                check(&input(endpoint, cron), &m).unwrap_err().field,
                field,
                "{endpoint} {cron}"
            );
        }
    }

    /// Alga: a selector without a method names the GET or the POST endpoint of
    /// the path. We take GET when both are declared, POST when only it is.
    #[test]
    fn method_less_selectors_accept_get_and_post_endpoints() {
        let m = Manifest::parse(
            br#"{"name":"x","version":"1.0.0","runtime":"wasm-js@1","api":{"endpoints":[
                {"method":"GET","path":"/reports/daily","handler":"h"},
                {"method":"POST","path":"/sync","handler":"h"},
                {"method":"POST","path":"/both","handler":"h"},
                {"method":"GET","path":"/both","handler":"h"},
                {"method":"DELETE","path":"/purge","handler":"h"},
                {"method":"POST","path":"/items/:id","handler":"h"}]}}"#,
        )
        .unwrap();
        let resolved = |selector: &str| {
            check(&input(selector, "0 * * * *"), &m).map(|v| format!("{} {}", v.method, v.path))
        };
        for (selector, endpoint) in [
            ("/reports/daily", "GET /reports/daily"),
            ("/sync", "POST /sync"),
            ("/both", "GET /both"),
            ("  /both  ", "GET /both"),
            // Alga's path normalisation: leading `/` added, runs of `/` collapsed.
            ("reports/daily", "GET /reports/daily"),
            ("//reports//daily", "GET /reports/daily"),
            // A method given is the method taken.
            ("POST /both", "POST /both"),
            ("get /both", "GET /both"),
            ("POST\t/sync", "POST /sync"),
            ("GET   sync//", "error"),
            ("GET /sync", "error"),
            ("POST /reports/daily", "error"),
            ("/purge", "error"),
            ("DELETE /purge", "error"),
            ("/items/:id", "error"),
            ("/missing", "error"),
        ] {
            match resolved(selector) {
                Ok(got) => assert_eq!(got, endpoint, "{selector:?}"),
                Err(e) => {
                    assert_eq!(endpoint, "error", "{selector:?}: {e}");
                    assert_eq!(e.field, "endpoint", "{selector:?}");
                }
            }
        }
        assert_eq!(
            resolved("/missing").unwrap_err().message,
            "/missing is not a declared GET or POST endpoint"
        );
        assert_eq!(
            resolved("GET /sync").unwrap_err().message,
            "GET /sync is not a declared endpoint"
        );
    }

    #[test]
    fn time_zones_are_iana_names_stored_canonically() {
        let m = manifest();
        for (tz, stored) in [
            ("", "UTC"),
            ("UTC", "UTC"),
            ("Etc/UTC", "UTC"),
            ("Europe/Berlin", "Europe/Berlin"),
            ("europe/paris", "Europe/Paris"),
            ("America/New_York", "America/New_York"),
            ("Asia/Kathmandu", "Asia/Kathmandu"),
        ] {
            let v = check(&in_zone("/api/report", "0 8 * * *", tz), &m).unwrap();
            assert_eq!(v.timezone, stored, "{tz:?}");
        }
        assert_eq!(
            check(&input("/api/report", "0 8 * * *"), &m)
                .unwrap()
                .timezone,
            "UTC"
        );
        for tz in ["Europe/Berlen", "Berlin", "CEST+2", "+01:00"] {
            let e = check(&in_zone("/api/report", "0 8 * * *", tz), &m).unwrap_err();
            assert_eq!(e.field, "timezone", "{tz}");
            assert!(e.message.contains("unknown time zone"), "{tz}: {e}");
            assert!(e.message.contains(tz), "{tz}: {e}");
        }
    }

    /// The 5-minute rule holds in real time: spring forward brings the firings
    /// on either side of the gap closer, so an expression fine on the wall
    /// clock can be refused in a zone; fall back only widens gaps.
    #[test]
    fn the_minimum_interval_holds_across_clock_changes() {
        let m = manifest();
        // 01:58 CET and 03:00 CEST on 2027-03-28 are 00:58 and 01:00 UTC.
        let close = "0,58 1,3 * * *";
        check(&input("/api/report", close), &m).unwrap();
        let e = check(&in_zone("/api/report", close, "Europe/Berlin"), &m).unwrap_err();
        assert_eq!(e.field, "cron");
        assert_eq!(
            e.message,
            "fires 2 minute(s) apart when Europe/Berlin changes its clocks; at least 5 are required"
        );
        // New York springs forward at 02:00 local too (2027-03-14).
        assert_eq!(
            check(&in_zone("/api/report", close, "America/New_York"), &m)
                .unwrap_err()
                .field,
            "cron"
        );
        // Only on 28 March: 2027's transition day, so still refused.
        let e = check(
            &in_zone("/api/report", "0,58 1,3 28 3 *", "Europe/Berlin"),
            &m,
        )
        .unwrap_err();
        assert_eq!(e.field, "cron");
        // Steps keep their interval across the gap (01:55 CET → 03:00 CEST is
        // 5 real minutes), and the repeated hour of fall back only widens gaps.
        for ok in ["*/5 * * * *", "0 2,3 * * *", "0,30 2 * * *", "55 1 * * *"] {
            check(&in_zone("/api/report", ok, "Europe/Berlin"), &m)
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        // A 30-minute shift (Lord Howe Island) and a quarter-hour offset too.
        check(
            &in_zone("/api/report", "*/5 * * * *", "Australia/Lord_Howe"),
            &m,
        )
        .unwrap();
        check(&in_zone("/api/report", "*/5 * * * *", "Asia/Kathmandu"), &m).unwrap();
    }

    fn in_berlin(id: &str, cron: &str) -> Schedule {
        Schedule {
            id: id.into(),
            tenant: "t".into(),
            install_id: "i".into(),
            extension_id: "e".into(),
            method: "GET".into(),
            path: "/api/report".into(),
            cron: cron.into(),
            timezone: "Europe/Berlin".into(),
            name: None,
            payload: None,
            enabled: true,
            created_at: 0,
        }
    }

    /// Every (schedule id, UTC time) that `due` fires from `from` (inclusive)
    /// to `until` (exclusive): a test clock stepping one minute at a time, as
    /// `up`'s cron does.
    fn fired(all: &[Schedule], from: &str, until: &str) -> Vec<(String, String)> {
        let minute = |t: &str| t.parse::<jiff::Timestamp>().unwrap().as_second() / 60;
        (minute(from)..minute(until))
            .flat_map(|m| {
                due(all, m * 60).into_iter().map(move |s| {
                    let at = jiff::Timestamp::from_second(m * 60).unwrap();
                    (s.id, at.strftime("%Y-%m-%dT%H:%MZ").to_string())
                })
            })
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(id, at)| (id.to_string(), at.to_string()))
            .collect()
    }

    /// Issue 17 item 5: schedules in Europe/Berlin fire at the right UTC
    /// instants across both transitions of 2027 (summer time from 2027-03-28
    /// 01:00Z, back to winter time at 2027-10-31 01:00Z), read off a test clock.
    /// A wall-clock time the spring gap skips does not fire that day; one the
    /// autumn overlap repeats fires once, at its first (summer-time) instant.
    #[test]
    fn berlin_schedules_fire_at_the_right_utc_instants_across_2027_dst() {
        let all = [
            in_berlin("daily-0230", "30 2 * * *"),
            in_berlin("daily-0900", "0 9 * * *"),
            in_berlin("half-hourly-night", "*/30 0-4 * * *"),
        ];
        // Spring: 02:00 CET jumps to 03:00 CEST on Sunday 28 March.
        let spring = fired(&all, "2027-03-27T00:00:00Z", "2027-03-29T12:00:00Z");
        assert_eq!(
            spring,
            pairs(&[
                // Saturday, CET (UTC+1): 01:00 local is 00:00Z.
                ("half-hourly-night", "2027-03-27T00:00Z"),
                ("half-hourly-night", "2027-03-27T00:30Z"),
                ("half-hourly-night", "2027-03-27T01:00Z"),
                ("daily-0230", "2027-03-27T01:30Z"),
                ("half-hourly-night", "2027-03-27T01:30Z"),
                ("half-hourly-night", "2027-03-27T02:00Z"),
                ("half-hourly-night", "2027-03-27T02:30Z"),
                ("half-hourly-night", "2027-03-27T03:00Z"),
                ("half-hourly-night", "2027-03-27T03:30Z"),
                ("daily-0900", "2027-03-27T08:00Z"),
                // Sunday: 00:00 and 00:30 CET fire in the previous UTC day.
                ("half-hourly-night", "2027-03-27T23:00Z"),
                ("half-hourly-night", "2027-03-27T23:30Z"),
                ("half-hourly-night", "2027-03-28T00:00Z"),
                ("half-hourly-night", "2027-03-28T00:30Z"),
                // 02:00 and 02:30 do not exist: next is 03:00 CEST = 01:00Z.
                ("half-hourly-night", "2027-03-28T01:00Z"),
                ("half-hourly-night", "2027-03-28T01:30Z"),
                ("half-hourly-night", "2027-03-28T02:00Z"),
                ("half-hourly-night", "2027-03-28T02:30Z"),
                // 09:00 CEST (UTC+2).
                ("daily-0900", "2027-03-28T07:00Z"),
                // Monday, CEST.
                ("half-hourly-night", "2027-03-28T22:00Z"),
                ("half-hourly-night", "2027-03-28T22:30Z"),
                ("half-hourly-night", "2027-03-28T23:00Z"),
                ("half-hourly-night", "2027-03-28T23:30Z"),
                ("half-hourly-night", "2027-03-29T00:00Z"),
                ("daily-0230", "2027-03-29T00:30Z"),
                ("half-hourly-night", "2027-03-29T00:30Z"),
                ("half-hourly-night", "2027-03-29T01:00Z"),
                ("half-hourly-night", "2027-03-29T01:30Z"),
                ("half-hourly-night", "2027-03-29T02:00Z"),
                ("half-hourly-night", "2027-03-29T02:30Z"),
                ("daily-0900", "2027-03-29T07:00Z"),
            ])
        );
        // Autumn: 03:00 CEST goes back to 02:00 CET on Sunday 31 October.
        let autumn = fired(&all, "2027-10-30T12:00:00Z", "2027-11-01T12:00:00Z");
        assert_eq!(
            autumn,
            pairs(&[
                // Sunday: CEST until 01:00Z.
                ("half-hourly-night", "2027-10-30T22:00Z"),
                ("half-hourly-night", "2027-10-30T22:30Z"),
                ("half-hourly-night", "2027-10-30T23:00Z"),
                ("half-hourly-night", "2027-10-30T23:30Z"),
                ("half-hourly-night", "2027-10-31T00:00Z"),
                // 02:30 CEST: the first 02:30.
                ("daily-0230", "2027-10-31T00:30Z"),
                ("half-hourly-night", "2027-10-31T00:30Z"),
                // 01:00Z and 01:30Z are 02:00 and 02:30 again (CET): not repeated.
                ("half-hourly-night", "2027-10-31T02:00Z"),
                ("half-hourly-night", "2027-10-31T02:30Z"),
                ("half-hourly-night", "2027-10-31T03:00Z"),
                ("half-hourly-night", "2027-10-31T03:30Z"),
                // 09:00 CET (UTC+1).
                ("daily-0900", "2027-10-31T08:00Z"),
                // Monday, CET.
                ("half-hourly-night", "2027-10-31T23:00Z"),
                ("half-hourly-night", "2027-10-31T23:30Z"),
                ("half-hourly-night", "2027-11-01T00:00Z"),
                ("half-hourly-night", "2027-11-01T00:30Z"),
                ("half-hourly-night", "2027-11-01T01:00Z"),
                ("daily-0230", "2027-11-01T01:30Z"),
                ("half-hourly-night", "2027-11-01T01:30Z"),
                ("half-hourly-night", "2027-11-01T02:00Z"),
                ("half-hourly-night", "2027-11-01T02:30Z"),
                ("half-hourly-night", "2027-11-01T03:00Z"),
                ("half-hourly-night", "2027-11-01T03:30Z"),
                ("daily-0900", "2027-11-01T08:00Z"),
            ])
        );
        // `next_after_in` walks the same instants as `due`.
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        for (from, until) in [
            ("2027-03-27T00:00:00Z", "2027-03-29T12:00:00Z"),
            ("2027-10-30T12:00:00Z", "2027-11-01T12:00:00Z"),
        ] {
            let minute = |t: &str| t.parse::<jiff::Timestamp>().unwrap().as_second() / 60;
            for s in &all {
                let cron = Cron::parse(&s.cron).unwrap();
                let mut walked = Vec::new();
                let mut at = minute(from) - 1;
                while let Some(next) = cron.next_after_in(at, &berlin) {
                    if next >= minute(until) {
                        break;
                    }
                    walked.push(next);
                    at = next;
                }
                let by_due: Vec<i64> = (minute(from)..minute(until))
                    .filter(|m| cron.matches_in(*m, &berlin))
                    .collect();
                assert_eq!(walked, by_due, "{}", s.id);
            }
        }
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
