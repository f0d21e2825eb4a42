//! Metrics in CloudWatch Embedded Metric Format: the runner's per-invocation
//! metrics and the guest's own (`alga:extension/metrics`), each line checked
//! against the EMF specification's structure; a guest emitting a million values
//! is cut at the bound while the host carries on.

use std::collections::HashSet;

use runtime_core::gateway::emf::{EmfContext, outcome_lines};
use serde_json::{Value, json};
use test_support::{Harness, guests, request};

/// Checks one line against the EMF specification: a JSON object whose `_aws`
/// member has an integer `Timestamp` (epoch ms) and a `CloudWatchMetrics` array
/// of directives, each with a `Namespace` string (1–255 chars), `Dimensions` (an
/// array of dimension sets, each an array of at most 30 strings naming root
/// members whose values are strings) and `Metrics` (at most 100 objects with a
/// `Name` naming a root member holding a number or an array of at most 100
/// numbers, and an optional `Unit`). Returns the document.
fn assert_valid_emf(line: &str) -> Value {
    const UNITS: &[&str] = &[
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];
    assert!(!line.contains('\n'), "one line per document");
    let doc: Value = serde_json::from_str(line).expect("EMF is JSON");
    let root = doc.as_object().expect("EMF root is an object");
    let aws = root["_aws"].as_object().expect("_aws object");
    let ts = aws["Timestamp"].as_u64().expect("Timestamp is an integer");
    assert!(ts > 1_600_000_000_000, "Timestamp in epoch milliseconds");
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics");
    assert!(!directives.is_empty());
    for d in directives {
        let ns = d["Namespace"].as_str().expect("Namespace");
        assert!((1..=255).contains(&ns.len()));
        for set in d["Dimensions"].as_array().expect("Dimensions") {
            let set = set.as_array().expect("a dimension set is an array");
            assert!(set.len() <= 30);
            for key in set {
                let key = key.as_str().expect("dimension names are strings");
                assert!(root[key].is_string(), "dimension {key} is a root string");
            }
        }
        let metrics = d["Metrics"].as_array().expect("Metrics");
        assert!(!metrics.is_empty() && metrics.len() <= 100);
        let mut names = HashSet::new();
        for m in metrics {
            let name = m["Name"].as_str().expect("metric Name");
            assert!(names.insert(name), "metric {name} defined twice");
            if let Some(unit) = m.get("Unit") {
                assert!(UNITS.contains(&unit.as_str().unwrap()), "unit {unit}");
            }
            match &root[name] {
                Value::Number(_) => {}
                Value::Array(values) => {
                    assert!(values.len() <= 100, "{name}: over 100 values");
                    assert!(values.iter().all(Value::is_number));
                }
                other => panic!("metric {name} is not a number: {other}"),
            }
        }
    }
    doc
}

fn ctx() -> EmfContext {
    EmfContext {
        namespace: "AlgaLambda".into(),
        timestamp_ms: 1_760_000_000_000,
    }
}

#[tokio::test]
async fn runner_metrics_are_valid_emf() {
    let h = Harness::new();
    let (content, _) = h.publish(&guests::hello()).await;
    let out = h.run(request(&content, "GET", "/", json!({}))).await;
    let lines = outcome_lines(&out, &ctx());
    assert_eq!(lines.len(), 1, "no guest metrics, one runner line");
    let doc = assert_valid_emf(&lines[0]);
    assert_eq!(doc["Outcome"], "ok");
    assert_eq!(doc["ExtensionId"], "com.example.test");
    assert_eq!(doc["TenantId"], "tenant-a");
    assert_eq!(doc["RequestId"], "req-1");
    assert_eq!(doc["Invocations"], 1);
    assert_eq!(doc["Errors"], 0);
    assert!(doc["PeakMemory"].as_u64().unwrap() > 0);
    assert!(doc["Duration"].as_f64().unwrap() > 0.0);
    assert_eq!(doc["EgressBytes"], 0);

    // A failed invocation is counted as an error under its code.
    let (content, _) = h.publish(&guests::trap()).await;
    let out = h.run(request(&content, "GET", "/", json!({}))).await;
    let doc = assert_valid_emf(&outcome_lines(&out, &ctx())[0]);
    assert_eq!(
        (doc["Outcome"].as_str(), doc["Errors"].as_u64()),
        (Some("guest_trap"), Some(1))
    );
}

#[tokio::test]
async fn a_million_guest_metrics_are_cut_at_the_bound() {
    let h = Harness::new();
    let (content, _) = h.publish(&guests::metrics_flood(1_000_000)).await;
    let out = h
        .run(request(
            &content,
            "GET",
            "/",
            json!({"limits": {"timeout_ms": 30000}}),
        ))
        .await;
    assert!(out.envelope.error.is_none(), "{:?}", out.envelope);
    assert_eq!(out.envelope.body().unwrap(), b"done");
    let guest = &out.metrics.guest;
    assert_eq!(guest.accepted, 1000, "the default bound");
    assert_eq!(guest.dropped, 1_000_001 - 1000);
    assert!(
        out.logs
            .iter()
            .filter(|l| l.message.contains("metrics"))
            .count()
            == 1,
        "the bound is noted once"
    );
    let lines = outcome_lines(&out, &ctx());
    let docs: Vec<Value> = lines.iter().map(|l| assert_valid_emf(l)).collect();
    assert_eq!(docs[0]["GuestMetricsDropped"], 999_001);
    // The counter with its dimension, then 999 histogram values in 10 documents.
    let counter = docs
        .iter()
        .find(|d| d.get("requests").is_some())
        .expect("counter document");
    assert_eq!(counter["requests"], 1.0);
    assert_eq!(counter["route"], "/a");
    assert_eq!(
        counter["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["ExtensionId", "route"]])
    );
    assert_eq!(
        counter["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "AlgaLambda/Extensions"
    );
    let latency: Vec<&Value> = docs.iter().filter(|d| d.get("latency").is_some()).collect();
    assert_eq!(latency.len(), 10);
    let values: usize = latency
        .iter()
        .map(|d| d["latency"].as_array().map_or(1, Vec::len))
        .sum();
    assert_eq!(values, 999);
    assert_eq!(
        latency[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0],
        json!({"Name": "latency", "Unit": "Milliseconds"})
    );
}
