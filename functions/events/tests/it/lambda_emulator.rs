//! The events Lambda binary on the real Lambda runtime protocol: cargo-lambda's
//! emulator feeds it the sample EventBridge event and SQS batch of `events/`
//! against a deployment on moto where the example extension (subscribed to
//! `hello.ping`) is installed for tenant `acme`, and a scheduler firing.

use test_support::lambda_emulator as emulator;

use emulator::{Deployment, Emulator, event};
use serde_json::json;

#[test]
fn fn_events_answers_the_sample_events_under_cargo_lambdas_emulator() {
    let deployment = Deployment::new();
    let hex = deployment.publish_example("acme");
    let mut lambda = Emulator::start();
    lambda.attach(
        "fn-events",
        env!("CARGO_BIN_EXE_fn-events"),
        deployment.function_env(),
    );

    // EventBridge invoking the function: the example's subscription runs.
    let direct = event("eventbridge-event.json", &hex);
    let r = lambda.invoke("fn-events", &direct);
    assert_eq!(r["tenant_id"], "acme", "{r}");
    assert_eq!(
        r["deliveries"],
        json!([{
            "extension_id": "com.example.hello",
            "handler": "/events/hello-ping",
            "status": "delivered",
            "detail": 200
        }]),
        "{r}"
    );
    // Delivered again (EventBridge retries at least once): not run twice.
    let r = lambda.invoke("fn-events", &direct);
    assert_eq!(r["deliveries"][0]["status"], "duplicate", "{r}");

    // The SQS batch: the event is delivered, the message that is no event is
    // reported back for the queue's redrive policy.
    let r = lambda.invoke("fn-events", &event("sqs-events.json", &hex));
    assert_eq!(
        r,
        json!({"batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]}),
        "{r}"
    );

    // EventBridge Scheduler's input naming a schedule that does not exist:
    // understood, and dropped with its code (not retried, nothing runs).
    let r = lambda.invoke("fn-events", &event("scheduler-firing.json", &hex));
    assert_eq!(r["status"], "dropped", "{r}");
    assert_eq!(r["code"], "not_found", "{r}");
}
