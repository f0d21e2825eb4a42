//! The events function against moto's EventBridge and SQS: events put on a bus
//! reach a queue through a rule, the function takes the queue's batches (partial
//! failures reported, the queue's redelivery counted) and EventBridge events
//! invoked directly; dead letters go to an SQS queue with their reason; guests'
//! events go to EventBridge with their tenant; EventBridge Scheduler's firing
//! messages run the schedule's endpoint with its payload.

use test_support::moto;

use test_support::event_fleet;

use std::time::{Duration, Instant};

use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use event_fleet::{BROKEN, EMITTER, LISTENER_A, LISTENER_B, SCHEDULED};
use fn_events::EventsFunction;
use runtime_core::backends::Backends;
use runtime_core::events::EventFields;
use runtime_core::gateway::RetryPolicy;
use runtime_core::schedule::{InstallScope, ScheduleInput};
use runtime_core::store::KvScope;
use serde_json::{Value, json};
use stores_aws::{SchedulerTarget, schedule_name};

struct Queue {
    url: String,
    arn: String,
}

async fn queue(sqs: &aws_sdk_sqs::Client, name: &str) -> Queue {
    let url = sqs
        .create_queue()
        .queue_name(moto::unique(name))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn = attrs.attributes.unwrap()[&QueueAttributeName::QueueArn].clone();
    Queue { url, arn }
}

/// Receives until `n` messages arrived and deletes them, as a consumer does
/// (moto delivers rule targets at once; the deadline only guards against a hang).
async fn receive(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    n: usize,
) -> Vec<aws_sdk_sqs::types::Message> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while got.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} messages arrived",
            got.len()
        );
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        got.extend(out.messages.unwrap_or_default());
    }
    for m in &got {
        sqs.delete_message()
            .queue_url(url)
            .receipt_handle(m.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }
    got
}

/// The SQS batch Lambda would receive for `messages`, each at `attempt`.
fn batch(messages: &[&aws_sdk_sqs::types::Message], attempt: u32) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id().unwrap(),
                "receiptHandle": m.receipt_handle().unwrap(),
                "body": m.body().unwrap(),
                "attributes": {"ApproximateReceiveCount": attempt.to_string()},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": records })
}

fn put(bus: &str, source: &str, topic: &str, detail: Value) -> PutEventsRequestEntry {
    PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(source)
        .detail_type(topic)
        .detail(detail.to_string())
        .build()
}

async fn runs(backends: &Backends, tenant: &str, ext: &str) -> usize {
    backends
        .executions
        .recent(tenant, ext, 100)
        .await
        .unwrap()
        .len()
}

fn tenant_of(m: &aws_sdk_sqs::types::Message) -> String {
    let v: Value = serde_json::from_str(m.body().unwrap()).unwrap();
    v["detail"]["tenant_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbridge_rule_to_sqs_to_the_function_delivers_once_per_install_and_dead_letters() {
    let moto = moto::Moto::shared();
    let mut settings = moto::settings(moto);
    let clients = moto::provision(&settings).await;
    let (sqs, eb) = (&clients.sqs, &clients.eventbridge);
    let events = queue(sqs, "events").await;
    let dead = queue(sqs, "dead").await;
    let bus = moto::unique("bus");
    eb.create_event_bus().name(&bus).send().await.unwrap();
    let rule = moto::unique("rule");
    eb.put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(
            json!({"source": ["alga.psa", format!("alga.extension/{EMITTER}")]}).to_string(),
        )
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            Target::builder()
                .id("queue")
                .arn(&events.arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    settings.event_bus = bus.clone();
    settings.events_dlq_url = Some(dead.url.clone());
    let backends = stores_aws::backends(&settings).await;
    let gateway = event_fleet::fleet(&backends, Some((backends.events.clone(), 10))).await;
    let function = EventsFunction::new(
        gateway.clone(),
        RetryPolicy {
            max_attempts: 3,
            first_backoff: Duration::from_millis(5),
        },
        EventFields::default(),
    );

    // The host app puts two events; the rule queues them.
    eb.put_events()
        .entries(put(
            &bus,
            "alga.psa",
            "ticket.created",
            json!({"tenant_id": "t1", "n": 1}),
        ))
        .entries(put(
            &bus,
            "alga.psa",
            "ticket.created",
            json!({"tenant_id": "t2", "n": 2}),
        ))
        .entries(put(
            &bus,
            "someone.else",
            "ticket.created",
            json!({"tenant_id": "t1"}),
        ))
        .send()
        .await
        .unwrap();
    let messages = receive(sqs, &events.url, 2).await;
    assert_eq!(messages.len(), 2, "the rule matches only alga.psa");
    let t1 = messages.iter().find(|m| tenant_of(m) == "t1").unwrap();
    let t2 = messages.iter().find(|m| tenant_of(m) == "t2").unwrap();

    // First delivery: t1's message comes back (its broken subscriber may
    // recover), t2's is done.
    let out = function.handle(batch(&[t1, t2], 1)).await.unwrap();
    assert_eq!(
        out,
        json!({"batchItemFailures": [{"itemIdentifier": t1.message_id().unwrap()}]})
    );
    assert_eq!(runs(&backends, "t1", LISTENER_A).await, 1);
    assert_eq!(runs(&backends, "t1", LISTENER_B).await, 1);
    assert_eq!(runs(&backends, "t2", LISTENER_A).await, 1);
    assert_eq!(
        runs(&backends, "t2", LISTENER_B).await,
        0,
        "not installed in t2"
    );

    // SQS redelivers it: the listeners are not run again; on the third
    // attempt the broken subscription is dead-lettered and the message is done.
    let out = function.handle(batch(&[t1], 2)).await.unwrap();
    assert_eq!(out["batchItemFailures"].as_array().unwrap().len(), 1);
    let out = function.handle(batch(&[t1], 3)).await.unwrap();
    assert_eq!(out, json!({"batchItemFailures": []}));
    assert_eq!(runs(&backends, "t1", LISTENER_A).await, 1);
    assert_eq!(runs(&backends, "t1", BROKEN).await, 3);
    let dead_letters = receive(sqs, &dead.url, 1).await;
    let letter: Value = serde_json::from_str(dead_letters[0].body().unwrap()).unwrap();
    assert_eq!(letter["extension_id"], BROKEN);
    assert_eq!(letter["attempts"], 3);
    assert_eq!(letter["event"]["tenant_id"], "t1");
    assert!(
        letter["reason"].as_str().unwrap().contains("trap"),
        "{letter}"
    );
    let attrs = dead_letters[0].message_attributes().unwrap();
    assert!(attrs["reason"].string_value().unwrap().contains("trap"));

    // A message that is not an event is left for the queue's own redrive.
    let mut junk = batch(&[t2], 1);
    junk["Records"][0]["body"] = json!("not json");
    let out = function.handle(junk).await.unwrap();
    assert_eq!(out["batchItemFailures"].as_array().unwrap().len(), 1);

    // EventBridge invoking the function directly: retried in process, then
    // dead-lettered; the answer accounts for every subscription.
    let direct = json!({
        "version": "0", "id": "direct-1", "detail-type": "ticket.created",
        "source": "alga.psa", "time": "2026-11-22T10:00:00Z", "region": "us-east-1",
        "account": "123456789012", "resources": [],
        "detail": {"tenant_id": "t1"}
    });
    let out = function.handle(direct).await.unwrap();
    let statuses: Vec<(&str, &str)> = out["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["extension_id"].as_str().unwrap(),
                d["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (BROKEN, "dead_lettered"),
            (LISTENER_A, "delivered"),
            (LISTENER_B, "delivered")
        ]
    );
    assert_eq!(receive(sqs, &dead.url, 1).await.len(), 1);
    assert!(function.handle(json!({"hello": "world"})).await.is_err());

    // A guest's emit goes to EventBridge with its own tenant, and the rule
    // queues it like any other event.
    let out = event_fleet::run_emitter(&gateway, "t1").await;
    assert_eq!(out.envelope.status, 200, "{:?}", out.envelope);
    let emitted = receive(sqs, &events.url, 1).await;
    let v: Value = serde_json::from_str(emitted[0].body().unwrap()).unwrap();
    assert_eq!(v["detail-type"], "widget.made");
    assert_eq!(v["source"], format!("alga.extension/{EMITTER}"));
    // The detail carries the event's depth in a chain of emits.
    assert_eq!(
        v["detail"],
        json!({"n": 1, "tenant_id": "t1", "alga_event_hops": 1})
    );
}

/// The input EventBridge Scheduler holds for a schedule (read back
/// from moto's Scheduler API, as AWS would deliver it) makes the function run
/// that schedule's endpoint of that install with its payload; stale and junk
/// firings are dropped with a code, never run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_firings_run_the_schedules_endpoint_with_its_payload() {
    let moto = moto::Moto::shared();
    let mut settings = moto::settings(moto);
    let clients = moto::provision(&settings).await;
    let group = moto::unique("grp");
    clients
        .scheduler
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .unwrap();
    settings.scheduler = Some(SchedulerTarget {
        target_arn: "arn:aws:lambda:us-east-1:123456789012:function:alga-events".into(),
        role_arn: "arn:aws:iam::123456789012:role/alga-scheduler".into(),
        group: group.clone(),
    });
    let backends = stores_aws::backends(&settings).await;
    let gateway = event_fleet::fleet(&backends, None).await;
    let function = EventsFunction::new(
        gateway.clone(),
        RetryPolicy::default(),
        EventFields::default(),
    );
    let install = backends
        .registry
        .get_install("t1", SCHEDULED)
        .await
        .unwrap()
        .unwrap();
    let scope = InstallScope {
        tenant: "t1".into(),
        install_id: install.install_id.clone(),
        extension_id: SCHEDULED.into(),
        content_hash: Some(install.content_hash),
    };
    let schedule = backends
        .scheduler()
        .create(
            &scope,
            &ScheduleInput {
                endpoint: "POST /api/tick".into(),
                cron: "*/10 * * * *".into(),
                payload: Some(r#"{"report":"daily"}"#.into()),
                ..ScheduleInput::default()
            },
        )
        .await
        .unwrap();
    let mirrored = clients
        .scheduler
        .get_schedule()
        .name(schedule_name("t1", &install.install_id, &schedule.id))
        .group_name(&group)
        .send()
        .await
        .unwrap();
    let input: Value = serde_json::from_str(mirrored.target().unwrap().input().unwrap()).unwrap();

    let answer = function.handle(input.clone()).await.unwrap();
    assert_eq!(answer["status"], "fired", "{answer}");
    assert_eq!(answer["http_status"], 200, "{answer}");
    // The guest stored the body it got under its request id: the payload, at /api/tick.
    let request_id = answer["request_id"].as_str().unwrap();
    let kv = KvScope {
        tenant: "t1".into(),
        install_id: install.install_id.clone(),
    };
    let seen = backends
        .kv
        .get(&kv, "sched", request_id)
        .await
        .unwrap()
        .expect("the endpoint ran and stored its body");
    assert_eq!(seen.value, br#"{"report":"daily"}"#);
    let recent = backends
        .executions
        .recent("t1", SCHEDULED, 10)
        .await
        .unwrap();
    assert!(recent.iter().any(|r| r.request_id == request_id));

    // Another tenant's name on the same ids finds nothing: nothing runs.
    let mut foreign = input.clone();
    foreign["tenant"] = json!("t2");
    let answer = function.handle(foreign).await.unwrap();
    assert_eq!(
        (answer["status"].as_str(), answer["code"].as_str()),
        (Some("dropped"), Some("not_found"))
    );
    let junk = json!({"schedule_id": "x", "tenant": "t1"});
    let answer = function.handle(junk).await.unwrap();
    assert_eq!(answer["code"], "malformed", "{answer}");

    // Disabled, then deleted: dropped, and the endpoint did not run again.
    backends
        .scheduler()
        .update(
            &scope,
            &schedule.id,
            &runtime_core::schedule::SchedulePatch {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        function.handle(input.clone()).await.unwrap()["code"],
        "disabled"
    );
    backends
        .scheduler()
        .delete(&scope, &schedule.id)
        .await
        .unwrap();
    assert_eq!(function.handle(input).await.unwrap()["code"], "not_found");
    let after = backends
        .executions
        .recent("t1", SCHEDULED, 10)
        .await
        .unwrap();
    assert_eq!(after.len(), recent.len());
}
