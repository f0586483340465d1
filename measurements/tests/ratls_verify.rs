//! RA-TLS end to end through the library: a real TLS 1.3 server carrying a sim
//! quote, the rustls verifier, and `/attestation` on the same connection. Each
//! broken binding must be rejected with its own named reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
mod ratls_common;

use cocoon_measurements::digest::Digest48;
use cocoon_measurements::policy::Allowed;
use cocoon_measurements::ratls::{
    connect_and_attest, verify_attestation, verify_certificate, verify_certificate_at,
    CollateralSource, ConnectReport, RaTlsEvidence, RaTlsVerifierConfig,
};
use cocoon_measurements::verify::TrustRoot;
use ratls_common::{pki, policy, serve, Tamper, Worker, AT};

const NONCE: [u8; 32] = [0x6e; 32];

fn config(root: TrustRoot) -> RaTlsVerifierConfig {
    RaTlsVerifierConfig {
        trust_root: root,
        policy: policy(),
        collateral: CollateralSource::FromCertificate,
        at: Some(AT),
    }
}

fn sim_root() -> TrustRoot {
    TrustRoot::custom(pki(7).root_ca_der().to_vec()).unwrap()
}

fn connect(tamper: Tamper, config: RaTlsVerifierConfig) -> ConnectReport {
    let addr = serve(Worker::new(pki(7), tamper));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(connect_and_attest(
        &format!("https://{addr}"),
        config,
        &NONCE,
    ))
    .unwrap()
}

fn codes(r: &ConnectReport) -> Vec<&'static str> {
    r.reasons.iter().map(|r| r.code()).collect()
}

#[test]
fn accepted_with_the_sim_root() {
    let r = connect(Tamper::default(), config(sim_root()));
    assert!(r.accepted, "{:#?}", r.reasons);
    let cert = r.certificate.as_ref().unwrap();
    assert!(cert.accepted);
    let att = r.attestation.as_ref().unwrap();
    assert!(att.accepted);
    assert_eq!(att.runtime_events, ["config", "model", "engine-cmdline"]);
    let td = &att.quote.as_ref().unwrap().quote.td_report;
    assert_eq!(td.mrtd, ratls_common::mrtd());
    assert_eq!(td.rtmr3, att.runtime_log_replay);
    assert_eq!(
        att.claims.as_ref().unwrap().nonce.as_deref(),
        Some(&NONCE[..])
    );
}

#[test]
fn intel_root_rejects_a_sim_worker_at_the_handshake() {
    let r = connect(Tamper::default(), config(TrustRoot::Intel));
    assert!(!r.accepted);
    assert!(
        r.attestation.is_none(),
        "no request after a rejected handshake"
    );
    let c = codes(&r);
    assert!(c.contains(&"sim_not_trusted"), "{c:?}");
    // dcap-qvl's own failure is named too: the chain does not reach Intel's root.
    assert!(
        c.iter()
            .any(|x| ["root_ca", "pck_chain", "collateral_signer_chain", "crl"].contains(x)),
        "{c:?}"
    );
}

#[test]
fn foreign_sim_root_is_rejected() {
    let other = TrustRoot::custom(pki(8).root_ca_der().to_vec()).unwrap();
    let r = connect(Tamper::default(), config(other));
    assert!(!r.accepted);
    let c = codes(&r);
    assert!(!c.contains(&"sim_not_trusted"), "a root was given: {c:?}");
    assert!(
        c.iter()
            .any(|x| ["root_ca", "pck_chain", "collateral_signer_chain", "crl"].contains(x)),
        "{c:?}"
    );
}

#[test]
fn policy_mrtd_mismatch_is_named() {
    let mut cfg = config(sim_root());
    cfg.policy.registers.mrtd = Allowed::OneOf(vec![Digest48::sha384(b"other firmware")]);
    let r = connect(Tamper::default(), cfg);
    assert!(!r.accepted);
    assert_eq!(codes(&r), ["mrtd_mismatch"]);
}

#[test]
fn claims_key_other_than_certificate_key_is_named() {
    let r = connect(
        Tamper {
            claims_spki_other: true,
            ..Default::default()
        },
        config(sim_root()),
    );
    assert!(!r.accepted);
    assert_eq!(codes(&r), ["spki_mismatch"]);
}

#[test]
fn report_data_not_the_claims_is_named() {
    let r = connect(
        Tamper {
            report_data_wrong: true,
            ..Default::default()
        },
        config(sim_root()),
    );
    assert!(!r.accepted);
    assert_eq!(codes(&r), ["report_data_mismatch"]);
}

#[test]
fn tampered_runtime_log_is_named() {
    let r = connect(
        Tamper {
            runtime_log_tampered: true,
            ..Default::default()
        },
        config(sim_root()),
    );
    assert!(!r.accepted);
    assert!(r.certificate.as_ref().unwrap().accepted);
    let c = codes(&r);
    assert_eq!(c, ["runtime_log_digest"], "{:#?}", r.reasons);
    assert!(r.reasons[0].message.contains("\"model\""));
}

#[test]
fn nonce_mismatch_is_named() {
    let r = connect(
        Tamper {
            nonce_wrong: true,
            ..Default::default()
        },
        config(sim_root()),
    );
    assert!(!r.accepted);
    assert_eq!(codes(&r), ["nonce_mismatch"]);
}

#[test]
fn handshake_signed_by_another_key_is_named() {
    let r = connect(
        Tamper {
            wrong_tls_key: true,
            ..Default::default()
        },
        config(sim_root()),
    );
    assert!(!r.accepted);
    assert!(r.attestation.is_none());
    assert_eq!(codes(&r), ["tls_signature"]);
}

/// The same checks without TLS: certificate and response functions directly.
#[test]
fn direct_verification_and_collateral_sources() {
    let w = Worker::new(pki(7), Tamper::default());
    let cfg = config(sim_root());
    assert!(verify_certificate(&w.cert_der, &cfg).accepted);
    let (_, spki) = RaTlsEvidence::from_certificate_der(&w.cert_der).unwrap();
    let resp = w.attestation(&NONCE);
    assert!(verify_attestation(&resp, &spki, &NONCE, &cfg).accepted);

    // Fixed collateral works; no collateral anywhere is a named reason.
    let mut fixed = cfg.clone();
    fixed.collateral = CollateralSource::Fixed(Box::new(pki(7).collateral().clone()));
    let mut bare = resp.clone();
    bare.collateral = None;
    assert!(verify_attestation(&bare, &spki, &NONCE, &fixed).accepted);
    let r = verify_attestation(&bare, &spki, &NONCE, &cfg);
    assert_eq!(r.codes(), ["collateral_unavailable"]);

    // Outside the validity window: collateral expired.
    let mut late = cfg.clone();
    late.at = Some(ratls_common::NOT_AFTER + 1);
    let r = verify_certificate(&w.cert_der, &late);
    assert!(!r.accepted);
    assert!(
        r.codes().contains(&"collateral_expired"),
        "{:#?}",
        r.reasons
    );

    // Response fields that contradict the claims or the measured config.
    let mut lying = resp.clone();
    lying.wallet_address = "EQ-other".into();
    lying.config_toml.push_str("# edited\n");
    let r = verify_attestation(&lying, &spki, &NONCE, &cfg);
    assert_eq!(r.codes(), ["response_mismatch", "response_mismatch"]);

    // GPU evidence: served exactly as the claims bind it, or named.
    let mut gw = Worker::new(pki(7), Tamper::default());
    gw.gpu = Some(serde_json::json!([{"arch": "HOPPER", "evidence": "00ff", "nonce": "11"}]));
    let (_, gspki) = RaTlsEvidence::from_certificate_der(&gw.cert_der).unwrap();
    let bound = gw.attestation(&NONCE);
    let r = verify_attestation(&bound, &gspki, &NONCE, &cfg);
    assert!(r.accepted, "{:#?}", r.reasons);
    // Same evidence, keys in another order: still the same canonical digest.
    let mut reordered = bound.clone();
    reordered.gpu_evidence = Some(
        serde_json::from_str(r#"[{"nonce": "11", "evidence": "00ff", "arch": "HOPPER"}]"#).unwrap(),
    );
    assert!(verify_attestation(&reordered, &gspki, &NONCE, &cfg).accepted);
    let mut edited = bound.clone();
    edited.gpu_evidence =
        Some(serde_json::json!([{"arch": "HOPPER", "evidence": "00fe", "nonce": "11"}]));
    let r = verify_attestation(&edited, &gspki, &NONCE, &cfg);
    assert_eq!(r.codes(), ["response_mismatch"]);
    assert!(
        r.reasons[0].to_string().contains("gpu_evidence"),
        "{}",
        r.reasons[0]
    );
    let mut dropped = bound.clone();
    dropped.gpu_evidence = None;
    assert_eq!(
        verify_attestation(&dropped, &gspki, &NONCE, &cfg).codes(),
        ["response_mismatch"]
    );
    let mut unbound = resp.clone();
    unbound.gpu_evidence = bound.gpu_evidence.clone();
    assert_eq!(
        verify_attestation(&unbound, &spki, &NONCE, &cfg).codes(),
        ["response_mismatch"]
    );

    // A response for another connection's key.
    let r = verify_attestation(&resp, b"other key", &NONCE, &cfg);
    assert_eq!(r.codes(), ["spki_mismatch"]);

    // A tdx-labelled response still has its RTMR3 checked when extended.
    let mut other_log = resp.clone();
    other_log.runtime_event_log.pop();
    let r = verify_attestation(&other_log, &spki, &NONCE, &cfg);
    assert_eq!(r.codes(), ["runtime_log_replay", "runtime_log_rtmr3"]);

    // A certificate outside its validity period (judged at the given clock, not at
    // the collateral's time).
    let (evidence, _) = RaTlsEvidence::from_certificate_der(&w.cert_der).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    params.not_before = rcgen::date_time_ymd(1999, 1, 1);
    params.not_after = rcgen::date_time_ymd(2000, 1, 1);
    for (oid, content) in evidence.to_extensions() {
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(oid, content));
    }
    let old = params.self_signed(&w.key).unwrap().der().to_vec();
    let r = verify_certificate_at(&old, &cfg, AT);
    assert_eq!(r.codes(), ["certificate_validity"]);
    assert!(verify_certificate_at(&old, &cfg, 946_000_000).accepted);

    // Garbage certificate.
    let r = verify_certificate(b"not a certificate", &cfg);
    assert_eq!(r.codes(), ["certificate_format"]);
}

/// A sim worker under swtpm sends its TPM boot log; its RTMR0-2 are the log's TD
/// view. The verifier replays the log and compares it with the quote.
#[test]
fn boot_log_td_view_is_checked_against_the_quote() {
    use base64::Engine as _;
    use cocoon_measurements::eventlog::{EventLog, FormatChoice};
    use cocoon_measurements::ratls::BootLogFormat;
    let log = std::fs::read(common::swtpm_fixture("eventlog.bin")).unwrap();
    let view = EventLog::parse(&log, FormatChoice::Tpm)
        .unwrap()
        .td_view()
        .unwrap();
    let pki = pki(7);
    let w = Worker::new(pki.clone(), Tamper::default());
    let (_, spki) = RaTlsEvidence::from_certificate_der(&w.cert_der).unwrap();
    let mut cfg = config(sim_root());
    cfg.policy.registers.rtmr1 = Allowed::OneOf(vec![view.rtmr1]);
    cfg.policy.registers.rtmr2 = Allowed::OneOf(vec![view.rtmr2]);

    let respond = |rtmr0: Digest48| {
        let mut resp = w.attestation(&NONCE);
        let claims = resp.claims().unwrap();
        let mut td = pki.td_fields();
        td.mr_td = ratls_common::mrtd();
        td.rtmr = [
            rtmr0,
            view.rtmr1,
            view.rtmr2,
            claims.runtime_event_log_digest,
        ];
        td.report_data = claims.report_data();
        resp.quote_hex = hex::encode(pki.quote(&td).unwrap());
        resp.boot_event_log_b64 = Some(base64::engine::general_purpose::STANDARD.encode(&log));
        resp.boot_event_log_format = Some(BootLogFormat::Tpm);
        resp
    };
    let r = verify_attestation(&respond(view.rtmr0), &spki, &NONCE, &cfg);
    assert!(r.accepted, "{:#?}", r.reasons);
    assert_eq!(
        r.boot_log_registers,
        Some([view.rtmr0, view.rtmr1, view.rtmr2])
    );
    let r = verify_attestation(&respond(Digest48::ZERO), &spki, &NONCE, &cfg);
    assert_eq!(r.codes(), ["boot_log_mismatch"]);
    assert!(r.reasons[0].message.contains("rtmr0"));
    let mut no_format = respond(view.rtmr0);
    no_format.boot_event_log_format = None;
    let r = verify_attestation(&no_format, &spki, &NONCE, &cfg);
    assert_eq!(r.codes(), ["attestation_format"]);
}
