//! Every gated host function, with and without its capability, answers exactly the
//! values of ALGA-COMPAT §1 — called directly, and through real guests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use runtime_core::capability::{Capability, CapabilitySet};
use runtime_core::host::bindings::alga::extension as ext;
use runtime_core::host::bindings::alga::extension::types::*;
use runtime_core::host::{HostServices, HostSetup, HostState, Invocation, RequestLimits, UserInfo};
use runtime_core::store::SecretBundle;
use serde_json::json;
use stores_local::{MemoryKvStore, MemorySecretStore};
use test_support::{Harness, guests, request};

fn state(
    caps: &[Capability],
    user: bool,
    install: bool,
    secrets: Option<SecretBundle>,
) -> HostState {
    let invocation = Invocation {
        request_id: Some("r1".into()),
        tenant_id: "t1".into(),
        extension_id: "e1".into(),
        install_id: install.then(|| "i1".into()),
        version_id: None,
        user: user.then(|| UserInfo {
            user_id: "u1".into(),
            user_email: "u@example.com".into(),
            user_name: "U".into(),
            user_type: "internal".into(),
            client_name: "Acme".into(),
            client_id: Some("c1".into()),
            additional_fields: BTreeMap::from([("z".into(), "1".into()), ("a".into(), "2".into())]),
        }),
        config: BTreeMap::new(),
        ..Invocation::default()
    };
    HostState::new(HostSetup {
        inline_secrets: secrets,
        ..HostSetup::new(
            Arc::new(invocation),
            CapabilitySet::with(caps.iter().copied()),
            &HostServices {
                kv: Arc::new(MemoryKvStore::default()),
                secrets: Arc::new(MemorySecretStore::default()),
            },
            RequestLimits {
                memory_bytes: 1 << 20,
                host_calls: 1000,
                log_bytes: 1000,
            },
        )
    })
}

fn bundle(expired: bool) -> Option<SecretBundle> {
    Some(SecretBundle {
        values: BTreeMap::from([("k".into(), "v".into())]),
        expires_at: Some(if expired {
            SystemTime::now() - Duration::from_secs(1)
        } else {
            SystemTime::now() + Duration::from_secs(3600)
        }),
    })
}

#[tokio::test]
async fn secrets() {
    use ext::secrets::Host;
    let mut s = state(&[], false, true, bundle(false));
    assert_eq!(
        Host::get(&mut s, "k".into()).await.unwrap(),
        Err(SecretError::Denied)
    );
    assert_eq!(Host::list_keys(&mut s).await.unwrap(), Vec::<String>::new());
    let mut s = state(&[Capability::SecretsGet], false, true, bundle(false));
    assert_eq!(Host::get(&mut s, "k".into()).await.unwrap(), Ok("v".into()));
    assert_eq!(
        Host::get(&mut s, "nope".into()).await.unwrap(),
        Err(SecretError::Missing)
    );
    assert_eq!(
        Host::list_keys(&mut s).await.unwrap(),
        vec!["k".to_string()]
    );
    let mut s = state(&[Capability::SecretsGet], false, true, bundle(true));
    assert_eq!(
        Host::get(&mut s, "k".into()).await.unwrap(),
        Err(SecretError::Expired)
    );
    let mut s = state(&[Capability::SecretsGet], false, true, None);
    assert_eq!(
        Host::get(&mut s, "k".into()).await.unwrap(),
        Err(SecretError::Missing)
    );
}

#[tokio::test]
async fn storage() {
    use ext::storage::Host;
    let entry = |rev| StorageEntry {
        namespace: "ns".into(),
        key: "k".into(),
        value: b"v".to_vec(),
        revision: rev,
    };
    let mut s = state(&[], false, true, None);
    assert_eq!(
        Host::get(&mut s, "ns".into(), "k".into()).await.unwrap(),
        Err(StorageError::Denied)
    );
    assert_eq!(
        Host::put(&mut s, entry(None)).await.unwrap(),
        Err(StorageError::Denied)
    );
    assert_eq!(
        Host::delete(&mut s, "ns".into(), "k".into()).await.unwrap(),
        Err(StorageError::Denied)
    );
    assert_eq!(
        Host::list_entries(&mut s, "ns".into(), None).await.unwrap(),
        Err(StorageError::Denied)
    );
    // Granted but no install id: denied too.
    let mut s = state(&[Capability::StorageKv], false, false, None);
    assert_eq!(
        Host::put(&mut s, entry(None)).await.unwrap(),
        Err(StorageError::Denied)
    );

    let mut s = state(&[Capability::StorageKv], false, true, None);
    assert_eq!(
        Host::get(&mut s, "ns".into(), "k".into()).await.unwrap(),
        Err(StorageError::Missing)
    );
    let put = Host::put(&mut s, entry(None)).await.unwrap().unwrap();
    assert_eq!(put.revision, Some(1));
    assert_eq!(
        Host::put(&mut s, entry(Some(1)))
            .await
            .unwrap()
            .unwrap()
            .revision,
        Some(2)
    );
    assert_eq!(
        Host::put(&mut s, entry(Some(1))).await.unwrap(),
        Err(StorageError::Conflict)
    );
    assert_eq!(
        Host::get(&mut s, "ns".into(), "k".into())
            .await
            .unwrap()
            .unwrap()
            .revision,
        Some(2)
    );
    let listed = Host::list_entries(&mut s, "ns".into(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed.len(), 1);
    let after = Host::list_entries(&mut s, "ns".into(), Some("k".into()))
        .await
        .unwrap()
        .unwrap();
    assert!(after.is_empty());
    Host::delete(&mut s, "ns".into(), "k".into())
        .await
        .unwrap()
        .unwrap();
    Host::delete(&mut s, "ns".into(), "k".into())
        .await
        .unwrap()
        .unwrap();
    // A limit broken: denied, with the reason in the log.
    let big = StorageEntry {
        value: vec![0; 70_000],
        ..entry(None)
    };
    assert_eq!(
        Host::put(&mut s, big).await.unwrap(),
        Err(StorageError::Denied)
    );
    assert!(s.logs().lines().iter().any(|l| l.message.contains("65536")));
}

#[tokio::test]
async fn user_and_user_v2() {
    let mut s = state(&[], false, true, None);
    assert_eq!(
        ext::user::Host::get_user(&mut s).await.unwrap(),
        Err(UserError::NotAvailable)
    );
    assert_eq!(
        ext::user_v2::Host::get_user(&mut s).await.unwrap(),
        Err(UserError::NotAvailable)
    );
    let mut s = state(&[], true, true, None);
    let u = ext::user::Host::get_user(&mut s).await.unwrap().unwrap();
    assert_eq!(
        (
            u.tenant_id.as_str(),
            u.client_name.as_str(),
            u.user_id.as_str()
        ),
        ("t1", "Acme", "u1")
    );
    let v2 = ext::user_v2::Host::get_user(&mut s).await.unwrap().unwrap();
    assert_eq!(v2.client_id.as_deref(), Some("c1"));
    assert_eq!(
        v2.additional_fields,
        vec![
            ("a".to_string(), "2".to_string()),
            ("z".to_string(), "1".to_string())
        ],
        "sorted by key"
    );
}

#[tokio::test]
async fn context_and_logging_are_always_granted() {
    let mut s = state(&[], false, true, None);
    let c = ext::context::Host::get_context(&mut s).await.unwrap();
    assert_eq!(
        (c.tenant_id.as_str(), c.extension_id.as_str()),
        ("t1", "e1")
    );
    assert_eq!(c.install_id.as_deref(), Some("i1"));
    ext::logging::Host::log_warn(&mut s, "careful".into())
        .await
        .unwrap();
    assert!(s.logs().lines().iter().any(|l| l.message == "careful"));
}

#[tokio::test]
async fn http_fetch_is_denied_without_and_not_allowed_with_an_empty_allowlist() {
    use ext::http::Host;
    let req = |url: &str| HttpRequest {
        method: "GET".into(),
        url: url.into(),
        headers: vec![],
        body: None,
    };
    for caps in [&[][..], &[Capability::HttpFetch][..]] {
        let mut s = state(caps, false, true, None);
        assert_eq!(
            Host::fetch(&mut s, req("https://example.com/"))
                .await
                .unwrap(),
            Err(HttpError::NotAllowed)
        );
        assert_eq!(
            Host::fetch(&mut s, req("http://169.254.169.254/"))
                .await
                .unwrap(),
            Err(HttpError::NotAllowed)
        );
    }
    let mut s = state(&[Capability::HttpFetch], false, true, None);
    assert_eq!(
        Host::fetch(&mut s, req("not a url")).await.unwrap(),
        Err(HttpError::InvalidUrl)
    );
}

#[tokio::test]
async fn ui_proxy_scheduler_invoicing_clients_services_answer_their_denials() {
    let mut s = state(&[], false, true, None);
    assert_eq!(
        ext::ui_proxy::Host::call_route(&mut s, "/api/x".into(), None)
            .await
            .unwrap(),
        Err(ProxyError::Denied)
    );
    assert_eq!(
        ext::scheduler::Host::list_schedules(&mut s).await.unwrap(),
        Err(SchedulerError::Denied)
    );
    assert_eq!(
        ext::scheduler::Host::get_schedule(&mut s, "x".into())
            .await
            .unwrap(),
        Err(SchedulerError::Denied)
    );
    assert_eq!(
        ext::scheduler::Host::get_endpoints(&mut s).await.unwrap(),
        Err(SchedulerError::Denied)
    );
    let denied = Some("Permission denied: cap:scheduler.manage not granted".to_string());
    let created = ext::scheduler::Host::create_schedule(
        &mut s,
        CreateScheduleInput {
            endpoint: "/api/x".into(),
            cron: "*/5 * * * *".into(),
            timezone: None,
            enabled: None,
            name: None,
            payload: None,
        },
    )
    .await
    .unwrap();
    assert!(!created.success);
    assert_eq!(created.error, denied);
    let updated = ext::scheduler::Host::update_schedule(
        &mut s,
        "x".into(),
        UpdateScheduleInput {
            endpoint: None,
            cron: None,
            timezone: None,
            enabled: None,
            name: None,
            payload: None,
        },
    )
    .await
    .unwrap();
    assert_eq!((updated.success, updated.error), (false, denied.clone()));
    let deleted = ext::scheduler::Host::delete_schedule(&mut s, "x".into())
        .await
        .unwrap();
    assert_eq!((deleted.success, deleted.error), (false, denied));
    let invoice = ext::invoicing::Host::create_manual_invoice(
        &mut s,
        CreateManualInvoiceInput {
            client_id: "c".into(),
            items: vec![],
            invoice_date: None,
            due_date: None,
            po_number: None,
        },
    )
    .await
    .unwrap();
    assert!(!invoice.success);
    assert_eq!(
        invoice.error.as_deref(),
        Some("Permission denied: cap:invoice.manual.create not granted")
    );
    let list_input = ClientsListInput {
        search: None,
        include_inactive: None,
        page: None,
        page_size: None,
    };
    assert_eq!(
        ext::clients::Host::list_clients(&mut s, list_input.clone())
            .await
            .unwrap()
            .unwrap_err(),
        ClientReadError::NotAllowed
    );
    assert_eq!(
        ext::clients::Host::get_client(&mut s, "c".into())
            .await
            .unwrap()
            .unwrap_err(),
        ClientReadError::NotAllowed
    );
    let services_input = ServicesListInput {
        search: None,
        item_kind: None,
        is_active: None,
        billing_method: None,
        page: Some(0),
        page_size: None,
    };
    assert_eq!(
        ext::services::Host::list_services(&mut s, services_input.clone())
            .await
            .unwrap()
            .unwrap_err(),
        ServiceReadError::NotAllowed
    );
    assert_eq!(
        ext::services::Host::get_service(&mut s, "x".into())
            .await
            .unwrap()
            .unwrap_err(),
        ServiceReadError::NotAllowed
    );

    // Granted, but this runner has no host API yet: a clear error, never a trap
    // (ui-proxy: `route-not-found`, as Alga's runner answers; the rest `internal`).
    let all = [
        Capability::UiProxy,
        Capability::SchedulerManage,
        Capability::InvoiceManualCreate,
        Capability::ClientRead,
        Capability::ServiceRead,
    ];
    let mut s = state(&all, false, true, None);
    assert_eq!(
        ext::ui_proxy::Host::call_route(&mut s, "/api/x".into(), None)
            .await
            .unwrap(),
        Err(ProxyError::RouteNotFound)
    );
    assert_eq!(
        ext::scheduler::Host::list_schedules(&mut s).await.unwrap(),
        Err(SchedulerError::Internal)
    );
    assert_eq!(
        ext::clients::Host::list_clients(&mut s, list_input)
            .await
            .unwrap()
            .unwrap_err(),
        ClientReadError::Internal
    );
    assert_eq!(
        ext::services::Host::list_services(&mut s, services_input)
            .await
            .unwrap()
            .unwrap_err(),
        ServiceReadError::InvalidInput,
        "page 0 is invalid input"
    );
}

// --- The same gates through real guests (WAT components calling the imports) ---

async fn status_of(
    h: &Harness,
    wasm: Vec<u8>,
    caps: &[&str],
    extra: serde_json::Value,
) -> (u16, Option<Vec<u8>>) {
    let (content, _) = h.publish(&wasm).await;
    let mut req = request(&content, "GET", "/", extra);
    req["providers"] = json!(caps);
    let out = h.run(req).await;
    assert!(out.envelope.error.is_none(), "{:?}", out.envelope);
    (out.envelope.status, out.envelope.body())
}

#[tokio::test]
async fn guests_see_the_gates() {
    let h = Harness::new();
    // secrets.get("k"): 200 + value / 400 + secret-error index (1 = denied).
    let secrets = guests::result_caller(
        "alga:extension/secrets",
        "get",
        "i32 i32",
        "(i32.const 1024) (i32.const 1)",
        4,
        true,
        r#"(data (i32.const 1024) "k")"#,
    );
    let env = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, r#"{"k":"v"}"#);
    let extra = json!({"secret_envelope": {"ciphertext_b64": env}});
    assert_eq!(
        status_of(&h, secrets.clone(), &[], extra.clone()).await.0,
        401
    );
    assert_eq!(
        status_of(&h, secrets, &["cap:secrets.get"], extra).await,
        (200, Some(b"v".to_vec()))
    );

    // storage.get("ns","k"): denied (2) without the capability, missing (0) with it.
    let storage = guests::result_caller(
        "alga:extension/storage",
        "get",
        "i32 i32 i32 i32",
        "(i32.const 1024) (i32.const 2) (i32.const 1040) (i32.const 1)",
        8,
        false,
        r#"(data (i32.const 1024) "ns") (data (i32.const 1040) "k")"#,
    );
    assert_eq!(status_of(&h, storage.clone(), &[], json!({})).await.0, 402);
    assert_eq!(
        status_of(&h, storage, &["cap:storage.kv"], json!({}))
            .await
            .0,
        400
    );

    // user.get-user: not-available (0) without a user, ok with one.
    let user = guests::result_caller("alga:extension/user", "get-user", "", "", 4, true, "");
    assert_eq!(status_of(&h, user.clone(), &[], json!({})).await.0, 400);
    let with_user = json!({"user": {"user_id": "u1", "user_email": "e", "user_name": "n", "user_type": "internal", "client_name": "Acme"}});
    assert_eq!(
        status_of(&h, user, &[], with_user).await,
        (200, Some(b"tenant-a".to_vec()))
    );

    // http.fetch: not-allowed (1) with or without the capability (empty allowlist).
    let fetch = guests::result_caller(
        "alga:extension/http",
        "fetch",
        "i32 i32 i32 i32 i32 i32 i32 i32 i32",
        "(i32.const 1024) (i32.const 3) (i32.const 1040) (i32.const 30) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)",
        4,
        false,
        r#"(data (i32.const 1024) "GET") (data (i32.const 1040) "http://169.254.169.254/latest")"#,
    );
    assert_eq!(status_of(&h, fetch.clone(), &[], json!({})).await.0, 401);
    assert_eq!(
        status_of(&h, fetch, &["cap:http.fetch"], json!({})).await.0,
        401
    );

    // ui-proxy.call-route: denied (1) without the capability.
    let proxy = guests::result_caller(
        "alga:extension/ui-proxy",
        "call-route",
        "i32 i32 i32 i32 i32",
        "(i32.const 1024) (i32.const 6) (i32.const 0) (i32.const 0) (i32.const 0)",
        4,
        false,
        r#"(data (i32.const 1024) "/api/x")"#,
    );
    assert_eq!(status_of(&h, proxy, &[], json!({})).await.0, 401);

    // scheduler.list-schedules: denied (3).
    let sched = guests::result_caller(
        "alga:extension/scheduler",
        "list-schedules",
        "",
        "",
        4,
        false,
        "",
    );
    assert_eq!(status_of(&h, sched, &[], json!({})).await.0, 403);

    // clients.list-clients / services.list-services: not-allowed (0).
    let clients = guests::result_caller(
        "alga:extension/clients",
        "list-clients",
        "i32 i32 i32 i32 i32 i32 i32 i32 i32",
        "(i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)",
        4,
        false,
        "",
    );
    assert_eq!(status_of(&h, clients, &[], json!({})).await.0, 400);
    let services = guests::result_caller(
        "alga:extension/services",
        "list-services",
        "i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32",
        "(i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)",
        4,
        false,
        "",
    );
    assert_eq!(status_of(&h, services, &[], json!({})).await.0, 400);

    // invoicing.create-manual-invoice: success false with the permission message.
    let invoice = guests::record_caller(
        "alga:extension/invoicing",
        "create-manual-invoice",
        "i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32",
        "(i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)",
        88,
    );
    assert_eq!(
        status_of(&h, invoice, &[], json!({})).await,
        (
            400,
            Some(b"Permission denied: cap:invoice.manual.create not granted".to_vec())
        )
    );

    // context.get-context: the tenant the request named.
    assert_eq!(
        status_of(&h, guests::context_reader(), &[], json!({})).await,
        (200, Some(b"tenant-a".to_vec()))
    );
}

// --- Per-request budgets of what the host keeps on a guest's behalf ---

/// Runs `wasm` with `url` as the request body, with the capabilities `caps`.
async fn run_with_body(
    h: &Harness,
    content: &runtime_core::artifact::ContentHash,
    caps: &[&str],
    body: &[u8],
) -> runtime_core::execute::Outcome {
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, body);
    let mut req = request(
        content,
        "POST",
        "/",
        json!({"http": {"body_b64": b64}, "limits": {"timeout_ms": 30000}}),
    );
    req["providers"] = json!(caps);
    h.run(req).await
}

#[tokio::test]
async fn sec_02_refused_fetch_notes_are_bounded() {
    // RSS is per process: measured alone, not beside the other tests.
    if !test_support::in_own_process("host_gates::sec_02_refused_fetch_notes_are_bounded") {
        return;
    }
    let h = Harness::new();
    let (hello, _) = h.publish(&guests::hello()).await;
    // A 1 MB URL whose host name is the 1 MB part, so the refusal's own message
    // (not allowlisted: <host>) carries it too.
    let url = format!("https://{}.example/", "a".repeat(1 << 20));
    let log_budget = h.config.limits.log_bytes_max;
    let check_notes = |out: &runtime_core::execute::Outcome| {
        let notes: Vec<_> = out.logs.iter().filter(|l| l.source == "host").collect();
        assert!(!notes.is_empty(), "the refusals are noted");
        let total: usize = notes.iter().map(|l| l.message.len()).sum();
        assert!(
            total <= log_budget + 1024,
            "{total} bytes of notes against a {log_budget} byte log budget"
        );
        for n in &notes {
            assert!(
                n.message.len() <= 1024,
                "a note of {} bytes",
                n.message.len()
            );
        }
        assert!(
            notes[0].message.contains('…'),
            "the guest's URL is truncated: {:.300}",
            notes[0].message
        );
    };

    // Without the capability, and with it (empty allowlist): 100 refusals first,
    // so unbounded notes fail here (~200 MB) before the big run below.
    let (small, _) = h.publish(&guests::fetch_loop(100)).await;
    for caps in [&[][..], &["cap:http.fetch"][..]] {
        let before = test_support::rss_bytes();
        let out = run_with_body(&h, &small, caps, url.as_bytes()).await;
        assert_eq!(out.envelope.status, 200, "{:?}", out.envelope);
        let growth = test_support::rss_bytes().saturating_sub(before);
        assert!(growth < 64 << 20, "RSS grew by {} MiB", growth >> 20);
        assert_eq!(out.metrics.host_calls, 100);
        check_notes(&out);
    }

    // 10,000 refused fetches of the 1 MB URL (10 GB of notes before the fix).
    let (big, _) = h.publish(&guests::fetch_loop(10_000)).await;
    let before = test_support::rss_bytes();
    let out = run_with_body(&h, &big, &[], url.as_bytes()).await;
    let growth = test_support::rss_bytes().saturating_sub(before);
    assert_eq!(out.envelope.status, 200, "{:?}", out.envelope);
    assert_eq!(out.metrics.host_calls, 10_000, "every refusal is charged");
    check_notes(&out);
    drop(out);
    assert!(
        growth < 64 << 20,
        "RSS grew by {} MiB over 10,000 refused fetches",
        growth >> 20
    );
    // One more refusal than the host-call budget allows: a typed limit.
    let (over, _) = h.publish(&guests::fetch_loop(10_001)).await;
    let out = run_with_body(&h, &over, &[], b"https://example.com/").await;
    assert_eq!(out.metrics.outcome, "host_call_limit", "{:?}", out.envelope);
    // The next request works.
    h.assert_next_request_works(&hello).await;
}

#[tokio::test]
async fn sec_02_host_notes_count_against_the_log_budget() {
    use ext::http::Host as _;
    use ext::logging::Host as _;
    // Budget 1000 bytes: refusals of a long URL fill it; each note is clipped.
    let mut s = state(&[], false, true, None);
    // `/x` makes byte 256 fall inside an `é`: the cut must find a char boundary.
    let long = format!("https://example.com/x{}", "é".repeat(5000));
    for _ in 0..50 {
        let r = s
            .fetch(HttpRequest {
                method: "GET".into(),
                url: long.clone(),
                headers: vec![],
                body: None,
            })
            .await
            .unwrap();
        assert_eq!(r, Err(HttpError::NotAllowed));
    }
    let lines = s.logs().lines();
    let total: usize = lines.iter().map(|l| l.message.len()).sum();
    assert!(
        total <= 1000 + 200,
        "{total} bytes in {} notes",
        lines.len()
    );
    assert!(lines.len() < 10, "{} notes kept", lines.len());
    assert!(lines[0].message.contains('…'), "{}", lines[0].message);
    assert!(s.logs().bytes() > 500, "the notes were charged");
    // The guest's own log now finds the budget spent by the notes.
    let err = s.log_info("x".repeat(600)).await.unwrap_err();
    assert!(err.to_string().contains("log limit"), "{err}");
}

#[tokio::test]
async fn sec_20_wasi_resources_are_capped() {
    // RSS is per process: measured alone, not beside the other tests.
    if !test_support::in_own_process("host_gates::sec_20_wasi_resources_are_capped") {
        return;
    }
    let h = Harness::new();
    let (hello, _) = h.publish(&guests::hello()).await;
    let before = test_support::rss_bytes();
    // 10,000 `wasi:http` fields kept alive, each asked to hold one header of
    // 32 KiB (320 MB of host memory before the fix) or of 8 KiB (80 MB, and
    // 10,000 handles: the table allowed 1,000,000).
    for (value, limit) in [
        (32 << 10, "wasi:http fields limit"),
        (8 << 10, "resource table"),
    ] {
        let (hoard, _) = h.publish(&guests::fields_hoarder(10_000, value)).await;
        let req = request(&hoard, "GET", "/", json!({"limits": {"timeout_ms": 30000}}));
        let out = h.run(req).await;
        assert_eq!(out.metrics.outcome, "memory_limit", "{:?}", out.envelope);
        assert_eq!(out.envelope.status, 500);
        let error = out.envelope.error.unwrap();
        assert!(error.contains(limit), "{error}");
    }
    let growth = test_support::rss_bytes().saturating_sub(before);
    assert!(growth < 64 << 20, "RSS grew by {} MiB", growth >> 20);
    // Fewer fields than the cap, each with a small header: fine.
    let (few, _) = h.publish(&guests::fields_hoarder(100, 1024)).await;
    let out = h.run(request(&few, "GET", "/", json!({}))).await;
    assert_eq!(out.envelope.status, 200, "{:?}", out.envelope);
    h.assert_next_request_works(&hello).await;
}
