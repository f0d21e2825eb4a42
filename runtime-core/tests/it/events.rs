//! Event delivery on the local backends (SQLite + files): fan-out within the
//! event's tenant, effectively-once per (event, subscription), retries then a
//! dead letter with the reason, disabled installs skipped, and guests emitting
//! events with the tenant forced to their own.

use std::sync::Arc;
use std::time::Duration;

use runtime_core::backends::Backends;
use runtime_core::events::{Event, EventPublisher, FileDeadLetters, LocalBus, new_event};
use runtime_core::gateway::{DeliveryStatus, Dispatcher, InternalCall, Report, RetryPolicy, Route};
use serde_json::json;
use test_support::event_fleet::{
    BROKEN, EMITTER, LISTENER_A, LISTENER_B, LOOPER, OTHER_TENANT, SPOOFER, fleet, run_emit,
    run_emitter,
};

const FAST: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    first_backoff: Duration::from_millis(5),
};

/// A local data directory, its backends, and an in-process bus guests emit on.
fn local_bus() -> (
    tempfile::TempDir,
    Backends,
    Arc<dyn EventPublisher>,
    tokio::sync::mpsc::Receiver<Event>,
) {
    let data = tempfile::tempdir().unwrap();
    let backends = stores_local::backends(data.path()).unwrap();
    let bus = Arc::new(LocalBus::default());
    let rx = bus.take_receiver().unwrap();
    (data, backends, bus, rx)
}

fn ticket(tenant: &str, id: &str) -> Event {
    let mut e = new_event(
        tenant,
        "ticket.created",
        "alga.psa",
        json!({"tenant_id": tenant, "ticket": 7}),
    );
    e.id = id.into();
    e
}

fn statuses(report: &Report) -> Vec<(String, DeliveryStatus)> {
    report
        .deliveries
        .iter()
        .map(|d| {
            (
                format!("{} {}", d.subscription.extension_id, d.subscription.handler),
                match &d.status {
                    // Reasons are checked separately; compare the kind here.
                    DeliveryStatus::DeadLettered(_) => DeliveryStatus::DeadLettered(String::new()),
                    s => s.clone(),
                },
            )
        })
        .collect()
}

async fn runs(backends: &Backends, tenant: &str, ext: &str) -> usize {
    backends
        .executions
        .recent(tenant, ext, 100)
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_exactly_their_tenants_subscribers_once_and_failures_are_dead_lettered() {
    let data = tempfile::tempdir().unwrap();
    let backends = stores_local::backends(data.path()).unwrap();
    let gateway = fleet(&backends, None).await;
    let letters = Arc::new(FileDeadLetters::new(data.path().join("dead-letters.jsonl")));
    let dispatcher = Dispatcher::new(gateway.clone(), letters.clone(), FAST);

    let e1 = ticket("t1", "evt-1");
    let report = dispatcher.deliver(&e1).await.unwrap();
    assert_eq!(
        statuses(&report),
        [
            (
                format!("{BROKEN} /events/ticket"),
                DeliveryStatus::DeadLettered(String::new())
            ),
            (
                format!("{LISTENER_A} /events/ticket"),
                DeliveryStatus::Delivered(200)
            ),
            (
                format!("{LISTENER_B} /on/ticket"),
                DeliveryStatus::Delivered(200)
            ),
        ]
    );
    // The broken handler ran three times, then its dead letter kept the reason.
    assert_eq!(runs(&backends, "t1", BROKEN).await, 3);
    let dead = letters.read_all().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event, e1);
    assert_eq!(
        (dead[0].extension_id.as_str(), dead[0].attempts),
        (BROKEN, 3)
    );
    assert!(dead[0].reason.contains("trap"), "{}", dead[0].reason);

    // Never another tenant's installs: t2's listener did not run.
    assert_eq!(runs(&backends, "t1", LISTENER_A).await, 1);
    assert_eq!(runs(&backends, "t2", LISTENER_A).await, 0);

    // The same event again: each successful handler is not run a second time.
    let again = dispatcher.deliver(&e1).await.unwrap();
    assert_eq!(
        statuses(&again)[1..],
        [
            (
                format!("{LISTENER_A} /events/ticket"),
                DeliveryStatus::Duplicate
            ),
            (
                format!("{LISTENER_B} /on/ticket"),
                DeliveryStatus::Duplicate
            ),
        ]
    );
    assert_eq!(runs(&backends, "t1", LISTENER_A).await, 1);
    assert_eq!(runs(&backends, "t1", LISTENER_B).await, 1);

    // t2's event reaches only t2's subscriber.
    let report = dispatcher.deliver(&ticket("t2", "evt-1")).await.unwrap();
    assert_eq!(
        statuses(&report),
        [(
            format!("{LISTENER_A} /events/ticket"),
            DeliveryStatus::Delivered(200)
        )]
    );
    assert_eq!(runs(&backends, "t2", LISTENER_A).await, 1);

    // Another topic, and a topic nobody subscribes to.
    let mut paid = ticket("t1", "evt-2");
    paid.topic = "invoice.paid".into();
    let report = dispatcher.deliver(&paid).await.unwrap();
    assert_eq!(
        statuses(&report),
        [(
            format!("{LISTENER_B} /on/paid"),
            DeliveryStatus::Delivered(200)
        )]
    );
    let mut nobody = ticket("t1", "evt-3");
    nobody.topic = "nobody.cares".into();
    assert!(
        dispatcher
            .deliver(&nobody)
            .await
            .unwrap()
            .deliveries
            .is_empty()
    );

    // A disabled install receives nothing.
    backends
        .registry
        .set_enabled("t1", LISTENER_B, false)
        .await
        .unwrap();
    let report = dispatcher.deliver(&ticket("t1", "evt-4")).await.unwrap();
    assert!(
        report
            .deliveries
            .iter()
            .all(|d| d.subscription.extension_id != LISTENER_B),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_delivery_is_retried_by_the_queue_then_dead_lettered_on_the_last_attempt() {
    let data = tempfile::tempdir().unwrap();
    let backends = stores_local::backends(data.path()).unwrap();
    let gateway = fleet(&backends, None).await;
    let letters = Arc::new(FileDeadLetters::new(data.path().join("dl.jsonl")));
    let dispatcher = Dispatcher::new(gateway, letters.clone(), FAST);
    let e = ticket("t1", "evt-q");
    for attempt in 1..=2 {
        let report = dispatcher.deliver_attempt(&e, attempt).await.unwrap();
        assert!(
            !report.settled(),
            "attempt {attempt}: the broken handler is retryable"
        );
        assert!(letters.read_all().unwrap().is_empty());
    }
    let report = dispatcher.deliver_attempt(&e, 3).await.unwrap();
    assert!(report.settled());
    assert_eq!(letters.read_all().unwrap().len(), 1);
    // The listeners ran on the first attempt only.
    assert_eq!(runs(&backends, "t1", LISTENER_A).await, 1);
    assert_eq!(runs(&backends, "t1", BROKEN).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_gets_the_event_as_a_json_post() {
    let data = tempfile::tempdir().unwrap();
    let backends = stores_local::backends(data.path()).unwrap();
    let gateway = fleet(&backends, None).await;
    let install = backends
        .registry
        .get_install("t1", LISTENER_A)
        .await
        .unwrap()
        .unwrap();
    let e = ticket("t1", "evt-body");
    let body = e.handler_body();
    let out = gateway
        .run_internal(InternalCall {
            install: &install,
            method: "POST",
            path: "/events/ticket",
            body: Some(&body),
            headers: &[],
            route: Route::Event,
            event_hops: 0,
        })
        .await;
    let env = &out.envelope;
    assert_eq!(env.status, 200, "{env:?}");
    let headers = env.headers.clone().unwrap();
    assert_eq!(headers["x-echo-method"], "POST");
    assert_eq!(headers["x-echo-url"], "/events/ticket");
    assert_eq!(headers["content-type"], "application/json");
    let got: Event = serde_json::from_slice(&env.body().unwrap()).unwrap();
    assert_eq!(got, e);
    // No user on an event delivery, and a fresh request id.
    assert!(out.metrics.request_id.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_emit_for_their_own_tenant_only_when_granted_and_bounded() {
    let (data, backends, publisher, mut rx) = local_bus();
    let gateway = fleet(&backends, Some((publisher.clone(), 1))).await;
    let out = run_emitter(&gateway, "t1").await;
    assert_eq!(out.envelope.status, 200, "{:?}", out.envelope);
    let id = String::from_utf8(out.envelope.body().unwrap()).unwrap();
    let event = rx.recv().await.unwrap();
    assert_eq!(event.id, id);
    assert_eq!(
        (event.tenant.as_str(), event.topic.as_str()),
        ("t1", "widget.made")
    );
    assert_eq!(event.source, format!("alga.extension/{EMITTER}"));
    assert_eq!(
        event.data,
        json!({"n": 1, "tenant_id": "t1"}),
        "tenant forced"
    );

    // t2's install lacks cap:events.emit: `denied` (index 0 → 400), nothing sent.
    assert_eq!(run_emitter(&gateway, "t2").await.envelope.status, 400);
    assert!(rx.try_recv().is_err());

    // The bound (1 here) is per invocation: another invocation may emit again.
    assert_eq!(run_emitter(&gateway, "t1").await.envelope.status, 200);
    assert!(rx.try_recv().is_ok());

    // Without a publisher, `emit` answers `unavailable` (404).
    let gateway = fleet(
        &stores_local::backends(&data.path().join("other")).unwrap(),
        None,
    )
    .await;
    let out = run_emitter(&gateway, "t1").await;
    assert_eq!(out.envelope.status, 404);

    // And with a bound of zero: `too-many` (403).
    let data2 = tempfile::tempdir().unwrap();
    let b2 = stores_local::backends(data2.path()).unwrap();
    let gateway = fleet(&b2, Some((publisher, 0))).await;
    let out = run_emitter(&gateway, "t1").await;
    assert_eq!(out.envelope.status, 403);
}

/// What EventBridge does with an emitted event on its way to the events
/// function: `PutEvents` (source, detail-type = the topic, detail = the data) is
/// kept as the entry the function will receive.
#[derive(Default)]
struct ThroughEventBridge {
    entries: std::sync::Mutex<Vec<serde_json::Value>>,
}

#[async_trait::async_trait]
impl EventPublisher for ThroughEventBridge {
    async fn publish(&self, event: &Event) -> Result<String, runtime_core::store::StoreError> {
        self.entries.lock().unwrap().push(json!({
            "version": "0", "id": event.id, "detail-type": event.topic,
            "source": event.source, "time": event.time, "detail": event.data,
        }));
        Ok(event.id.clone())
    }
}

impl ThroughEventBridge {
    /// The entries as the events function reads them with `fields`, delivered.
    async fn deliver_all(
        &self,
        dispatcher: &Dispatcher,
        fields: &runtime_core::events::EventFields,
    ) -> Vec<Event> {
        let entries: Vec<_> = self.entries.lock().unwrap().drain(..).collect();
        let mut delivered = Vec::new();
        for entry in entries {
            if let Ok(event) = Event::from_eventbridge(&entry, fields) {
                dispatcher.deliver(&event).await.unwrap();
                delivered.push(event);
            }
        }
        delivered
    }
}

/// With `ALGA_EVENTS_TENANT_FIELD=org`, a guest putting
/// `{"org": "other-tenant"}` in its payload must not reach other-tenant's
/// subscribers: the events side reads the tenant of an extension's event only
/// from the host-written field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sec_04_a_guest_cannot_name_another_tenant_in_the_configured_tenant_field() {
    let data = tempfile::tempdir().unwrap();
    let backends = stores_local::backends(data.path()).unwrap();
    let bridge = Arc::new(ThroughEventBridge::default());
    let publisher: Arc<dyn EventPublisher> = bridge.clone();
    let gateway = fleet(&backends, Some((publisher, 10))).await;
    let letters = Arc::new(FileDeadLetters::new(data.path().join("dl.jsonl")));
    let dispatcher = Dispatcher::new(gateway.clone(), letters, FAST);
    let fields = runtime_core::events::EventFields {
        tenant_field: "org".into(),
        topic_field: None,
    };

    let out = run_emit(&gateway, "t1", LOOPER).await;
    assert_eq!(out.envelope.status, 200, "{:?}", out.envelope);
    let delivered = bridge.deliver_all(&dispatcher, &fields).await;
    for e in &delivered {
        assert_eq!(e.tenant, "t1", "{e:?}");
    }
    assert_eq!(
        runs(&backends, OTHER_TENANT, LOOPER).await,
        0,
        "t1's guest reached another tenant's install"
    );

    // A runner configured like the events function writes its own tenant into
    // `org` too: the event is t1's, delivered to t1's install only.
    let data = tempfile::tempdir().unwrap();
    let backends = stores_local::backends(data.path()).unwrap();
    let bridge = Arc::new(ThroughEventBridge::default());
    let publisher: Arc<dyn EventPublisher> = bridge.clone();
    let settings = runtime_core::host::events::EmitSettings {
        tenant_field: "org".into(),
        ..10.into()
    };
    let gateway =
        test_support::event_fleet::fleet_with(&backends, Some((publisher, settings))).await;
    let letters = Arc::new(FileDeadLetters::new(data.path().join("dl.jsonl")));
    let dispatcher = Dispatcher::new(gateway.clone(), letters, FAST);
    assert_eq!(run_emit(&gateway, "t1", LOOPER).await.envelope.status, 200);
    let delivered = bridge.deliver_all(&dispatcher, &fields).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!((delivered[0].tenant.as_str(), delivered[0].hops), ("t1", 1));
    assert_eq!(delivered[0].data["org"], "t1");
    assert_eq!(
        runs(&backends, "t1", LOOPER).await,
        2,
        "emitted, then delivered"
    );
    assert_eq!(runs(&backends, OTHER_TENANT, LOOPER).await, 0);
}

/// An extension that emits a topic it subscribes to stops after
/// the hop bound: each emitted event carries its depth, and the emit past the
/// bound is refused (`too-many`), its delivery dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sec_06_an_emit_loop_stops_at_the_hop_bound() {
    let (data, backends, publisher, mut rx) = local_bus();
    let gateway = fleet(&backends, Some((publisher, 10))).await;
    let letters = Arc::new(FileDeadLetters::new(data.path().join("dl.jsonl")));
    let dispatcher = Dispatcher::new(gateway.clone(), letters.clone(), FAST);

    assert_eq!(run_emit(&gateway, "t1", LOOPER).await.envelope.status, 200);
    let mut events = 0;
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
        events += 1;
        assert!(events <= 50, "the loop never stopped");
        dispatcher.deliver(&event).await.unwrap();
    }
    // The first emit is hop 1; the loop runs to the bound and no further.
    assert_eq!(events, 8, "events emitted by the loop");
    assert_eq!(runs(&backends, "t1", LOOPER).await, 1 + 8);
    let dead = letters.read_all().unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        (dead[0].extension_id.as_str(), dead[0].attempts),
        (LOOPER, 1)
    );
}

/// A delivery refused by the install's quota goes to the dead
/// letters at once: retrying within the same window only burns more quota.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sec_06_a_quota_refusal_is_dead_lettered_without_retries() {
    let data = tempfile::tempdir().unwrap();
    let backends = stores_local::backends(data.path()).unwrap();
    let gateway = fleet(&backends, None).await;
    let mut config = std::collections::BTreeMap::new();
    // A day's window: the test cannot straddle its boundary the way it could a minute's.
    config.insert("quota.per_day".to_string(), "1".to_string());
    backends
        .registry
        .install(&runtime_core::store::InstallRequest {
            tenant: "t3".into(),
            extension_id: LISTENER_A.into(),
            version: None,
            grants: vec![],
            config,
            ..Default::default()
        })
        .await
        .unwrap();
    let letters = Arc::new(FileDeadLetters::new(data.path().join("dl.jsonl")));
    let dispatcher = Dispatcher::new(gateway.clone(), letters.clone(), FAST);
    let report = dispatcher.deliver(&ticket("t3", "q-1")).await.unwrap();
    assert_eq!(
        statuses(&report),
        [(
            format!("{LISTENER_A} /events/ticket"),
            DeliveryStatus::Delivered(200)
        )]
    );
    // The day's one invocation is used: the next event is refused by quota.
    let report = dispatcher.deliver(&ticket("t3", "q-2")).await.unwrap();
    assert!(
        matches!(&report.deliveries[0].status, DeliveryStatus::DeadLettered(r) if r.contains("quota_exceeded")),
        "{report:?}"
    );
    let dead = letters.read_all().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 1, "quota refusals are not retried");
    // A queued delivery (SQS) is settled on its first attempt too.
    let report = dispatcher
        .deliver_attempt(&ticket("t3", "q-3"), 1)
        .await
        .unwrap();
    assert!(report.settled(), "{report:?}");
    assert_eq!(letters.read_all().unwrap().len(), 2);
}

/// Host-app topics are the host's: an extension's emit of
/// `ticket.created` is refused (`denied`), and an event of that topic from an
/// extension's source never reaches the host topic's subscribers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sec_07_extensions_cannot_emit_host_topics() {
    let (data, backends, publisher, mut rx) = local_bus();
    let gateway = fleet(&backends, Some((publisher, 10))).await;
    let out = run_emit(&gateway, "t1", SPOOFER).await;
    assert_eq!(out.envelope.status, 400, "denied: {:?}", out.envelope);
    assert!(rx.try_recv().is_err(), "nothing was published");

    // The same event arriving from the bus with an extension's source.
    let letters = Arc::new(FileDeadLetters::new(data.path().join("dl.jsonl")));
    let dispatcher = Dispatcher::new(gateway.clone(), letters, FAST);
    let mut spoofed = ticket("t1", "spoof-1");
    spoofed.source = format!("alga.extension/{SPOOFER}");
    let report = dispatcher.deliver(&spoofed).await;
    assert!(
        report.as_ref().map_or(true, |r| r.deliveries.is_empty()),
        "{report:?}"
    );
    assert_eq!(runs(&backends, "t1", LISTENER_A).await, 0);
    assert_eq!(runs(&backends, "t1", LISTENER_B).await, 0);
    // The host's own event of that topic is still delivered.
    let report = dispatcher.deliver(&ticket("t1", "real-1")).await.unwrap();
    assert!(!report.deliveries.is_empty());
    assert_eq!(runs(&backends, "t1", LISTENER_A).await, 1);
}

/// Emits are rate-limited per tenant (a quota-store counter per
/// minute, shared by every process): past it, `too-many`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sec_06_emits_are_rate_limited_per_tenant() {
    let (_data, backends, publisher, mut rx) = local_bus();
    let settings = runtime_core::host::events::EmitSettings {
        per_tenant_per_minute: 2,
        ..10.into()
    };
    let gateway =
        test_support::event_fleet::fleet_with(&backends, Some((publisher, settings))).await;
    // Two extensions of one tenant share its budget.
    assert_eq!(run_emitter(&gateway, "t1").await.envelope.status, 200);
    assert_eq!(run_emit(&gateway, "t1", LOOPER).await.envelope.status, 200);
    let out = run_emitter(&gateway, "t1").await;
    assert_eq!(out.envelope.status, 403, "too-many: {:?}", out.envelope);
    assert!(
        out.logs.iter().any(|l| l.message.contains("rate_limited")),
        "{:?}",
        out.logs
    );
    assert!(rx.try_recv().is_ok() && rx.try_recv().is_ok());
    assert!(rx.try_recv().is_err(), "the third emit was not published");
}
