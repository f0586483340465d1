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
use crate::accounting::{prepare_stream_request, SseUsageTap, UsageTokens};
use crate::upstream::Lease;

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

/// `headers` without the hop-by-hop ones (and `host` when `drop_host`), in place: the
/// map moves on to the other side instead of being copied entry by entry.
fn strip_hop_by_hop(mut headers: HeaderMap, drop_host: bool) -> HeaderMap {
    for name in &STRIPPED {
        headers.remove(name);
    }
    if drop_host {
        headers.remove(header::HOST);
    }
    headers
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
pub async fn forward(
    state: &Arc<AppState>,
    route: &'static str,
    req: Request<Incoming>,
) -> Response<RespBody> {
    if !state.engine.is_ready() {
        return errors::engine_unavailable(&state.engine.unavailable_reason());
    }
    let Ok(permit) = state.limiter.clone().try_acquire_owned() else {
        return errors::too_many(state.limits.max_concurrent_requests);
    };
    let (mut parts, body) = req.into_parts();
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

    // Only streams are rewritten (to ask for usage); everything else is forwarded
    // as the client sent it.
    let (upstream_body, tap) = if billed && peek.stream {
        match rewrite_stream_request(&body) {
            Ok(r) => r,
            Err(resp) => return resp,
        }
    } else {
        (body, None)
    };

    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut up = Request::new(Full::new(upstream_body.clone()));
    *up.method_mut() = parts.method.clone();
    *up.uri_mut() = match hyper::Uri::try_from(path) {
        Ok(u) => u,
        Err(_) => return errors::bad_request("request path is not a valid URI"),
    };
    *up.headers_mut() = strip_hop_by_hop(std::mem::take(&mut parts.headers), true);
    if billed {
        up.headers_mut().insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(upstream_body.len()),
        );
    }

    let (resp, lease) = match state.client.request(up).await {
        Ok(r) => r,
        Err(e) => {
            // No answer at all (refused, or the connection closed before a response):
            // the engine is down, or dying before its supervisor has seen it exit. To
            // the client that is the same state as a restart, and gets the same
            // answer; a 502 is kept for an answer that broke off.
            tracing::warn!(error = %e, "engine request failed");
            let why = if state.engine.is_ready() {
                "the inference engine did not answer (it is being checked and restarted)"
                    .to_string()
            } else {
                state.engine.unavailable_reason()
            };
            return errors::engine_unavailable(&why);
        }
    };
    match tap {
        Some(tap) if resp.status() == StatusCode::OK => {
            stream(state.clone(), route, model, resp, lease, tap, permit)
        }
        _ => whole(state, route, billed, model, resp, lease).await,
    }
}

/// Force `stream_options.include_usage` on a stream request; the tap takes the
/// usage chunk out again when the client did not ask for it.
#[allow(clippy::result_large_err)] // the error is the answer itself, built once
fn rewrite_stream_request(body: &[u8]) -> Result<(Bytes, Option<SseUsageTap>), Response<RespBody>> {
    let mut v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| errors::bad_request(&format!("request body is not JSON: {e}")))?;
    let prep = prepare_stream_request(&mut v).map_err(|e| errors::bad_request(&e.to_string()))?;
    let bytes = serde_json::to_vec(&v).map_err(|e| errors::internal(&e.to_string()))?;
    Ok((Bytes::from(bytes), prep.tap()))
}

/// Read a request body up to `limit` bytes; an oversized one is a JSON 413.
#[allow(clippy::result_large_err)]
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
    lease: Lease,
) -> Response<RespBody> {
    let (parts, body) = resp.into_parts();
    let bytes = match Limited::new(body, MAX_UPSTREAM_BODY).collect().await {
        // The body is read: the connection can serve the next request.
        Ok(c) => {
            drop(lease);
            c.to_bytes()
        }
        Err(e) => {
            tracing::warn!(error = %e, "engine answer broke off");
            return errors::bad_gateway("the inference engine's answer broke off");
        }
    };
    if billed && parts.status == StatusCode::OK {
        match UsageTokens::from_response_body(&bytes) {
            Ok(usage) => {
                if let Err(e) = state.billing.record(route, model.as_deref(), usage).await {
                    tracing::error!(error = %e, "receipt not recorded: answer withheld");
                    return errors::json_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "ledger_unavailable",
                        "the receipt ledger is unavailable",
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, route, "answer without readable usage: not billed")
            }
        }
    }
    let mut out = Response::new(RespBody::full(bytes));
    *out.status_mut() = parts.status;
    *out.headers_mut() = strip_hop_by_hop(parts.headers, false);
    out
}

/// SSE error event that ends a stream the engine broke off.
fn stream_error(message: &str) -> Bytes {
    let json = serde_json::json!({"error": {"type": "engine_failure", "message": message}});
    Bytes::from(format!("event: error\ndata: {json}\n\n"))
}

/// Split forwardable bytes at the start of the `[DONE]` event: the part before it
/// goes out at once, the `[DONE]` event only after the receipt is durable.
fn split_done(out: Bytes) -> (Bytes, Bytes) {
    let at = out
        .windows(6)
        .rposition(|w| w == b"[DONE]")
        .map(|i| {
            out.get(..i)
                .and_then(|head| head.iter().rposition(|&b| b == b'\n'))
                .map_or(0, |nl| nl.saturating_add(1))
        })
        .unwrap_or(0);
    let mut done = out;
    let before = done.split_to(at);
    (before, done)
}

fn stream(
    state: Arc<AppState>,
    route: &'static str,
    model: Option<String>,
    resp: Response<Incoming>,
    lease: Lease,
    mut tap: SseUsageTap,
    permit: OwnedSemaphorePermit,
) -> Response<RespBody> {
    let (parts, mut body) = resp.into_parts();
    let (tx, rx) = mpsc::channel::<Bytes>(STREAM_CHANNEL);
    tokio::spawn(async move {
        let _permit = permit;
        let _lease = lease;
        loop {
            let frame = match body.frame().await {
                Some(Ok(f)) => f,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "engine stream broke off");
                    let _ = tx
                        .send(stream_error("the inference engine stopped mid-stream"))
                        .await;
                    return;
                }
                None => {
                    let rest = tap.finish();
                    if !rest.is_empty() {
                        let _ = tx.send(rest).await;
                    }
                    // Closed without `[DONE]`: not a completed request, no receipt.
                    let _ = tx
                        .send(stream_error("the inference engine ended the stream early"))
                        .await;
                    return;
                }
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let out = match tap.feed(&data) {
                Ok(out) => out,
                Err(e) => {
                    tracing::warn!(error = %e, "engine stream is not SSE");
                    let _ = tx
                        .send(stream_error("the inference engine sent a malformed stream"))
                        .await;
                    return;
                }
            };
            if !tap.saw_done() {
                if !out.is_empty() && tx.send(out).await.is_err() {
                    // Client went away: dropping `body` aborts the generation.
                    return;
                }
                continue;
            }
            let (before, done) = split_done(out);
            if !before.is_empty() && tx.send(before).await.is_err() {
                return;
            }
            match tap.usage() {
                Some(usage) => {
                    if let Err(e) = state.billing.record(route, model.as_deref(), usage).await {
                        tracing::error!(error = %e, "receipt not recorded: stream not completed");
                        let _ = tx
                            .send(stream_error("the receipt ledger is unavailable"))
                            .await;
                        return;
                    }
                }
                None => tracing::warn!(
                    error = ?tap.usage_error(),
                    "stream finished without a readable usage chunk: not billed"
                ),
            }
            let _ = tx.send(done).await;
            return;
        }
    });
    let mut out = Response::new(RespBody::Channel(rx));
    *out.status_mut() = parts.status;
    *out.headers_mut() = strip_hop_by_hop(parts.headers, false);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_is_split_off_at_its_line() {
        let (a, b) = split_done(Bytes::from_static(
            b"data: {\"usage\":1}\n\ndata: [DONE]\n\n",
        ));
        assert_eq!(&a[..], b"data: {\"usage\":1}\n\n");
        assert_eq!(&b[..], b"data: [DONE]\n\n");
        let (a, b) = split_done(Bytes::from_static(b"data: [DONE]\n\n"));
        assert!(a.is_empty());
        assert_eq!(&b[..], b"data: [DONE]\n\n");
    }
}
