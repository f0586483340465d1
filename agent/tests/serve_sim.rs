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

/// The dev image boots with swtpm: RTMR0-2 of the sim quote come from the TPM log's
/// TD view, and the log is served so a verifier can replay it against the quote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpm_log_gives_rtmr0_2_and_is_served() {
    let log = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../measurements/tests/fixtures/swtpm-uki-boot/eventlog.bin");
    let dir = tempfile::tempdir().unwrap();
    let text = common::sim_config(dir.path(), "kind = \"none\"", "").replace(
        &format!("{:?}", dir.path().join("no-tpm-log").display().to_string()),
        &format!("{:?}", log.display().to_string()),
    );
    let a = boot::start(common::load(dir.path(), &text)).await.unwrap();
    let nonce = [7u8; 8];
    let report = connect_and_attest(
        &format!("https://{}", a.local_addr),
        common::verifier(true, a.issued_at),
        &nonce,
    )
    .await
    .unwrap();
    assert!(report.accepted, "{:?}", report.reasons);

    let r = common::client::request(
        a.local_addr,
        common::verifier(true, a.issued_at),
        "GET",
        "/attestation?nonce=0707",
        None,
    )
    .await
    .unwrap();
    let v = r.json();
    assert_eq!(v["boot_event_log_format"], "tpm");
    use base64::Engine as _;
    let served = base64::engine::general_purpose::STANDARD
        .decode(v["boot_event_log_b64"].as_str().unwrap())
        .unwrap();
    let bytes = std::fs::read(&log).unwrap();
    assert_eq!(served, bytes);
    // The quote's RTMR0-2 are the log's TD view.
    let view = cocoon_measurements::eventlog::EventLog::parse(
        &bytes,
        cocoon_measurements::eventlog::FormatChoice::Tpm,
    )
    .unwrap()
    .td_view()
    .unwrap();
    let quote = hex::decode(v["quote_hex"].as_str().unwrap()).unwrap();
    let q = cocoon_measurements::quote::Quote::parse(&quote).unwrap();
    assert_eq!(q.td_report.rtmr0, view.rtmr0);
    assert_eq!(q.td_report.rtmr1, view.rtmr1);
    assert_eq!(q.td_report.rtmr2, view.rtmr2);
    // RTMR3 is the runtime log's replay.
    let events: Vec<cocoon_measurements::ratls::RuntimeEvent> =
        serde_json::from_value(v["runtime_event_log"].clone()).unwrap();
    assert_eq!(
        q.td_report.rtmr3,
        cocoon_measurements::ratls::replay(&events)
    );
    a.shutdown().await;
}
