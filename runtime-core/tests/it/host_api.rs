//! The host-API bridge (ui-proxy, clients, services, invoicing) against a local
//! test server answering 200 / 401 / 403 / 404 / 409 / 429 / 500: every function,
//! with and without its capability, gives the documented value.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use runtime_core::capability::{Capability, CapabilitySet};
use runtime_core::config::{EgressSettings, HostApiSettings};
use runtime_core::host::bindings::alga::extension as ext;
use runtime_core::host::bindings::alga::extension::types::*;
use runtime_core::host::host_api::HostApi;
use runtime_core::host::http::Egress;
use runtime_core::host::{
    HostServices, HostSetup, HostState, Invocation, Network, RequestLimits, UserInfo,
};
use runtime_core::store::SecretBundle;
use serde_json::{Value, json};
use stores_local::{MemoryKvStore, MemorySecretStore};
use test_support::http_server::{Reply, Seen, TestServer};

const STATUSES: [u16; 7] = [200, 401, 403, 404, 409, 429, 500];

fn answer(status: u16, seen: &Seen) -> Reply {
    if status != 200 {
        return Reply::new(
            status,
            json!({"error": format!("refused with {status}"), "fieldErrors": {"clientId": "bad"}})
                .to_string(),
        );
    }
    let body: Value = serde_json::from_slice(&seen.body).unwrap_or(Value::Null);
    let client = json!({"clientId": "c1", "clientName": "Acme", "isInactive": false, "billingEmail": "b@acme.test"});
    let service = json!({"serviceId": "s1", "serviceName": "Support", "itemKind": "service",
        "billingMethod": "hourly", "defaultRate": 120.5, "unitOfMeasure": "hour", "isActive": true});
    let reply = match (seen.path.as_str(), body["operation"].as_str()) {
        (p, Some("list")) if p.contains("ext-clients") => {
            json!({"items": [client], "totalCount": 1, "page": 1, "pageSize": 20})
        }
        (p, Some("get")) if p.contains("ext-clients") => json!({"item": client}),
        (p, Some("list")) if p.contains("ext-services") => {
            json!({"items": [service], "totalCount": 1, "page": 1, "pageSize": 20})
        }
        (p, Some("get")) if p.contains("ext-services") => json!({"item": null}),
        (p, Some("createManualInvoice")) if p.contains("ext-invoicing") => json!({
            "success": true,
            "invoice": {"invoiceId": "inv1", "invoiceNumber": "INV-1", "status": "draft",
                        "subtotal": 100, "tax": 10, "total": 110}
        }),
        _ => return Reply::new(200, format!("proxied {} {}", seen.method, seen.path)),
    };
    Reply::new(200, reply.to_string()).header("content-type", "application/json")
}

fn network(server: Option<&TestServer>) -> Network {
    Network {
        egress: Arc::new(Egress::new(EgressSettings::default())),
        host_api: server.and_then(|s| {
            HostApi::new(HostApiSettings {
                base: Some(s.base()),
                token: Some("runner-token".into()),
                timeout: Duration::from_secs(5),
                ..HostApiSettings::default()
            })
            .map(Arc::new)
        }),
    }
}

fn state(caps: &[Capability], net: &Network, install: bool) -> HostState {
    state_of("com.example.ext", caps, net, install)
}

fn state_of(extension: &str, caps: &[Capability], net: &Network, install: bool) -> HostState {
    HostState::new(HostSetup {
        network: Some(net),
        ..HostSetup::new(
            Arc::new(Invocation {
                request_id: Some("r1".into()),
                tenant_id: "t1".into(),
                extension_id: extension.into(),
                install_id: install.then(|| "install-1".into()),
                version_id: None,
                user: Some(UserInfo {
                    user_id: "u1".into(),
                    user_type: "internal".into(),
                    ..UserInfo::default()
                }),
                config: BTreeMap::new(),
                ..Invocation::default()
            }),
            CapabilitySet::with(caps.iter().copied()),
            &HostServices {
                kv: Arc::new(MemoryKvStore::default()),
                secrets: Arc::new(MemorySecretStore::default()),
            },
            RequestLimits {
                memory_bytes: 1 << 20,
                host_calls: 1000,
                log_bytes: 100_000,
            },
        )
    })
}

/// A network whose only way out is the given host API (egress denies all).
fn network_with(api: HostApi) -> Network {
    Network {
        egress: Arc::new(Egress::new(EgressSettings::default())),
        host_api: Some(Arc::new(api)),
    }
}

fn all_caps() -> Vec<Capability> {
    vec![
        Capability::UiProxy,
        Capability::ClientRead,
        Capability::ServiceRead,
        Capability::InvoiceManualCreate,
    ]
}

fn list_clients_input() -> ClientsListInput {
    ClientsListInput {
        search: Some("ac".into()),
        include_inactive: None,
        page: Some(1),
        page_size: Some(20),
    }
}

fn list_services_input() -> ServicesListInput {
    ServicesListInput {
        search: None,
        item_kind: Some(ServiceItemKind::Service),
        is_active: None,
        billing_method: None,
        page: None,
        page_size: None,
    }
}

fn invoice_input() -> CreateManualInvoiceInput {
    CreateManualInvoiceInput {
        client_id: "c1".into(),
        items: vec![ManualInvoiceItemInput {
            service_id: "s1".into(),
            quantity: 2.0,
            description: "Support".into(),
            rate: 50.0,
            is_discount: None,
            discount_type: None,
            applies_to_item_id: None,
            applies_to_service_id: None,
        }],
        invoice_date: None,
        due_date: None,
        po_number: Some("PO-7".into()),
    }
}

#[tokio::test]
async fn ui_proxy_maps_statuses_as_documented() {
    for status in STATUSES {
        let server = TestServer::start("127.0.0.1", move |seen| answer(status, seen));
        let net = network(Some(&server));
        let mut s = state(&all_caps(), &net, true);
        let got = ext::ui_proxy::Host::call_route(&mut s, "/api/things?x=1".into(), None)
            .await
            .unwrap();
        let expected = match status {
            200 => Ok(b"proxied GET /api/things?x=1".to_vec()),
            401 | 403 | 429 => Err(ProxyError::Denied),
            404 => Err(ProxyError::RouteNotFound),
            409 => Err(ProxyError::BadRequest),
            _ => Err(ProxyError::Internal),
        };
        assert_eq!(got, expected, "status {status}");
        // A payload makes it a POST, and a relative route goes under the extension.
        let got = ext::ui_proxy::Host::call_route(&mut s, "summary".into(), Some(b"{}".to_vec()))
            .await
            .unwrap();
        if status == 200 {
            assert_eq!(got, Ok(b"proxied POST /com.example.ext/summary".to_vec()));
        }
        let seen = server.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].header("x-runner-auth"), Some("runner-token"));
        assert_eq!(seen[0].header("x-alga-tenant"), Some("t1"));
        assert_eq!(seen[0].header("x-ext-install-id"), Some("install-1"));
        assert_eq!(seen[1].body, b"{}");
        // Dot segments never leave the runner.
        assert_eq!(
            ext::ui_proxy::Host::call_route(&mut s, "/api/../admin".into(), None)
                .await
                .unwrap(),
            Err(ProxyError::BadRequest)
        );
        assert_eq!(server.seen().len(), 2);
    }
}

#[tokio::test]
async fn clients_and_services_map_statuses_as_documented() {
    for status in STATUSES {
        let server = TestServer::start("127.0.0.1", move |seen| answer(status, seen));
        let net = network(Some(&server));
        let mut s = state(&all_caps(), &net, true);
        let expected_client = match status {
            200 => None,
            401 | 403 | 404 => Some(ClientReadError::NotAllowed),
            409 => Some(ClientReadError::InvalidInput),
            _ => Some(ClientReadError::Internal),
        };
        let listed = ext::clients::Host::list_clients(&mut s, list_clients_input())
            .await
            .unwrap();
        let got = ext::clients::Host::get_client(&mut s, "c1".into())
            .await
            .unwrap();
        match expected_client {
            None => {
                let listed = listed.unwrap();
                assert_eq!((listed.total_count, listed.items.len()), (1, 1));
                assert_eq!(listed.items[0].client_name, "Acme");
                assert_eq!(
                    listed.items[0].billing_email.as_deref(),
                    Some("b@acme.test")
                );
                assert_eq!(got.unwrap().unwrap().client_id, "c1");
            }
            Some(e) => {
                assert_eq!(listed.unwrap_err(), e, "list, status {status}");
                assert_eq!(got.unwrap_err(), e, "get, status {status}");
            }
        }
        let expected_service = expected_client.map(|e| match e {
            ClientReadError::NotAllowed => ServiceReadError::NotAllowed,
            ClientReadError::InvalidInput => ServiceReadError::InvalidInput,
            ClientReadError::Internal => ServiceReadError::Internal,
        });
        let listed = ext::services::Host::list_services(&mut s, list_services_input())
            .await
            .unwrap();
        let got = ext::services::Host::get_service(&mut s, "s9".into())
            .await
            .unwrap();
        match expected_service {
            None => {
                let item = &listed.unwrap().items[0];
                assert_eq!(item.billing_method, ServiceBillingMethod::Hourly);
                assert_eq!(item.default_rate, 120.5);
                assert_eq!(got.unwrap(), None, "a missing service is none");
            }
            Some(e) => {
                assert_eq!(listed.unwrap_err(), e);
                assert_eq!(got.unwrap_err(), e);
            }
        }
        // The seed's payloads: operation, input in camelCase, the user for RBAC.
        let seen = server.seen();
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].path, "/api/internal/ext-clients/install/install-1");
        assert_eq!(seen[0].header("x-runner-auth"), Some("runner-token"));
        let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
        assert_eq!(
            body,
            json!({"operation": "list", "input": {"search": "ac", "page": 1, "pageSize": 20},
                   "user": {"userId": "u1", "userType": "internal"}})
        );
        let body: Value = serde_json::from_slice(&seen[1].body).unwrap();
        assert_eq!(body["input"], json!({"clientId": "c1"}));
        assert_eq!(seen[2].path, "/api/internal/ext-services/install/install-1");
        let body: Value = serde_json::from_slice(&seen[2].body).unwrap();
        assert_eq!(body["input"], json!({"itemKind": "service"}));
    }
}

#[tokio::test]
async fn invoicing_maps_statuses_as_documented() {
    for status in STATUSES {
        let server = TestServer::start("127.0.0.1", move |seen| answer(status, seen));
        let net = network(Some(&server));
        let mut s = state(&all_caps(), &net, true);
        let r = ext::invoicing::Host::create_manual_invoice(&mut s, invoice_input())
            .await
            .unwrap();
        if status == 200 {
            assert!(r.success);
            assert_eq!(r.invoice_id.as_deref(), Some("inv1"));
            assert_eq!(r.invoice_number.as_deref(), Some("INV-1"));
            assert_eq!(
                (r.subtotal, r.tax, r.total),
                (Some(100.0), Some(10.0), Some(110.0))
            );
        } else {
            assert!(!r.success);
            assert_eq!(r.error, Some(format!("refused with {status}")));
            assert_eq!(r.field_errors.as_deref(), Some(r#"{"clientId":"bad"}"#));
        }
        let seen = server.seen();
        assert_eq!(
            seen[0].path,
            "/api/internal/ext-invoicing/install/install-1"
        );
        let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
        assert_eq!(body["operation"], "createManualInvoice");
        assert_eq!(body["poNumber"], "PO-7");
        assert_eq!(
            body["items"][0],
            json!({"serviceId": "s1", "quantity": 2.0, "description": "Support", "rate": 50.0}),
            "absent optional fields are omitted, never null"
        );
    }
}

#[tokio::test]
async fn without_capabilities_nothing_is_sent() {
    let server = TestServer::start("127.0.0.1", |seen| answer(200, seen));
    let net = network(Some(&server));
    let mut s = state(&[], &net, true);
    assert_eq!(
        ext::ui_proxy::Host::call_route(&mut s, "/api/x".into(), None)
            .await
            .unwrap(),
        Err(ProxyError::Denied)
    );
    assert_eq!(
        ext::clients::Host::list_clients(&mut s, list_clients_input())
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
    assert_eq!(
        ext::services::Host::list_services(&mut s, list_services_input())
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
    let r = ext::invoicing::Host::create_manual_invoice(&mut s, invoice_input())
        .await
        .unwrap();
    assert_eq!(
        (r.success, r.error.as_deref()),
        (
            false,
            Some("Permission denied: cap:invoice.manual.create not granted")
        )
    );
    // Granted but no install id: the seed's answers, still nothing sent.
    let mut s = state(&all_caps(), &net, false);
    assert_eq!(
        ext::clients::Host::get_client(&mut s, "c".into())
            .await
            .unwrap()
            .unwrap_err(),
        ClientReadError::NotAllowed
    );
    let r = ext::invoicing::Host::create_manual_invoice(&mut s, invoice_input())
        .await
        .unwrap();
    assert_eq!(
        r.error.as_deref(),
        Some("Permission denied: install_id missing")
    );
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn the_bridge_has_size_and_time_limits() {
    let server = TestServer::start("127.0.0.1", |seen| {
        if seen.path.contains("slow") {
            return Reply {
                delay: Duration::from_secs(3),
                ..Reply::new(200, "late")
            };
        }
        Reply::new(200, vec![b'x'; 4096])
    });
    let api = HostApi::new(HostApiSettings {
        base: Some(server.base()),
        token: None,
        timeout: Duration::from_millis(300),
        request_body_max: 100,
        response_body_max: 1024,
        ..HostApiSettings::default()
    })
    .unwrap();
    let net = network_with(api);
    let mut s = state(&all_caps(), &net, true);
    // Response over 1 KiB, slow answer, request over 100 bytes: internal each time.
    for (route, payload) in [
        ("/api/big", None),
        ("/api/slow", None),
        ("/api/x", Some(vec![b'{'; 200])),
    ] {
        assert_eq!(
            ext::ui_proxy::Host::call_route(&mut s, route.into(), payload)
                .await
                .unwrap(),
            Err(ProxyError::Internal),
            "{route}"
        );
    }
    let notes: Vec<String> = s.logs().lines().into_iter().map(|l| l.message).collect();
    for code in ["response_too_large", "timeout", "request_too_large"] {
        assert!(notes.iter().any(|n| n.contains(code)), "{code}: {notes:?}");
    }
}

#[tokio::test]
async fn without_a_configured_host_api_ui_proxy_is_route_not_found_and_bridges_internal() {
    let net = network(None);
    let mut s = state(&all_caps(), &net, true);
    // As Alga's runner answers when UI_PROXY_BASE_URL is unset.
    assert_eq!(
        ext::ui_proxy::Host::call_route(&mut s, "/api/x".into(), None)
            .await
            .unwrap(),
        Err(ProxyError::RouteNotFound)
    );
    assert_eq!(
        ext::clients::Host::list_clients(&mut s, list_clients_input())
            .await
            .unwrap()
            .unwrap_err(),
        ClientReadError::Internal
    );
    let r = ext::invoicing::Host::create_manual_invoice(&mut s, invoice_input())
        .await
        .unwrap();
    assert_eq!(
        r.error.as_deref(),
        Some("invoicing is not configured on this runner")
    );
}

/// `cap:ui.proxy` alone must not reach the host app's internal API (the
/// clients / services / invoicing bridges) under any spelling of the route.
#[tokio::test]
async fn sec_03_ui_proxy_cannot_reach_the_internal_api() {
    let server = TestServer::start("127.0.0.1", |seen| answer(200, seen));
    let net = network(Some(&server));
    let mut s = state(&[Capability::UiProxy], &net, true);
    let invoice = json!({"operation": "createManualInvoice", "clientId": "c1",
        "items": [{"serviceId": "s1", "quantity": 1, "description": "x", "rate": 1e6}],
        "user": {"userId": "admin", "userType": "internal"}})
    .to_string()
    .into_bytes();
    for route in [
        "api/internal/ext-invoicing/install/install-1",
        "/api/internal/ext-invoicing/install/install-1",
        "/api//internal/ext-invoicing/install/install-1",
        "//api/internal/ext-clients/install/install-1",
        "api/%69nternal/ext-invoicing/install/install-1",
        "api/%69%6Eternal/ext-invoicing/install/install-1",
        "%61pi/internal/ext-invoicing/install/install-1",
        "API/Internal/ext-invoicing/install/install-1",
        "api/INTERNAL/ext-invoicing/install/install-1",
        "api/./internal/ext-invoicing/install/install-1",
        "api/%2e/internal/ext-invoicing/install/install-1",
        "api/x/../internal/ext-invoicing/install/install-1",
        "api/internal;v=1/ext-invoicing/install/install-1",
        "api/internal",
        "api/internal?x=1",
    ] {
        for payload in [None, Some(invoice.clone())] {
            assert_eq!(
                ext::ui_proxy::Host::call_route(&mut s, route.into(), payload)
                    .await
                    .unwrap(),
                Err(ProxyError::Denied),
                "{route}"
            );
        }
    }
    assert_eq!(server.connections(), 0, "{:?}", server.seen());
    // An extension whose id is `api` cannot get there through its own routes.
    let mut s = state_of("api", &[Capability::UiProxy], &net, true);
    assert_eq!(
        ext::ui_proxy::Host::call_route(&mut s, "internal/ext-clients/install/i".into(), None)
            .await
            .unwrap(),
        Err(ProxyError::Denied)
    );
    assert_eq!(server.connections(), 0, "{:?}", server.seen());
}

/// The guest's payload cannot claim another identity, ui-proxy and the
/// bridges carry different credentials, and only allowlisted prefixes are proxied.
#[tokio::test]
async fn sec_03_ui_proxy_payload_cannot_set_the_identity_and_has_its_own_credential() {
    let server = TestServer::start("127.0.0.1", |seen| answer(200, seen));
    let api = HostApi::new(HostApiSettings {
        base: Some(server.base()),
        token: Some("proxy-token".into()),
        bridge_token: Some("bridge-token".into()),
        ui_proxy_routes: vec!["api/v1".into()],
        ..HostApiSettings::default()
    })
    .unwrap();
    let net = network_with(api);
    let mut s = state(&all_caps(), &net, true);
    let forged = json!({"user": {"userId": "admin", "userType": "internal"},
        "userId": "admin", "tenant_id": "t2", "tenantId": "t2", "installId": "other", "x": 1});
    let got = ext::ui_proxy::Host::call_route(
        &mut s,
        "/api/v1/things".into(),
        Some(forged.to_string().into_bytes()),
    )
    .await
    .unwrap();
    assert_eq!(got, Ok(b"proxied POST /api/v1/things".to_vec()));
    // Not on the allowlist of proxyable prefixes: denied, unsent.
    for route in ["/api/v2/things", "/api/v1x", "/api/"] {
        assert_eq!(
            ext::ui_proxy::Host::call_route(&mut s, route.into(), None)
                .await
                .unwrap(),
            Err(ProxyError::Denied),
            "{route}"
        );
    }
    // The extension's own routes are always proxyable.
    let got = ext::ui_proxy::Host::call_route(&mut s, "summary".into(), None)
        .await
        .unwrap();
    assert_eq!(got, Ok(b"proxied GET /com.example.ext/summary".to_vec()));
    ext::clients::Host::list_clients(&mut s, list_clients_input())
        .await
        .unwrap()
        .unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        body,
        json!({"user": {"userId": "u1", "userType": "internal"},
            "userId": "u1", "tenant_id": "t1", "tenantId": "t1", "installId": "install-1", "x": 1})
    );
    assert_eq!(seen[0].header("x-runner-auth"), Some("proxy-token"));
    assert_eq!(seen[1].header("x-runner-auth"), Some("proxy-token"));
    assert_eq!(seen[2].path, "/api/internal/ext-clients/install/install-1");
    assert_eq!(seen[2].header("x-runner-auth"), Some("bridge-token"));
}

const ALGA_EXT: &str = "3f2b8c1e-7d4a-4b9e-9c1d-2a6f0e5b7c11";
const ALGA_INSTALL: &str = "9a7c0d2e-1b3f-4c5d-8e6f-0a1b2c3d4e5f";

/// An install carrying Alga's ids, a signed-in user and an `api_key` secret.
fn alga_state(net: &Network, api_key: Option<&str>) -> HostState {
    HostState::new(HostSetup {
        network: Some(net),
        inline_secrets: Some(SecretBundle {
            values: api_key
                .map(|k| BTreeMap::from([("api_key".to_string(), k.to_string())]))
                .unwrap_or_default(),
            expires_at: None,
        }),
        ..HostSetup::new(
            Arc::new(Invocation {
                request_id: Some("r1".into()),
                tenant_id: "t1".into(),
                extension_id: "com.example.ext".into(),
                install_id: Some("install-1".into()),
                host_extension_id: Some(ALGA_EXT.into()),
                host_install_id: Some(ALGA_INSTALL.into()),
                user: Some(UserInfo {
                    user_id: "u1".into(),
                    user_email: "u1@acme.test".into(),
                    user_type: "internal".into(),
                    ..UserInfo::default()
                }),
                ..Invocation::default()
            }),
            CapabilitySet::with(all_caps()),
            &HostServices {
                kv: Arc::new(MemoryKvStore::default()),
                secrets: Arc::new(MemorySecretStore::default()),
            },
            RequestLimits {
                memory_bytes: 1 << 20,
                host_calls: 1000,
                log_bytes: 100_000,
            },
        )
    })
}

/// An install with Alga's ids: the bridges address Alga's install UUID (where
/// Alga's internal API looks installs up), ui-proxy names the extension by Alga's
/// registry UUID and carries `x-api-key` (the install's `api_key` secret) and the
/// user, as Alga's runner sends them; the key goes to the ui-proxy base only.
#[tokio::test]
async fn alga_ids_reach_the_host_app_and_ui_proxy_carries_its_headers() {
    let proxy = TestServer::start("127.0.0.1", |seen| answer(200, seen));
    let internal = TestServer::start("127.0.0.1", |seen| answer(200, seen));
    let api = HostApi::new(HostApiSettings {
        base: Some(internal.base()),
        ui_proxy_base: Some(proxy.base()),
        token: Some("proxy-token".into()),
        bridge_token: Some("bridge-token".into()),
        ..HostApiSettings::default()
    })
    .unwrap();
    let net = network_with(api);
    let mut s = alga_state(&net, Some("ak-123"));

    let got = ext::ui_proxy::Host::call_route(&mut s, "/api/v1/things".into(), None)
        .await
        .unwrap();
    assert_eq!(got, Ok(b"proxied GET /api/v1/things".to_vec()));
    let got = ext::ui_proxy::Host::call_route(&mut s, "summary".into(), None)
        .await
        .unwrap();
    assert_eq!(
        got,
        Ok(format!("proxied GET /{ALGA_EXT}/summary").into_bytes())
    );
    let clients = ext::clients::Host::list_clients(&mut s, list_clients_input())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(clients.items[0].client_name, "Acme");
    let service = ext::services::Host::get_service(&mut s, "s1".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(service, None);
    let invoice = ext::invoicing::Host::create_manual_invoice(&mut s, invoice_input())
        .await
        .unwrap();
    assert!(invoice.success, "{invoice:?}");

    let proxied = proxy.seen();
    assert_eq!(proxied.len(), 2);
    for seen in &proxied {
        assert_eq!(seen.header("x-api-key"), Some("ak-123"));
        assert_eq!(seen.header("x-user-id"), Some("u1"));
        assert_eq!(seen.header("x-user-email"), Some("u1@acme.test"));
        assert_eq!(seen.header("x-alga-extension"), Some(ALGA_EXT));
        assert_eq!(seen.header("x-ext-install-id"), Some(ALGA_INSTALL));
        assert_eq!(seen.header("x-runner-auth"), Some("proxy-token"));
    }
    let bridged = internal.seen();
    let paths: Vec<&str> = bridged.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            format!("/api/internal/ext-clients/install/{ALGA_INSTALL}"),
            format!("/api/internal/ext-services/install/{ALGA_INSTALL}"),
            format!("/api/internal/ext-invoicing/install/{ALGA_INSTALL}"),
        ]
    );
    for seen in &bridged {
        // The extension's key is for the host app's platform routes, through
        // ui-proxy; the bridges authenticate the runner.
        assert_eq!(seen.header("x-api-key"), None, "{}", seen.path);
        assert_eq!(seen.header("x-runner-auth"), Some("bridge-token"));
        assert_eq!(seen.header("x-ext-install-id"), Some(ALGA_INSTALL));
    }

    // No api_key secret: no header (the host app decides what that means).
    let mut s = alga_state(&net, None);
    ext::ui_proxy::Host::call_route(&mut s, "/api/v1/things".into(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(proxy.seen().last().unwrap().header("x-api-key"), None);
}

/// ui-proxy and the bridges may have different bases, as Alga's runner's
/// `UI_PROXY_BASE_URL` and `STORAGE_API_BASE_URL` do.
#[tokio::test]
async fn ui_proxy_and_bridges_can_have_separate_bases() {
    let proxy = TestServer::start("127.0.0.1", |seen| answer(200, seen));
    // Only a ui-proxy base: the bridges are not configured, ui-proxy works.
    let api = HostApi::new(HostApiSettings {
        ui_proxy_base: Some(proxy.base()),
        ..HostApiSettings::default()
    })
    .unwrap();
    let net = network_with(api);
    let mut s = alga_state(&net, Some("k"));
    assert!(
        ext::ui_proxy::Host::call_route(&mut s, "/api/x".into(), None)
            .await
            .unwrap()
            .is_ok()
    );
    assert_eq!(
        ext::clients::Host::list_clients(&mut s, list_clients_input())
            .await
            .unwrap()
            .unwrap_err(),
        ClientReadError::Internal
    );
    assert_eq!(proxy.seen().len(), 1);
}
