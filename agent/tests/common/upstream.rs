//! A fake engine upstream: the OpenAI routes vLLM serves, with SSE events paced
//! 50 ms apart, or in lockstep with the test's client so a test can tell, without
//! timing anything, that no event was held back.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

pub const EVENTS: usize = 5;
pub const EVENT_GAP: Duration = Duration::from_millis(50);

pub struct Upstream {
    /// While false, /health answers 503 (an engine still loading).
    pub healthy: AtomicBool,
    /// Bodies of the POST requests received.
    pub bodies: Mutex<Vec<serde_json::Value>>,
    /// Headers of the POST requests received.
    pub headers: Mutex<Vec<hyper::HeaderMap>>,
    /// While true, a stream sends each content event only after the test has added a
    /// permit to `acks` for the one before it (the client saw it): a proxy that held an
    /// event back would stall the stream instead of passing a timing check by luck.
    pub lockstep: AtomicBool,
    /// One permit per content event the test's client has received (lockstep only).
    pub acks: tokio::sync::Semaphore,
}

/// How long a lockstep stream waits for the client to see an event before giving up.
pub const LOCKSTEP_WAIT: Duration = Duration::from_secs(20);

impl Default for Upstream {
    fn default() -> Self {
        Self {
            healthy: AtomicBool::new(false),
            bodies: Mutex::default(),
            headers: Mutex::default(),
            lockstep: AtomicBool::new(false),
            acks: tokio::sync::Semaphore::new(0),
        }
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn full(s: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(s.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn json(status: u16, v: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(v.to_string()))
        .unwrap()
}

const USAGE: &str = r#"{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}"#;

/// An `Err` makes hyper drop the connection without answering (model "hangup": an
/// engine that dies between reading a request and answering it).
async fn handle(
    up: Arc<Upstream>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    if parts.method == hyper::Method::POST {
        up.bodies.lock().unwrap().push(v.clone());
        up.headers.lock().unwrap().push(parts.headers.clone());
    }
    if v["model"] == "hangup" {
        return Err(std::io::Error::other("engine gone"));
    }
    let resp = match parts.uri.path() {
        "/health" if up.healthy.load(Ordering::SeqCst) => json(200, serde_json::json!({})),
        "/health" => json(503, serde_json::json!({})),
        "/v1/models" => json(200, serde_json::json!({"data": [{"id": "fake"}]})),
        "/v1/completions" => {
            let mut r = json(
                200,
                serde_json::json!({
                    "choices": [{"index": 0, "text": "fake answer"}],
                    "usage": serde_json::from_str::<serde_json::Value>(USAGE).unwrap(),
                }),
            );
            // An end-to-end header for the client, and a hop-by-hop one that is not.
            let h = r.headers_mut();
            h.insert("x-engine", "fake".parse().unwrap());
            h.insert("keep-alive", "timeout=5".parse().unwrap());
            r
        }
        "/v1/chat/completions" if v["stream"] == true => sse(up, &v),
        "/v1/chat/completions" => json(
            200,
            serde_json::json!({
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
                "usage": serde_json::from_str::<serde_json::Value>(USAGE).unwrap(),
            }),
        ),
        _ => json(404, serde_json::json!({})),
    };
    Ok(resp)
}

/// `EVENTS` content chunks `EVENT_GAP` apart (or each after the client saw the one
/// before, in lockstep), then (when asked) the usage chunk, then `[DONE]`. Model "die"
/// breaks the stream off after two chunks.
fn sse(up: Arc<Upstream>, req: &serde_json::Value) -> Response<Body> {
    let include_usage = req["stream_options"]["include_usage"] == true;
    let die = req["model"] == "die";
    let lockstep = up.lockstep.load(Ordering::SeqCst);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
    tokio::spawn(async move {
        for i in 0..EVENTS {
            if die && i == 2 {
                let _ = tx.send(Err(std::io::Error::other("engine died"))).await;
                return;
            }
            let chunk = format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{i}\"}}}}]}}\n\n"
            );
            if tx.send(Ok(Frame::data(Bytes::from(chunk)))).await.is_err() {
                return;
            }
            if !lockstep {
                tokio::time::sleep(EVENT_GAP).await;
                continue;
            }
            match tokio::time::timeout(LOCKSTEP_WAIT, up.acks.acquire()).await {
                Ok(Ok(permit)) => permit.forget(),
                _ => {
                    let why = format!("the client never saw event {i}: held back");
                    let _ = tx.send(Err(std::io::Error::other(why))).await;
                    return;
                }
            }
        }
        if include_usage {
            let chunk = format!("data: {{\"choices\":[],\"usage\":{USAGE}}}\n\n");
            let _ = tx.send(Ok(Frame::data(Bytes::from(chunk)))).await;
        }
        let _ = tx
            .send(Ok(Frame::data(Bytes::from_static(b"data: [DONE]\n\n"))))
            .await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .body(StreamBody::new(stream).boxed())
        .unwrap()
}

/// Serve the fake on `port` until the test ends.
pub async fn start(port: u16) -> Arc<Upstream> {
    let up = Arc::new(Upstream::default());
    up.healthy.store(true, Ordering::SeqCst);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    let shared = up.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let up = shared.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(up.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    up
}
