//! Forwarding the OpenAI API to the engine.
//!
//! Non-stream answers are read whole (they are small, and billing needs their
//! `usage`), billed, then sent as one buffer: the body bytes are forwarded as the
//! engine wrote them, never re-serialised. Streams are forwarded frame by frame
//! through the usage tap by a task that owns the upstream body; `[DONE]` is held
//! back until the receipt is durable.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::body::RespBody;
use super::errors;
use super::AppState;
use crate::accounting::{prepare_stream_request, usage_from_body, SseUsageTap, TapEvent};

/// Largest engine answer read whole (a non-stream completion of a long context).
const MAX_UPSTREAM_BODY: usize = 64 << 20;
/// Events buffered between the upstream reader and the client writer; small, so a
/// slow client pushes back on the engine instead of growing memory.
const STREAM_CHANNEL: usize = 16;

/// Hop-by-hop headers (RFC 9110 section 7.6.1) plus those we recompute.
const STRIPPED: [header::HeaderName; 8] = [
    header::CONNECTION,
    header::HeaderName::from_static("keep-alive"),
    header::HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::CONTENT_LENGTH,
];

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap, drop_host: bool) {
    for (name, value) in from {
        if STRIPPED.contains(name) || (drop_host && name == header::HOST) {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}

/// What the proxy needs to know about a request body, read without copying it.
#[derive(Deserialize, Default)]
struct Peek<'a> {
    #[serde(default)]
    stream: bool,
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
}

/// The engine answered something; how to send it on.
pub async fn forward(state: &Arc<AppState>, route: &'static str, req: Request<Incoming>) -> Response<RespBody> {
    if !state.engine.is_ready() {
        return errors::engine_unavailable(&state.engine.unavailable_reason());
    }
    let Ok(permit) = state.limiter.clone().try_acquire_owned() else {
        return errors::too_many(state.limits.max_concurrent_requests);
    };
    let (parts, body) = req.into_parts();
    let body = if parts.method == Method::POST {
        match read_body(&parts.headers, body, state.limits.max_body_bytes).await {
            Ok(b) => b,
            Err(resp) => return resp,
        }
    } else {
        Bytes::new()
    };
    let billed = parts.method == Method::POST;
    let peek: Peek<'_> = if billed {
        serde_json::from_slice(&body).unwrap_or_default()
    } else {
        Peek::default()
    };
    let model = peek.model.as_deref().map(str::to_owned);

    let (upstream_body, tap) = if billed && peek.stream {
        match prepare_stream_request(&body) {
            Ok(prep) => (
                Bytes::from(prep.body),
                Some(SseUsageTap::new(prep.client_wants_usage)),
            ),
            Err(e) => return errors::bad_request(&e.to_string()),
        }
    } else {
        (body, None)
    };

    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str());
    let mut up = Request::new(Full::new(upstream_body.clone()));
    *up.method_mut() = parts.method.clone();
    *up.uri_mut() = match format!("{}{path}", state.upstream_base).parse() {
        Ok(u) => u,
        Err(_) => return errors::bad_request("request path is not a valid URI"),
    };
    copy_headers(&parts.headers, up.headers_mut(), true);
    if billed {
        up.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(upstream_body.len()));
    }

    let resp = match state.client.request(up).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "engine request failed");
            return errors::bad_gateway("the inference engine did not answer");
        }
    };
    match tap {
        Some(tap) if resp.status() == StatusCode::OK => {
            stream(state.clone(), route, model, resp, tap, permit)
        }
        _ => whole(state, route, billed, model, resp).await,
    }
}

/// Read a request body up to `limit` bytes; an oversized one is a JSON 413.
async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    limit: u64,
) -> Result<Bytes, Response<RespBody>> {
    // Refuse on the declared length before reading a byte.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(errors::too_large(limit));
    }
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, cap).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(errors::too_large(limit)),
        Err(e) => Err(errors::bad_request(&format!("reading request body: {e}"))),
    }
}

/// A complete answer: read it, bill it when it carries usage, send it on.
async fn whole(
    state: &Arc<AppState>,
    route: &'static str,
    billed: bool,
    model: Option<String>,
    resp: Response<Incoming>,
) -> Response<RespBody> {
    let (parts, body) = resp.into_parts();
    let bytes = match Limited::new(body, MAX_UPSTREAM_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            tracing::warn!(error = %e, "engine answer broke off");
            return errors::bad_gateway("the inference engine's answer broke off");
        }
    };
    if billed && parts.status == StatusCode::OK {
        if let Some(usage) = usage_from_body(&bytes) {
            if let Err(e) = state.billing.record(route, model.as_deref(), usage).await {
                tracing::error!(error = %e, "receipt not recorded: answer withheld");
                return errors::json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ledger_unavailable",
                    "the receipt ledger is unavailable",
                );
            }
        }
    }
    let mut out = Response::new(RespBody::full(bytes));
    *out.status_mut() = parts.status;
    copy_headers(&parts.headers, out.headers_mut(), false);
    out
}

/// SSE error event that ends a stream the engine broke off.
fn stream_error(message: &str) -> Bytes {
    let json = serde_json::json!({"error": {"type": "engine_failure", "message": message}});
    Bytes::from(format!("event: error\ndata: {json}\n\n"))
}

fn stream(
    state: Arc<AppState>,
    route: &'static str,
    model: Option<String>,
    resp: Response<Incoming>,
    mut tap: SseUsageTap,
    permit: OwnedSemaphorePermit,
) -> Response<RespBody> {
    let (parts, mut body) = resp.into_parts();
    let (tx, rx) = mpsc::channel::<Bytes>(STREAM_CHANNEL);
    tokio::spawn(async move {
        let _permit = permit;
        loop {
            let frame = match body.frame().await {
                Some(Ok(f)) => f,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "engine stream broke off");
                    let _ = tx.send(stream_error("the inference engine stopped mid-stream")).await;
                    return;
                }
                None => {
                    // The engine closed the stream without `[DONE]`: not a completed
                    // request, so no receipt.
                    let _ = tx.send(stream_error("the inference engine ended the stream early")).await;
                    return;
                }
            };
            let Ok(data) = frame.into_data() else { continue };
            for event in tap.feed(&data) {
                match event {
                    TapEvent::Data(bytes) => {
                        if tx.send(bytes).await.is_err() {
                            // Client went away: dropping `body` aborts the generation.
                            return;
                        }
                    }
                    TapEvent::Done(done) => {
                        if let Some(usage) = tap.usage() {
                            if let Err(e) = state.billing.record(route, model.as_deref(), usage).await {
                                tracing::error!(error = %e, "receipt not recorded: stream not completed");
                                let _ = tx.send(stream_error("the receipt ledger is unavailable")).await;
                                return;
                            }
                        } else {
                            tracing::warn!("stream finished without a usage chunk: not billed");
                        }
                        let _ = tx.send(done).await;
                        return;
                    }
                }
            }
        }
    });
    let mut out = Response::new(RespBody::Channel(rx));
    *out.status_mut() = parts.status;
    copy_headers(&parts.headers, out.headers_mut(), false);
    out
}
