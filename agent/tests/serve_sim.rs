//! An in-process agent with tee = "sim" and engine = "none" over real TLS 1.3:
//! health, metrics, 503 API routes, and RA-TLS + `/attestation` verified by the
//! measurements crate's client, accepted with the sim root and rejected without it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use cocoon_agent::boot;
use cocoon_measurements::claims::Claims;
use cocoon_measurements::ratls::{connect_and_attest, RaTlsEvidence};

async fn agent(dir: &std::path::Path) -> boot::RunningAgent {
    let cfg = common::load(dir, &common::sim_config(dir, "kind = \"none\"", ""));
    boot::start(cfg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_line_health_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path()).await;
    let line = a.ready_line();
    assert_eq!(
        line,
        format!(
            "cocoon-agent: ready tee=sim listen={} engine=none",
            a.local_addr
        )
    );

    let h = common::client::request(
        a.local_addr,
        common::verifier(true, a.issued_at),
        "GET",
        "/health",
        None,
    )
    .await
    .unwrap();
    assert_eq!(h.status, 200);
    assert_eq!(h.json()["engine"], "disabled");

    let m = common::client::request(
        a.local_addr,
        common::verifier(true, a.issued_at),
        "GET",
        "/metrics",
        None,
    )
    .await
    .unwrap();
    assert_eq!(m.status, 200);
    let text = m.text();
    for name in [
        "cocoon_agent_requests_total{route=\"/health\",status=\"200\"} 1",
        "cocoon_agent_prompt_tokens_total",
        "cocoon_agent_completion_tokens_total",
        "cocoon_agent_engine_restarts_total",
        "cocoon_agent_quote_latency_seconds_bucket",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_routes_answer_json_503_without_engine() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path()).await;
    for (method, path) in [
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("GET", "/v1/models"),
    ] {
        let body = (method == "POST").then_some(&br#"{"model":"m","messages":[]}"#[..]);
        let r = common::client::request(
            a.local_addr,
            common::verifier(true, a.issued_at),
            method,
            path,
            body,
        )
        .await
        .unwrap();
        assert_eq!(r.status, 503, "{path}");
        assert_eq!(r.headers["content-type"], "application/json");
        let v = r.json();
        assert_eq!(v["error"]["type"], "engine_unavailable", "{path}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no inference engine"));
    }
    let r = common::client::request(
        a.local_addr,
        common::verifier(true, a.issued_at),
        "GET",
        "/nope",
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 404);
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_and_attestation_verify_with_the_sim_root() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path()).await;

    // The certificate itself: evidence parses, claims name its key, no nonce.
    let (ev, spki) = RaTlsEvidence::from_certificate_der(a.certificate.as_ref()).unwrap();
    assert_eq!(ev.tee.as_str(), "sim");
    assert_eq!(ev.claims.tls_spki_der, spki);
    assert!(ev.claims.nonce.is_none());
    assert!(ev.collateral_json.is_some());
    assert!(ev.claims.gpu_evidence_digest.is_none());

    let url = format!("https://{}", a.local_addr);
    let nonce = [0x5au8; 32];
    let report = connect_and_attest(&url, common::verifier(true, a.issued_at), &nonce)
        .await
        .unwrap();
    assert!(report.accepted, "rejected: {:?}", report.reasons);
    let att = report.attestation.as_ref().unwrap();
    assert!(att.accepted, "{:?}", att.reasons);

    // The raw answer: the contract's fields, our nonce, the runtime log.
    let r = common::client::request(
        a.local_addr,
        common::verifier(true, a.issued_at),
        "GET",
        &format!("/attestation?nonce={}", hex::encode(nonce)),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["version"], 1);
    assert_eq!(v["tee"], "sim");
    assert_eq!(v["rtmr3_extended"], true);
    assert!(v["gpu_evidence"].is_null());
    assert!(v["boot_event_log_b64"].is_null());
    assert!(v["collateral"].is_object());
    let names: Vec<_> = v["runtime_event_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["config", "model", "engine-cmdline"]);
    assert_eq!(
        v["config_toml"].as_str().unwrap(),
        std::fs::read_to_string(dir.path().join("agent.toml")).unwrap()
    );
    let claims = Claims::decode(&hex::decode(v["claims_hex"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(claims.nonce.as_deref(), Some(&nonce[..]));
    assert_eq!(claims.tls_spki_der, spki);
    assert_eq!(
        v["receipt_public_key_hex"].as_str().unwrap(),
        hex::encode(claims.receipt_public_key)
    );

    let m = common::client::request(
        a.local_addr,
        common::verifier(true, a.issued_at),
        "GET",
        "/metrics",
        None,
    )
    .await
    .unwrap();
    assert!(
        m.text()
            .contains("cocoon_agent_quote_latency_seconds_count 2"),
        "{}",
        m.text()
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_the_sim_root_fails_the_handshake_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path()).await;
    let url = format!("https://{}", a.local_addr);
    let report = connect_and_attest(&url, common::verifier(false, a.issued_at), &[1u8; 16])
        .await
        .unwrap();
    assert!(!report.accepted);
    assert!(
        report.attestation.is_none(),
        "no request after a rejected handshake"
    );
    assert!(!report.reasons.is_empty());
    let codes: Vec<_> = report.reasons.iter().map(|r| r.code()).collect();
    assert!(codes.contains(&"sim_not_trusted"), "{codes:?}");
    // Plain requests fail at the handshake too.
    assert!(common::client::request(
        a.local_addr,
        common::verifier(false, a.issued_at),
        "GET",
        "/health",
        None
    )
    .await
    .is_err());
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_nonce_is_a_json_400() {
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path()).await;
    for q in [
        "/attestation",
        "/attestation?nonce=zz",
        "/attestation?nonce=",
    ] {
        let r = common::client::request(
            a.local_addr,
            common::verifier(true, a.issued_at),
            "GET",
            q,
            None,
        )
        .await
        .unwrap();
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(r.json()["error"]["type"], "invalid_request");
    }
    a.shutdown().await;
}
