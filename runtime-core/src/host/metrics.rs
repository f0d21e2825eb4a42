//! `alga:extension/metrics` (an alga-lambda addition): counters, gauges and
//! histograms with up to 5 dimensions, written as CloudWatch EMF after the
//! invocation by the gateway's EMF writer.
//!
//! Always available, like logging (no capability: metrics only describe the
//! extension's own work). Bounded per invocation: past the bound values are
//! dropped and counted (`GuestMetricsDropped`), the guest carries on. Calls do not
//! spend the host-call budget, so a metrics flood cannot turn into a trap; the
//! deadline and fuel still bound it.

use super::HostState;
use super::bindings::alga::extension::metrics::{self, Dimension, MetricUnit};
use super::logging::LogLevel;
use std::collections::BTreeMap;

/// Dimensions a guest may attach to one metric.
pub const MAX_GUEST_DIMENSIONS: usize = 5;
/// Distinct series (name + dimensions) a guest may create per invocation.
pub const MAX_GUEST_SERIES: usize = 100;
/// Root members we write ourselves; guest names may not take them.
pub(crate) const RESERVED: &[&str] = &["_aws", "ExtensionId", "TenantId", "InstallId", "RequestId"];

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    /// No unit.
    None,
    /// A count.
    Count,
    /// Milliseconds.
    Milliseconds,
    /// Seconds.
    Seconds,
    /// Bytes.
    Bytes,
    /// Kilobytes.
    Kilobytes,
    /// Megabytes.
    Megabytes,
    /// Percent.
    Percent,
}

impl Unit {
    /// The EMF spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::None => "None",
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::Bytes => "Bytes",
            Unit::Kilobytes => "Kilobytes",
            Unit::Megabytes => "Megabytes",
            Unit::Percent => "Percent",
        }
    }
}

/// How repeated values of one series combine within an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Summed.
    Counter,
    /// Last value wins.
    Gauge,
    /// Every value kept.
    Histogram,
}

/// One metric series of a guest.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Metric name.
    pub name: String,
    /// Unit.
    pub unit: Unit,
    /// Kind.
    pub kind: Kind,
    /// Dimensions, sorted by name.
    pub dimensions: Vec<(String, String)>,
    /// Values (one for counters and gauges).
    pub values: Vec<f64>,
}

/// What a guest recorded in one invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuestMetrics {
    /// The series, in order of creation.
    pub series: Vec<Series>,
    /// Values accepted.
    pub accepted: u32,
    /// Values dropped (over the bound) or refused (invalid).
    pub dropped: u32,
}

/// Why a value was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetricRejected {
    /// The invocation's bound on values or series is reached.
    #[error("the metrics bound of this invocation is reached")]
    OverBound,
    /// Name, dimensions or value are not acceptable.
    #[error("invalid metric: {0}")]
    Invalid(String),
}

/// Collects a guest's metrics under a bound: past it values are dropped and
/// counted, and the guest carries on.
#[derive(Debug)]
pub struct MetricsRecorder {
    limit: u32,
    index: BTreeMap<(String, Vec<(String, String)>), usize>,
    out: GuestMetrics,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && !s.chars().any(char::is_control)
}

impl MetricsRecorder {
    /// A recorder accepting at most `limit` values.
    pub fn new(limit: u32) -> Self {
        MetricsRecorder {
            limit,
            index: BTreeMap::new(),
            out: GuestMetrics::default(),
        }
    }

    /// Records one value.
    pub fn record(
        &mut self,
        kind: Kind,
        name: &str,
        value: f64,
        unit: Unit,
        dimensions: Vec<(String, String)>,
    ) -> Result<(), MetricRejected> {
        let result = self.try_record(kind, name, value, unit, dimensions);
        if result.is_err() {
            self.out.dropped = self.out.dropped.saturating_add(1);
        }
        result
    }

    fn try_record(
        &mut self,
        kind: Kind,
        name: &str,
        value: f64,
        unit: Unit,
        mut dimensions: Vec<(String, String)>,
    ) -> Result<(), MetricRejected> {
        // The bound is checked first, so a flood costs O(1) per call once it is hit.
        if self.out.accepted >= self.limit {
            return Err(MetricRejected::OverBound);
        }
        if !valid_name(name) || RESERVED.contains(&name) {
            return Err(MetricRejected::Invalid(format!("name {name:?}")));
        }
        if !value.is_finite() {
            return Err(MetricRejected::Invalid(format!("{name}: value {value}")));
        }
        if dimensions.len() > MAX_GUEST_DIMENSIONS {
            return Err(MetricRejected::Invalid(format!(
                "{name}: more than {MAX_GUEST_DIMENSIONS} dimensions"
            )));
        }
        dimensions.sort();
        for (i, (k, v)) in dimensions.iter().enumerate() {
            let duplicate = i > 0 && dimensions[i - 1].0 == *k;
            if !valid_name(k)
                || RESERVED.contains(&k.as_str())
                || k == name
                || duplicate
                || v.is_empty()
                || v.len() > 1024
            {
                return Err(MetricRejected::Invalid(format!("{name}: dimension {k:?}")));
            }
        }
        let key = (name.to_string(), dimensions);
        let at = match self.index.get(&key) {
            Some(&i) => i,
            None => {
                if self.out.series.len() >= MAX_GUEST_SERIES {
                    return Err(MetricRejected::OverBound);
                }
                self.out.series.push(Series {
                    name: key.0.clone(),
                    unit,
                    kind,
                    dimensions: key.1.clone(),
                    values: Vec::new(),
                });
                self.index.insert(key, self.out.series.len() - 1);
                self.out.series.len() - 1
            }
        };
        let series = &mut self.out.series[at];
        if series.kind != kind || series.unit != unit {
            return Err(MetricRejected::Invalid(format!(
                "{name}: recorded before with another kind or unit"
            )));
        }
        match (kind, series.values.first_mut()) {
            (Kind::Counter, Some(total)) => *total += value,
            (Kind::Gauge, Some(last)) => *last = value,
            _ => series.values.push(value),
        }
        self.out.accepted += 1;
        Ok(())
    }

    /// What was recorded.
    pub fn finish(&self) -> GuestMetrics {
        self.out.clone()
    }
}

fn unit(u: MetricUnit) -> Unit {
    match u {
        MetricUnit::None => Unit::None,
        MetricUnit::Count => Unit::Count,
        MetricUnit::Milliseconds => Unit::Milliseconds,
        MetricUnit::Seconds => Unit::Seconds,
        MetricUnit::Bytes => Unit::Bytes,
        MetricUnit::Kilobytes => Unit::Kilobytes,
        MetricUnit::Megabytes => Unit::Megabytes,
        MetricUnit::Percent => Unit::Percent,
    }
}

impl HostState {
    fn record_metric(
        &mut self,
        kind: Kind,
        name: String,
        value: f64,
        unit: Unit,
        dimensions: Vec<Dimension>,
    ) {
        let dims = dimensions.into_iter().map(|d| (d.name, d.value)).collect();
        match self.metrics.record(kind, &name, value, unit, dims) {
            Ok(()) => {}
            // Noted once per reason, so a flood does not also flood the log.
            Err(MetricRejected::OverBound) if !self.metrics_noted.0 => {
                self.metrics_noted.0 = true;
                self.logs.note(
                    LogLevel::Warn,
                    "metrics: bound reached, further values are dropped".into(),
                );
            }
            Err(e @ MetricRejected::Invalid(_)) if !self.metrics_noted.1 => {
                self.metrics_noted.1 = true;
                self.logs.note(LogLevel::Warn, format!("metrics: {e}"));
            }
            Err(_) => {}
        }
    }
}

impl metrics::Host for HostState {
    async fn counter(
        &mut self,
        name: String,
        value: f64,
        dimensions: Vec<Dimension>,
    ) -> wasmtime::Result<()> {
        self.record_metric(Kind::Counter, name, value, Unit::Count, dimensions);
        Ok(())
    }

    async fn gauge(
        &mut self,
        name: String,
        value: f64,
        u: MetricUnit,
        dimensions: Vec<Dimension>,
    ) -> wasmtime::Result<()> {
        self.record_metric(Kind::Gauge, name, value, unit(u), dimensions);
        Ok(())
    }

    async fn histogram(
        &mut self,
        name: String,
        value: f64,
        u: MetricUnit,
        dimensions: Vec<Dimension>,
    ) -> wasmtime::Result<()> {
        self.record_metric(Kind::Histogram, name, value, unit(u), dimensions);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_gauges_replace_histograms_keep() {
        let mut r = MetricsRecorder::new(10);
        let d = || vec![("route".to_string(), "/a".to_string())];
        r.record(Kind::Counter, "hits", 1.0, Unit::Count, d())
            .unwrap();
        r.record(Kind::Counter, "hits", 2.0, Unit::Count, d())
            .unwrap();
        r.record(Kind::Gauge, "queue", 5.0, Unit::None, vec![])
            .unwrap();
        r.record(Kind::Gauge, "queue", 3.0, Unit::None, vec![])
            .unwrap();
        r.record(Kind::Histogram, "lat", 1.5, Unit::Milliseconds, vec![])
            .unwrap();
        r.record(Kind::Histogram, "lat", 2.5, Unit::Milliseconds, vec![])
            .unwrap();
        let g = r.finish();
        let values: Vec<_> = g.series.iter().map(|s| s.values.clone()).collect();
        assert_eq!(values, vec![vec![3.0], vec![3.0], vec![1.5, 2.5]]);
        assert_eq!((g.accepted, g.dropped), (6, 0));
    }

    #[test]
    fn invalid_metrics_are_refused_and_counted() {
        let mut r = MetricsRecorder::new(100);
        for (name, value, dims) in [
            ("", 1.0, vec![]),
            ("_aws", 1.0, vec![]),
            ("TenantId", 1.0, vec![]),
            ("x", f64::NAN, vec![]),
            ("x", 1.0, vec![("x".to_string(), "v".to_string())]),
            ("x", 1.0, vec![("d".to_string(), String::new())]),
            (
                "x",
                1.0,
                (0..6).map(|i| (format!("d{i}"), "v".to_string())).collect(),
            ),
        ] {
            assert!(matches!(
                r.record(Kind::Counter, name, value, Unit::Count, dims),
                Err(MetricRejected::Invalid(_))
            ));
        }
        r.record(Kind::Counter, "x", 1.0, Unit::Count, vec![])
            .unwrap();
        assert!(
            r.record(Kind::Gauge, "x", 1.0, Unit::Count, vec![])
                .is_err()
        );
        assert_eq!(r.finish().dropped, 8);
    }
}
