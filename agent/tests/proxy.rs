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
use common::upstream::{self, Upstream, EVENTS, EVENT_GAP};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_events_are_forwarded_one_by_one_and_usage_is_stripped() {
    let (a, up, d) = agent("", true).await;
    ready(&a).await;
    let r = call(
        &a,
        "POST",
        "/v1/chat/completions",
        Some(r#"{"model":"fake","stream":true,"messages":[{"role":"user","content":"hi"}]}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/event-stream");
    // The agent asked the engine for usage...
    let sent = up.bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true);
    // ...and the client, who did not, never sees the usage chunk.
    let text = r.text();
    assert!(!text.contains("usage"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    // Each content event arrived in its own frame, spaced like the engine sent them:
    // nothing was held back and coalesced.
    let content: Vec<_> = r
        .frames
        .iter()
        .filter(|(_, b)| b.starts_with(b"data: {\"choices\":[{"))
        .collect();
    assert_eq!(content.len(), EVENTS, "frames: {:?}", r.frames);
    for pair in content.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= EVENT_GAP - Duration::from_millis(15), "gap {gap:?}");
    }
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
    let r = common::client::request_with_headers(
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
    let (a, _up, _d) = agent("[limits]\nmax_concurrent_requests = 1\n", true).await;
    ready(&a).await;
    let addr = a.local_addr;
    let at = a.issued_at;
    // A stream holds the only slot for EVENTS * 50 ms.
    let slow = tokio::spawn(async move {
        common::client::request(
            addr,
            common::verifier(true, at),
            "POST",
            "/v1/chat/completions",
            Some(br#"{"model":"fake","stream":true,"messages":[]}"#),
        )
        .await
        .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = call(
        &a,
        "POST",
        "/v1/completions",
        Some(r#"{"model":"fake","prompt":"x"}"#),
    )
    .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["type"], "too_many_requests");
    assert_eq!(slow.await.unwrap().status, 200);
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
