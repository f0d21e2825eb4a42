//! Metrics as CloudWatch Embedded Metric Format (EMF) JSON lines: the guest's own
//! metrics (`alga:extension/metrics`, bounded per invocation) and the runner's
//! per-invocation metrics. A line printed to stdout on Lambda becomes CloudWatch
//! metrics with no API call.
//!
//! EMF rules kept here (see the EMF specification): `_aws.Timestamp` in epoch
//! milliseconds; at most 100 metrics per document and 100 values per metric; at
//! most 30 dimensions per set; every metric and dimension named in `_aws` is a
//! root member (numbers for metrics, strings for dimensions).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::execute::Outcome;

/// Dimensions a guest may attach to one metric.
pub const MAX_GUEST_DIMENSIONS: usize = 5;
/// Distinct series (name + dimensions) a guest may create per invocation.
pub const MAX_GUEST_SERIES: usize = 100;
/// EMF's bound on values of one metric in one document.
const MAX_VALUES_PER_DOC: usize = 100;
/// Root members we write ourselves; guest names may not take them.
const RESERVED: &[&str] = &["_aws", "ExtensionId", "TenantId", "InstallId", "RequestId"];

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

/// Who an invocation ran for; written as properties (not dimensions, which
/// would be high-cardinality and cost money).
#[derive(Debug, Clone, Default)]
pub struct EmfContext {
    /// Namespace of the runner's metrics; guest metrics go to `<namespace>/Extensions`.
    pub namespace: String,
    /// Epoch milliseconds.
    pub timestamp_ms: u64,
}

fn number(v: f64) -> Value {
    serde_json::Number::from_f64(v)
        .map(Value::Number)
        .unwrap_or(Value::from(0))
}

fn document(
    ctx: &EmfContext,
    namespace: &str,
    dimension_sets: Vec<Vec<String>>,
    metrics: Vec<(String, Unit, Value)>,
    root: &Map<String, Value>,
) -> String {
    let mut doc = root.clone();
    let defs: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
        .collect();
    for (name, _, value) in metrics {
        doc.insert(name, value);
    }
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": ctx.timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimension_sets,
                "Metrics": defs,
            }]
        }),
    );
    Value::Object(doc).to_string()
}

/// The EMF lines of one invocation: the runner's metrics first, then the guest's.
pub fn outcome_lines(outcome: &Outcome, ctx: &EmfContext) -> Vec<String> {
    let m = &outcome.metrics;
    let mut root = Map::new();
    let extension = m.extension_id.clone().unwrap_or_default();
    root.insert("ExtensionId".into(), extension.clone().into());
    root.insert("Outcome".into(), m.outcome.into());
    for (key, value) in [
        ("TenantId", &m.tenant_id),
        ("InstallId", &m.install_id),
        ("RequestId", &m.request_id),
        ("ContentHash", &m.content_hash),
    ] {
        if let Some(v) = value {
            root.insert(key.into(), v.clone().into());
        }
    }
    let ms = |d: std::time::Duration| number(d.as_secs_f64() * 1000.0);
    let mut metrics = vec![
        ("Invocations".to_string(), Unit::Count, Value::from(1)),
        (
            "Errors".to_string(),
            Unit::Count,
            Value::from(u8::from(m.outcome != "ok")),
        ),
        (
            "Duration".to_string(),
            Unit::Milliseconds,
            ms(m.load + m.run),
        ),
        ("LoadDuration".to_string(), Unit::Milliseconds, ms(m.load)),
        ("RunDuration".to_string(), Unit::Milliseconds, ms(m.run)),
        (
            "PeakMemory".to_string(),
            Unit::Bytes,
            Value::from(m.peak_memory as u64),
        ),
        (
            "HostCalls".to_string(),
            Unit::Count,
            Value::from(m.host_calls),
        ),
        (
            "EgressCalls".to_string(),
            Unit::Count,
            Value::from(m.egress_calls),
        ),
        (
            "EgressBytes".to_string(),
            Unit::Bytes,
            Value::from(m.egress_bytes),
        ),
        (
            "GuestMetricsDropped".to_string(),
            Unit::Count,
            Value::from(m.guest.dropped),
        ),
    ];
    if let Some(fuel) = m.fuel_consumed {
        metrics.push(("FuelConsumed".to_string(), Unit::Count, Value::from(fuel)));
    }
    let mut lines = vec![document(
        ctx,
        &ctx.namespace,
        vec![vec!["ExtensionId".into()], vec!["Outcome".into()]],
        metrics,
        &root,
    )];
    lines.extend(guest_lines(&m.guest, ctx, &root, &extension));
    lines
}

/// One document per dimension set (and per 100 values of a histogram).
fn guest_lines(
    guest: &GuestMetrics,
    ctx: &EmfContext,
    identity: &Map<String, Value>,
    extension: &str,
) -> Vec<String> {
    let namespace = format!("{}/Extensions", ctx.namespace);
    let mut groups: BTreeMap<&[(String, String)], Vec<&Series>> = BTreeMap::new();
    for s in &guest.series {
        groups.entry(s.dimensions.as_slice()).or_default().push(s);
    }
    let mut lines = Vec::new();
    for (dims, series) in groups {
        let mut root = Map::new();
        for key in ["TenantId", "InstallId", "RequestId"] {
            if let Some(v) = identity.get(key) {
                root.insert(key.into(), v.clone());
            }
        }
        root.insert("ExtensionId".into(), extension.into());
        let mut set = vec!["ExtensionId".to_string()];
        for (k, v) in dims {
            root.insert(k.clone(), v.clone().into());
            set.push(k.clone());
        }
        let chunks = series
            .iter()
            .map(|s| s.values.len().div_ceil(MAX_VALUES_PER_DOC))
            .max()
            .unwrap_or(0);
        for chunk in 0..chunks {
            let metrics: Vec<(String, Unit, Value)> = series
                .iter()
                .filter_map(|s| {
                    let part = s.values.chunks(MAX_VALUES_PER_DOC).nth(chunk)?;
                    let value = if part.len() == 1 {
                        number(part[0])
                    } else {
                        Value::Array(part.iter().copied().map(number).collect())
                    };
                    Some((s.name.clone(), s.unit, value))
                })
                .collect();
            lines.push(document(ctx, &namespace, vec![set.clone()], metrics, &root));
        }
    }
    lines
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
