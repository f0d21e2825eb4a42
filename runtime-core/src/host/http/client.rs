//! One HTTP/1.1 exchange with an already checked address: connect, optional TLS
//! (rustls with the system roots and the aws-lc-rs provider the AWS SDK uses too),
//! send, read the response under a size cap. No pooling, no redirects, no
//! proxies, no name lookups: the caller decides everything.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;

use super::EgressError;

/// A response read completely (within the cap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers in arrival order (values that are not UTF-8 are dropped).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl OutboundResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Aborts the connection task when the exchange ends or is dropped (timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The connector; the TLS configuration (system roots) is loaded on first use.
#[derive(Default)]
pub struct HttpClient {
    tls: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
}

impl HttpClient {
    /// A client whose TLS trusts `roots` instead of the system's.
    pub fn with_roots(roots: rustls::RootCertStore) -> Result<Self, EgressError> {
        let client = HttpClient::default();
        let config = tls_config(roots)?;
        let _ = client.tls.set(Ok(config));
        Ok(client)
    }

    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, EgressError> {
        self.tls
            .get_or_init(|| {
                let loaded = rustls_native_certs::load_native_certs();
                let mut roots = rustls::RootCertStore::empty();
                let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
                if added == 0 {
                    return Err(format!(
                        "no usable system root certificates ({} errors)",
                        loaded.errors.len()
                    ));
                }
                tls_config(roots).map_err(|e| e.to_string())
            })
            .clone()
            .map_err(EgressError::Tls)
    }

    /// Sends `request` (origin-form URI, headers set) to the first of `addrs` that
    /// accepts a connection, and reads at most `max_response` body bytes.
    pub async fn exchange(
        &self,
        addrs: &[SocketAddr],
        tls_name: Option<ServerName<'static>>,
        request: http::Request<Full<Bytes>>,
        max_response: usize,
    ) -> Result<OutboundResponse, EgressError> {
        let tcp = connect(addrs).await?;
        let stream: Box<dyn Io> = match tls_name {
            Some(name) => {
                let connector = tokio_rustls::TlsConnector::from(self.tls()?);
                Box::new(
                    connector
                        .connect(name, tcp)
                        .await
                        .map_err(|e| EgressError::Tls(e.to_string()))?,
                )
            }
            None => Box::new(tcp),
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| EgressError::Protocol(e.to_string()))?;
        let _driver = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| EgressError::Protocol(e.to_string()))?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        if let Some(len) = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            && len > max_response as u64
        {
            return Err(EgressError::ResponseTooLarge {
                limit: max_response,
            });
        }
        let mut body = response.into_body();
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| EgressError::Protocol(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > max_response {
                    return Err(EgressError::ResponseTooLarge {
                        limit: max_response,
                    });
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(OutboundResponse {
            status,
            headers,
            body: Bytes::from(buf),
        })
    }
}

fn tls_config(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, EgressError> {
    // An explicit provider: no process-wide default is installed, and this one
    // must not depend on whichever crate happens to install one.
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| EgressError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, EgressError> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(format!("{addr}: {e}")),
        }
    }
    Err(EgressError::Connect(
        last.unwrap_or_else(|| "no address".into()),
    ))
}
