//! The runner's per-invocation metrics and the guest's own, as CloudWatch
//! Embedded Metric Format (EMF) JSON lines. A line printed to stdout on Lambda
//! becomes CloudWatch metrics with no API call.
//!
//! EMF rules kept here (see the EMF specification): `_aws.Timestamp` in epoch
//! milliseconds; at most 100 metrics per document and 100 values per metric; at
//! most 30 dimensions per set; every metric and dimension named in `_aws` is a
//! root member (numbers for metrics, strings for dimensions).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::execute::Outcome;
use crate::host::metrics::{GuestMetrics, Series, Unit};

/// EMF's bound on values of one metric in one document.
const MAX_VALUES_PER_DOC: usize = 100;

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
