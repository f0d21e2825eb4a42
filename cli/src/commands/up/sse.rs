//! `GET /__alga/requests`: the request log as server-sent events, for the host
//! page's panel. It sends the kept requests (after `Last-Event-ID` when the
//! browser reconnects), then each new one as it finishes: `id: <seq>`,
//! `event: request`, `data: <entry JSON>`.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Response;
use hyper::body::Frame;
use tokio::sync::{broadcast, mpsc};

use super::log::{Entry, journal};
use super::server::StreamBody as Body;

/// The route.
pub const PATH: &str = "/__alga/requests";

/// A body fed by a channel; it ends when the sender is dropped.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

fn event(e: &Entry) -> Bytes {
    Bytes::from(format!(
        "id: {}\nevent: request\ndata: {}\n\n",
        e.seq,
        e.to_json()
    ))
}

/// The event stream; `headers` may carry the browser's `Last-Event-ID`.
pub fn stream(headers: &hyper::HeaderMap) -> Response<Body> {
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    if let Some(journal) = journal() {
        let (past, mut live) = journal.subscribe(after);
        tokio::spawn(async move {
            // Retry after 1 s when the connection drops (the default is 3 s).
            if tx
                .send(Bytes::from_static(b"retry: 1000\n\n"))
                .await
                .is_err()
            {
                return;
            }
            let mut last = after;
            for e in past {
                last = e.seq;
                if tx.send(event(&e)).await.is_err() {
                    return;
                }
            }
            loop {
                let next = tokio::select! {
                    r = live.recv() => r,
                    // A comment now and then finds a closed connection.
                    _ = tokio::time::sleep(std::time::Duration::from_secs(15)) => {
                        if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                            return;
                        }
                        continue;
                    }
                };
                match next {
                    Ok(e) if e.seq > last => {
                        last = e.seq;
                        if tx.send(event(&e)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .body(ChannelBody(rx).boxed())
        .expect("a valid response")
}
