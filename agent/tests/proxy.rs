//! The proxy path against a fake engine served by hyper in the test (the supervised
//! process is the fake vLLM in idle mode, so boot and supervision are the real ones):
//! forwarding, SSE event-by-event, usage injection and stripping, a stream the engine
//! breaks off, limits, and 503 while the engine is not ready.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cocoon_agent::boot::{self, RunningAgent};
use cocoon_agent::engine::{known_answer_digest, EngineState};
use common::upstream::{self, Upstream, EVENTS};

async fn agent(limits: &str, healthy: bool) -> (RunningAgent, Arc<Upstream>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let up = upstream::start(port).await;
    up.healthy.store(healthy, Ordering::SeqCst);
    let engine = format!(
        r#"kind = "vllm"
python = "python3"
model_dir = "/models/fake"
served_model_name = "fake"
port = {port}
probe_interval_secs = 1
stop_grace_secs = 2
[engine.known_answer]
prompt = "hello"
expected_sha256 = "{}"
[engine.env]
PYTHONPATH = {:?}
FAKE_ENGINE_IDLE = "1"
"#,
        known_answer_digest("fake answer"),
        common::fakevllm().display().to_string()
    );
    // Limits go before any table header so they stay top-level.
    let text = common::sim_config(dir.path(), &engine, limits);
    let a = boot::start(common::load(dir.path(), &text)).await.unwrap();
    (a, up, dir)
}

async fn ready(a: &RunningAgent) {
    let mut rx = a.state.engine.subscribe();
    tokio::time::timeout(
        Duration::from_secs(20),
        rx.wait_for(|s| *s == EngineState::Ready),
    )
    .await
    .expect("engine ready")
    .unwrap();
}

async fn call(
    a: &RunningAgent,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> common::client::Answer {
    common::client::request(
        a.local_addr,
        common::verifier(true, a.issued_at),
        method,
        path,
        body.map(str::as_bytes),
    )
    .await
    .unwrap()
}

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Receipts, prompt and completion tokens in the ledger under `dir`, which verifies.
fn ledger(dir: &tempfile::TempDir) -> (u64, u64, u64) {
    let r = cocoon_agent::ledger::verify(dir.path()).unwrap();
    assert!(r.ok, "{:?}", r.problems);
    (
        r.totals.receipts,
        r.totals.prompt_tokens,
        r.totals.completion_tokens,
    )
}

async fn tokens(a: &RunningAgent) -> (u64, u64) {
    let m = call(a, "GET", "/metrics", None).await.text();
    (
        counter(&m, "cocoon_agent_prompt_tokens_total"),
        counter(&m, "cocoon_agent_completion_tokens_total"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_stream_is_forwarded_byte_for_byte_and_billed() {
    let (a, up, d) = agent("", true).await;
    ready(&a).await;
    let r = call(
        &a,
        "POST",
        "/v1/completions",
        Some(r#"{"model":"fake","prompt":"x"}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "application/json");
    let v = r.json();
    assert_eq!(v["choices"][0]["text"], "fake answer");
    assert_eq!(v["usage"]["completion_tokens"], 5);
    // The request reached the engine unchanged (no stream_options added).
    let last = up.bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last, serde_json::json!({"model":"fake","prompt":"x"}));
    let models = call(&a, "GET", "/v1/models", None).await;
    assert_eq!(models.status, 200);
    assert_eq!(models.json()["data"][0]["id"], "fake");
    assert_eq!(tokens(&a).await, (3, 5));
    // The receipt was durable before the answer left; /v1/models is not billed.
    assert_eq!(ledger(&d), (1, 3, 5));
    a.shutdown().await;
}

/// Reads a response body one SSE event at a time.
struct Events {
    body: hyper::body::Incoming,
    buf: Vec<u8>,
    /// Body frames received so far.
    frames: usize,
}

impl Events {
    fn new(body: hyper::body::Incoming) -> Self {
        Self {
            body,
            buf: Vec::new(),
            frames: 0,
        }
    }

    /// The next complete event, or `None` at the end of the body. In lockstep the
    /// engine sends nothing more until the test acknowledges what it got, so an event
    /// the agent held back never arrives and this fails instead of waiting forever.
    async fn next(&mut self) -> Option<Vec<u8>> {
        use http_body_util::BodyExt as _;
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                return Some(self.buf.drain(..end + 2).collect());
            }
            let frame = tokio::time::timeout(upstream::LOCKSTEP_WAIT, self.body.frame())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no complete event arrived; held back? have {:?}",
                        String::from_utf8_lossy(&self.buf)
                    )
                });
            match frame {
                None => {
                    assert!(self.buf.is_empty(), "body ended inside an event");
                    return None;
                }
                Some(f) => {
                    self.frames += 1;
                    if let Ok(d) = f.expect("body frame").into_data() {
                        self.buf.extend_from_slice(&d);
                    }
                }
            }
        }
    }
}

async fn open_stream(
    a: &RunningAgent,
    body: &str,
) -> (hyper::StatusCode, hyper::HeaderMap, Events) {
    let (status, headers, body) = common::client::open(
        a.local_addr,
        common::verifier(true, a.issued_at),
        "POST",
        "/v1/chat/completions",
        Some(body.as_bytes()),
        &[],
    )
    .await
    .unwrap();
    (status, headers, Events::new(body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_events_are_forwarded_one_by_one_and_usage_is_stripped() {
    let (a, up, d) = agent("", true).await;
    ready(&a).await;
    // The engine sends each event only after the client has seen the one before: the
    // stream completes only if the agent forwards every event on its own, at once.
    up.lockstep.store(true, Ordering::SeqCst);
    let (status, headers, mut events) = open_stream(
        &a,
        r#"{"model":"fake","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let mut seen = Vec::new();
    while let Some(ev) = events.next().await {
        let ev = String::from_utf8(ev).unwrap();
        if ev.starts_with("data: {\"choices\":[{") {
            // Nothing of the next event can be here yet: the engine has not sent it.
            assert!(events.buf.is_empty());
            up.acks.add_permits(1);
        }
        seen.push(ev);
    }
    // The agent asked the engine for usage...
    let sent = up.bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true);
    // ...and the client, who did not, never sees the usage chunk.
    let content = seen.iter().filter(|e| e.contains("\"delta\"")).count();
    assert_eq!(content, EVENTS, "{seen:?}");
    assert!(!seen.iter().any(|e| e.contains("usage")), "{seen:?}");
    assert_eq!(seen.last().unwrap(), "data: [DONE]\n\n", "{seen:?}");
    assert!(events.frames >= EVENTS, "{} frames", events.frames);
    assert_eq!(tokens(&a).await, (3, 5));
    assert_eq!(ledger(&d), (1, 3, 5));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_asked_for_usage_gets_it() {
    let (a, _up, _d) = agent("", true).await;
    ready(&a).await;
    let r = call(
        &a,
        "POST",
        "/v1/chat/completions",
        Some(r#"{"model":"fake","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#),
    )
    .await;
    let text = r.text();
    assert!(text.contains("\"usage\":{\"prompt_tokens\":3"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_dying_mid_stream_ends_with_an_error_event_and_no_receipt() {
    let (a, _up, d) = agent("", true).await;
    ready(&a).await;
    let r = call(
        &a,
        "POST",
        "/v1/chat/completions",
        Some(r#"{"model":"die","stream":true,"messages":[]}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(text.contains("t0") && text.contains("t1"), "{text}");
    assert!(text.contains("event: error\ndata: {\"error\""), "{text}");
    assert!(text.contains("engine_failure"), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert_eq!(tokens(&a).await, (0, 0));
    assert_eq!(ledger(&d), (0, 0, 0));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_headers_pass_and_hop_by_hop_ones_do_not() {
    let (a, up, _d) = agent("", true).await;
    ready(&a).await;
    let (status, headers, body) = common::client::open(
        a.local_addr,
        common::verifier(true, a.issued_at),
        "POST",
        "/v1/completions",
        Some(br#"{"model":"fake","prompt":"x"}"#),
        &[
            ("x-test", "1"),
            ("keep-alive", "timeout=1"),
            ("proxy-connection", "keep-alive"),
        ],
    )
    .await
    .unwrap();
    let r = common::client::Answer::read(status, headers, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = up.headers.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen["x-test"], "1");
    assert_eq!(seen["content-type"], "application/json");
    assert_eq!(seen["content-length"], "29");
    assert!(seen.get("keep-alive").is_none(), "{seen:?}");
    assert!(seen.get("proxy-connection").is_none(), "{seen:?}");
    // The engine's address, not the client's `localhost`.
    assert!(
        seen["host"].to_str().unwrap().starts_with("127.0.0.1:"),
        "{seen:?}"
    );
    assert_eq!(r.headers["x-engine"], "fake");
    assert!(r.headers.get("keep-alive").is_none(), "{:?}", r.headers);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_that_hangs_up_is_a_json_503_and_not_billed() {
    // What a client sees in the moment between an engine crash and its supervisor
    // noticing: the same answer as during the restart, never a bare 502.
    let (a, _up, d) = agent("", true).await;
    ready(&a).await;
    let r = call(
        &a,
        "POST",
        "/v1/completions",
        Some(r#"{"model":"hangup","prompt":"x"}"#),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("\"engine_unavailable\""), "{}", r.text());
    assert_eq!(ledger(&d), (0, 0, 0));
    // The next request gets a fresh connection and is served.
    let r = call(
        &a,
        "POST",
        "/v1/completions",
        Some(r#"{"model":"fake","prompt":"x"}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limit_is_a_json_413() {
    let (a, _up, _d) = agent("[limits]\nmax_body_bytes = 1024\n", true).await;
    ready(&a).await;
    let big = format!(r#"{{"model":"fake","prompt":"{}"}}"#, "x".repeat(2000));
    let r = call(&a, "POST", "/v1/completions", Some(&big)).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["type"], "request_too_large");
    let ok = call(
        &a,
        "POST",
        "/v1/completions",
        Some(r#"{"model":"fake","prompt":"x"}"#),
    )
    .await;
    assert_eq!(ok.status, 200);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_is_a_json_429() {
    let (a, up, _d) = agent("[limits]\nmax_concurrent_requests = 1\n", true).await;
    ready(&a).await;
    // A stream holds the only slot: in lockstep the engine sends nothing after its
    // first event until the test says so.
    up.lockstep.store(true, Ordering::SeqCst);
    let (status, _, mut slow) =
        open_stream(&a, r#"{"model":"fake","stream":true,"messages":[]}"#).await;
    assert_eq!(status, 200);
    assert!(slow.next().await.is_some());
    let r = call(
        &a,
        "POST",
        "/v1/completions",
        Some(r#"{"model":"fake","prompt":"x"}"#),
    )
    .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["type"], "too_many_requests");
    // Let the stream finish.
    up.acks.add_permits(EVENTS);
    while slow.next().await.is_some() {}
    // The slot is free again.
    let r = call(
        &a,
        "POST",
        "/v1/completions",
        Some(r#"{"model":"fake","prompt":"x"}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_not_ready_is_a_json_503_until_it_is() {
    let (a, up, _d) = agent("", false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.state.engine.state(), EngineState::Starting);
    let r = call(
        &a,
        "POST",
        "/v1/completions",
        Some(r#"{"model":"fake","prompt":"x"}"#),
    )
    .await;
    assert_eq!(r.status, 503);
    let v = r.json();
    assert_eq!(v["error"]["type"], "engine_unavailable");
    assert!(v["error"]["message"].as_str().unwrap().contains("starting"));
    assert_eq!(
        call(&a, "GET", "/health", None).await.json()["engine"],
        "starting"
    );
    up.healthy.store(true, Ordering::SeqCst);
    ready(&a).await;
    let r = call(
        &a,
        "POST",
        "/v1/completions",
        Some(r#"{"model":"fake","prompt":"x"}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    a.shutdown().await;
}
