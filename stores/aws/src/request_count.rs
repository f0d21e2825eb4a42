//! Counting the requests the SDK clients send, by service and operation: an SDK
//! interceptor ([`RequestCounter::interceptor`]) that tests and benchmarks add
//! through [`crate::AwsOverrides::interceptors`] to measure how many AWS round
//! trips an invocation costs. It counts every attempt (a retry is a round trip
//! too) just before it goes on the wire.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents, SharedInterceptor};
use aws_sdk_dynamodb::error::BoxError;

/// `(service, operation)`, e.g. `("dynamodb", "TransactWriteItems")`.
pub type Operation = (String, String);

/// Requests sent, by service and operation; clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<BTreeMap<Operation, u64>>>,
}

impl RequestCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The interceptor to give the SDK clients.
    pub fn interceptor(&self) -> SharedInterceptor {
        SharedInterceptor::new(Counting(self.clone()))
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<Operation, u64> {
        self.counts.lock().unwrap().clone()
    }

    /// The counts so far, starting again from zero.
    pub fn take(&self) -> BTreeMap<Operation, u64> {
        std::mem::take(&mut *self.counts.lock().unwrap())
    }

    /// All requests counted so far.
    pub fn total(&self) -> u64 {
        self.counts.lock().unwrap().values().sum()
    }

    fn add(&self, op: Operation) {
        *self.counts.lock().unwrap().entry(op).or_default() += 1;
    }
}

#[derive(Debug)]
struct Counting(RequestCounter);

/// The service and operation of a request, from what it carries on the wire:
/// the JSON protocols name the operation in `x-amz-target`
/// (`DynamoDB_20120810.UpdateItem`, `secretsmanager.GetSecretValue`,
/// `AWSEvents.PutEvents`, `AmazonSQS.SendMessage`); S3 requests carry `x-id`
/// in the query (else the method and whether a key is named tell).
fn classify(method: &str, uri: &str, target: Option<&str>) -> Operation {
    if let Some((prefix, op)) = target.and_then(|t| t.split_once('.')) {
        let service = match prefix {
            p if p.starts_with("DynamoDB") => "dynamodb",
            "secretsmanager" => "secretsmanager",
            "AWSEvents" => "eventbridge",
            "AmazonSQS" => "sqs",
            other => other,
        };
        return (service.to_string(), op.to_string());
    }
    let query = uri.split_once('?').map(|(_, q)| q).unwrap_or("");
    if let Some(id) = query.split('&').find_map(|pair| pair.strip_prefix("x-id=")) {
        return ("s3".into(), id.to_string());
    }
    let path = uri
        .split_once("://")
        .map_or(uri, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let path = path.split('?').next().unwrap_or("");
    let object = path.trim_matches('/').contains('/');
    let op = match (method, object) {
        ("GET", true) => "GetObject",
        ("HEAD", true) => "HeadObject",
        ("PUT", true) => "PutObject",
        ("DELETE", true) => "DeleteObject",
        ("GET", false) if query.contains("list-type=2") => "ListObjectsV2",
        (m, _) => return ("s3".into(), format!("{m} {path}")),
    };
    ("s3".into(), op.to_string())
}

impl Intercept for Counting {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        self.0.add(classify(
            request.method(),
            request.uri(),
            request.headers().get("x-amz-target"),
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn operations_are_told_apart_by_target_or_s3_query() {
        let op = |m, u, t| {
            let (s, o) = classify(m, u, t);
            format!("{s} {o}")
        };
        assert_eq!(
            op(
                "POST",
                "http://127.0.0.1:5000/",
                Some("DynamoDB_20120810.TransactWriteItems")
            ),
            "dynamodb TransactWriteItems"
        );
        assert_eq!(
            op(
                "POST",
                "http://127.0.0.1:5000/",
                Some("secretsmanager.GetSecretValue")
            ),
            "secretsmanager GetSecretValue"
        );
        assert_eq!(
            op(
                "GET",
                "http://127.0.0.1:5000/b/artifacts/x.cwasm?x-id=GetObject",
                None
            ),
            "s3 GetObject"
        );
        assert_eq!(
            op("HEAD", "http://127.0.0.1:5000/b/k", None),
            "s3 HeadObject"
        );
        assert_eq!(
            op("GET", "http://127.0.0.1:5000/b?list-type=2&prefix=a", None),
            "s3 ListObjectsV2"
        );
    }
}
