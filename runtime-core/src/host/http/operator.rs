//! One request to a destination the operator configured (the host app's API, Vault):
//! resolved and connected without the tenant allowlist or the public-address rule,
//! since no guest chose it; still one exchange under the client's size cap, with
//! no redirects followed. The caller bounds the time.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use rustls::pki_types::ServerName;

use super::resolve::{DnsResolver, SystemResolver};
use super::{EgressError, HttpClient, OutboundResponse};

/// Sends `method` to `url` with `headers` and `body`; reads at most `max_response`
/// bytes of the answer.
pub async fn send(
    client: &HttpClient,
    url: &url::Url,
    method: http::Method,
    headers: &[(&str, String)],
    body: Option<Bytes>,
    max_response: usize,
) -> Result<OutboundResponse, EgressError> {
    let host = url
        .host_str()
        .ok_or_else(|| EgressError::InvalidUrl("no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let ips = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => SystemResolver
            .lookup(&host)
            .await
            .map_err(|e| EgressError::Dns(e.to_string()))?,
    };
    let addrs: Vec<SocketAddr> = ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    let tls = if url.scheme() == "https" {
        Some(match host.parse::<std::net::IpAddr>() {
            Ok(ip) => ServerName::from(ip),
            Err(_) => ServerName::try_from(host.clone())
                .map_err(|e| EgressError::InvalidUrl(e.to_string()))?,
        })
    } else {
        None
    };
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, authority)
        .header(http::header::CONNECTION, "close");
    for (k, v) in headers {
        builder = builder.header(*k, v.as_str());
    }
    let request = builder
        .body(Full::new(body.unwrap_or_default()))
        .map_err(|e| EgressError::InvalidUrl(e.to_string()))?;
    client.exchange(&addrs, tls, request, max_response).await
}
