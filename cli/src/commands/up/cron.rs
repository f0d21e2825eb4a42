//! `up`'s in-process cron: once a minute, every enabled schedule in the data
//! directory that fires in that minute runs through the gateway's execute path
//! (`Gateway::fire_schedule`) — what EventBridge Scheduler and the events
//! function do on AWS. Each schedule is read in its own time zone
//! (`schedule::due`), with EventBridge Scheduler's daylight-saving rules.
//!
//! `ALGA_UP_CRON_TICK_MS` (for tests, undocumented in `--help`): instead of the
//! wall clock, a simulated clock that starts at the current minute and advances
//! one minute every that many milliseconds, so a `*/5` schedule fires within
//! five ticks instead of five minutes.

use std::sync::Arc;
use std::time::Duration;

use runtime_core::schedule;

use super::log::{Entry, journal};
use super::server::Site;

/// How the cron tells time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Real minutes, at their boundaries.
    Wall,
    /// One simulated minute per tick of this length.
    Simulated(Duration),
}

impl Clock {
    /// `ALGA_UP_CRON_TICK_MS` when set (a positive integer), else the wall clock.
    pub fn from_env() -> anyhow::Result<Clock> {
        match std::env::var("ALGA_UP_CRON_TICK_MS") {
            Ok(v) if !v.trim().is_empty() => {
                let ms: u64 = v.trim().parse().ok().filter(|ms| *ms > 0).ok_or_else(|| {
                    anyhow::anyhow!(
                        "ALGA_UP_CRON_TICK_MS={v:?}: expected a positive number of milliseconds"
                    )
                })?;
                Ok(Clock::Simulated(Duration::from_millis(ms)))
            }
            _ => Ok(Clock::Wall),
        }
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Runs forever: each minute, fires what is due.
pub async fn run(site: Arc<Site>, clock: Clock) {
    let mut minute = now_secs().div_euclid(60);
    loop {
        match clock {
            Clock::Wall => {
                // Sleep to the start of the next minute (a late wake-up still
                // fires the minute it woke in; nothing is fired twice).
                let next = (minute + 1) * 60;
                let wait = (next - now_secs()).clamp(0, 60) as u64;
                tokio::time::sleep(Duration::from_secs(wait)).await;
                minute = now_secs().div_euclid(60).max(minute + 1);
            }
            Clock::Simulated(tick) => {
                tokio::time::sleep(tick).await;
                minute += 1;
            }
        }
        tick(&site, minute).await;
    }
}

/// Fires the schedules due in `minute` (minutes since 1970, UTC), each in its
/// own task so a slow handler never delays the next minute.
async fn tick(site: &Arc<Site>, minute: i64) {
    let enabled = match site.backends.schedules.list_enabled().await {
        Ok(list) => list,
        Err(e) => {
            eprintln!("cron: schedules unavailable: {e}");
            return;
        }
    };
    for s in schedule::due(&enabled, minute * 60) {
        let site = site.clone();
        tokio::spawn(async move {
            let outcome = site.execute.gateway().fire_schedule(&s).await;
            let m = &outcome.metrics;
            let mut entry = Entry {
                method: "CRON".into(),
                path: format!(
                    "{} {} (schedule {} of {} for {})",
                    s.method, s.path, s.id, s.extension_id, s.tenant
                ),
                status: outcome.envelope.status,
                duration_ms: m.total.as_secs_f64() * 1000.0,
                outcome: m.outcome.to_string(),
                ..Entry::default()
            };
            if let Some(e) = &outcome.envelope.error {
                entry.metrics.insert("error".into(), e.clone().into());
            }
            if let Some(journal) = journal() {
                // Its invocation's report (logs, metrics) is claimed by request id.
                journal.finish(entry, m.request_id.as_deref());
            }
        });
    }
}
