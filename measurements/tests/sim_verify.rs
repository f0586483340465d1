//! Simulated TDX quotes against the real verifier (dcap-qvl 0.7.1).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use cocoon_measurements::sim::{SimPki, TdFields, TD_ATTR_DEBUG};
use cocoon_measurements::Digest48;
use dcap_qvl::verify::{QuoteVerifier, VerifiedReport};
use dcap_qvl::QuoteCollateralV3;

/// 2025-06-15T15:06:40Z; the window is 30 days, checks happen one day in.
const NOT_BEFORE: u64 = 1_750_000_000;
const NOT_AFTER: u64 = NOT_BEFORE + 30 * 86_400;
const NOW: u64 = NOT_BEFORE + 86_400;

const HEADER_LEN: usize = 48;
const BODY_LEN: usize = 584;

fn pki(seed: u8) -> SimPki {
    SimPki::from_seed([seed; 32], NOT_BEFORE, NOT_AFTER).unwrap()
}

fn td(pki: &SimPki) -> TdFields {
    let mut td = pki.td_fields();
    td.mr_td = Digest48([0x11; 48]);
    td.rtmr = [
        Digest48([0x20; 48]),
        Digest48([0x21; 48]),
        Digest48([0x22; 48]),
        Digest48([0x33; 48]),
    ];
    td.report_data = [0x5a; 64];
    td
}

fn verify_sim(pki: &SimPki, quote: &[u8], now: u64) -> anyhow::Result<VerifiedReport> {
    QuoteVerifier::new(pki.root_ca_der().to_vec()).verify(quote, pki.collateral(), now)
}

/// The whole anyhow context chain, where dcap-qvl puts the reason.
fn chain(e: &anyhow::Error) -> String {
    format!("{e:#}")
}

fn expect_err(result: anyhow::Result<VerifiedReport>, needle: &str) -> String {
    let e = result.expect_err("verification must fail");
    let msg = chain(&e);
    assert!(msg.contains(needle), "expected {needle:?} in {msg:?}");
    msg
}

#[test]
fn sim_quote_verifies_up_to_date_with_its_fields() {
    let pki = pki(1);
    let fields = td(&pki);
    let quote = pki.quote(&fields).unwrap();
    assert_eq!(&quote[..2], &4u16.to_le_bytes(), "quote version 4");

    let report = verify_sim(&pki, &quote, NOW).unwrap();
    assert_eq!(report.status, "UpToDate");
    assert!(report.advisory_ids.is_empty(), "{:?}", report.advisory_ids);
    assert_eq!(report.ppid, pki.platform().ppid.to_vec());
    let body = report.report.as_td10().expect("TD report 1.0");
    assert_eq!(body.mr_td, [0x11; 48]);
    assert_eq!(body.rt_mr0, [0x20; 48]);
    assert_eq!(body.rt_mr3, [0x33; 48]);
    assert_eq!(body.report_data, [0x5a; 64]);
    assert_eq!(body.tee_tcb_svn, pki.platform().tee_tcb_svn);
    assert_eq!(u64::from_le_bytes(body.td_attributes), fields.td_attributes);
    assert_eq!(u64::from_le_bytes(body.xfam), fields.xfam);
}

#[test]
fn sim_quote_parses_as_v4_with_nested_pck_chain() {
    let pki = pki(1);
    let quote = pki.quote(&td(&pki)).unwrap();
    let parsed = dcap_qvl::quote::Quote::parse(&quote).unwrap();
    assert_eq!(parsed.header.version, 4);
    assert_eq!(parsed.header.attestation_key_type, 2);
    assert_eq!(parsed.header.tee_type, 0x81);
    assert_eq!(parsed.header.qe_vendor_id, dcap_qvl::INTEL_QE_VENDOR_ID);
    let dcap_qvl::quote::AuthData::V4(auth) = &parsed.auth_data else {
        panic!("v4 auth data expected");
    };
    assert_eq!(auth.certification_data.cert_type, 6);
    assert_eq!(auth.qe_report_data.certification_data.cert_type, 5);
    assert_eq!(
        auth.ecdsa_attestation_key.to_vec(),
        pki.attestation_public_key()
    );
    assert_eq!(
        parsed.raw_cert_chain().unwrap(),
        pki.pck_chain_pem().as_bytes()
    );
    let chain = dcap_qvl::intel::extract_cert_chain(&parsed).unwrap();
    assert_eq!(chain.len(), 3);
    assert_eq!(chain[2], pki.root_ca_der());
    let ext = dcap_qvl::intel::parse_pck_extension(&chain[0]).unwrap();
    assert_eq!(ext.fmspc, pki.platform().fmspc);
    assert_eq!(ext.cpu_svn, pki.platform().cpu_svn);
    assert_eq!(ext.pce_svn, pki.platform().pce_svn);
    assert_eq!(ext.sgx_type, 1);
    assert_eq!(ext.smt_enabled, Some(true));
    assert_eq!(
        dcap_qvl::intel::pck_ca(&chain[0]).unwrap(),
        dcap_qvl::config::PckCa::Platform
    );
    // Exactly the TD 1.0 layout: header, 584-byte body, 4-byte length, signature data.
    let sig_len = u32::from_le_bytes(quote[632..636].try_into().unwrap()) as usize;
    assert_eq!(quote.len(), HEADER_LEN + BODY_LEN + 4 + sig_len);
}

#[test]
fn intel_root_rejects_sim_quote() {
    let pki = pki(1);
    let quote = pki.quote(&td(&pki)).unwrap();
    // The root CA CRL is signed by the simulated root, not Intel's.
    let msg = expect_err(
        QuoteVerifier::new_prod().verify(&quote, pki.collateral(), NOW),
        "Failed to parse root CA CRL",
    );
    assert!(msg.contains("InvalidCrlSignatureForPublicKey"), "{msg}");
    expect_err(
        dcap_qvl::verify::verify(&quote, pki.collateral(), NOW),
        "Failed to parse root CA CRL",
    );
}

#[test]
fn intel_collateral_and_root_reject_sim_quote() {
    // Genuine Intel collateral at a time it is valid: the sim PCK chain has no path to
    // Intel's root.
    let collateral: QuoteCollateralV3 = serde_json::from_slice(
        &std::fs::read(common::testdata("tdx/tdx_quote_collateral.json")).unwrap(),
    )
    .unwrap();
    let real_now = 1_751_624_190;
    let real_quote = std::fs::read(common::testdata("tdx/tdx_quote")).unwrap();
    assert_eq!(
        dcap_qvl::verify::verify(&real_quote, &collateral, real_now)
            .unwrap()
            .status,
        "UpToDate",
        "the real quote is the control"
    );
    let pki = SimPki::from_seed([1; 32], real_now - 86_400, real_now + 86_400).unwrap();
    let quote = pki.quote(&td(&pki)).unwrap();
    let msg = expect_err(
        dcap_qvl::verify::verify(&quote, &collateral, real_now),
        "Failed to verify certificate chain",
    );
    assert!(msg.contains("UnknownIssuer"), "{msg}");
}

#[test]
fn another_sim_root_rejects_quote() {
    let a = pki(1);
    let b = pki(2);
    assert_ne!(a.root_ca_der(), b.root_ca_der());
    let quote_b = b.quote(&td(&b)).unwrap();
    assert!(verify_sim(&b, &quote_b, NOW).is_ok(), "control");
    // Verifier trusts A and holds A's collateral: B's PCK chain names the same issuers
    // (every sim PKI does) but A's keys did not sign it.
    let msg = expect_err(
        QuoteVerifier::new(a.root_ca_der().to_vec()).verify(&quote_b, a.collateral(), NOW),
        "Failed to verify certificate chain",
    );
    assert!(msg.contains("InvalidSignatureForPublicKey"), "{msg}");
    // Verifier trusts A but is handed B's collateral.
    expect_err(
        QuoteVerifier::new(a.root_ca_der().to_vec()).verify(&quote_b, b.collateral(), NOW),
        "Failed to parse root CA CRL",
    );
}

#[test]
fn validity_window_is_half_open() {
    let pki = pki(1);
    let quote = pki.quote(&td(&pki)).unwrap();
    assert!(verify_sim(&pki, &quote, NOT_BEFORE).is_ok());
    assert!(verify_sim(&pki, &quote, NOT_AFTER - 1).is_ok());
    expect_err(
        verify_sim(&pki, &quote, NOT_BEFORE - 1),
        "TCBInfo issue date is in the future",
    );
    // At nextUpdate the CRLs count as expired (webpki: time >= nextUpdate), and dcap-qvl
    // checks the root against its CRL before anything else.
    expect_err(verify_sim(&pki, &quote, NOT_AFTER), "CrlExpired");
    expect_err(verify_sim(&pki, &quote, NOT_AFTER + 1), "CrlExpired");
    expect_err(
        verify_sim(&pki, &quote, NOT_AFTER + 365 * 86_400),
        "CrlExpired",
    );
}

#[test]
fn flipped_bits_are_rejected() {
    let pki = pki(1);
    let quote = pki.quote(&td(&pki)).unwrap();
    // Body: MRTD (offset 48+136), RTMR3 (48+472), last REPORTDATA byte.
    for offset in [
        HEADER_LEN + 136,
        HEADER_LEN + 472,
        HEADER_LEN + BODY_LEN - 1,
    ] {
        let mut bad = quote.clone();
        bad[offset] ^= 0x01;
        expect_err(
            verify_sim(&pki, &bad, NOW),
            "ISV enclave report signature is invalid",
        );
    }
    // QE report, inside the certification data: header, body, length, signature (64),
    // attestation key (64), cert type (2), size (4), then 384 report bytes.
    let qe_report = HEADER_LEN + BODY_LEN + 4 + 64 + 64 + 6;
    let mut bad = quote.clone();
    bad[qe_report + 100] ^= 0x80;
    expect_err(
        verify_sim(&pki, &bad, NOW),
        "Signature is invalid for qe_report",
    );
    // Attestation key: the QE report no longer binds it.
    let mut bad = quote.clone();
    bad[HEADER_LEN + BODY_LEN + 4 + 64 + 5] ^= 0x01;
    expect_err(verify_sim(&pki, &bad, NOW), "QE report hash mismatch");
}

#[test]
fn debug_td_needs_allow_debug() {
    let pki = pki(1);
    let mut fields = td(&pki);
    fields.td_attributes |= TD_ATTR_DEBUG;
    let quote = pki.quote(&fields).unwrap();
    expect_err(verify_sim(&pki, &quote, NOW), "Debug mode is enabled");
    let report = QuoteVerifier::new(pki.root_ca_der().to_vec())
        .allow_debug(true)
        .verify(&quote, pki.collateral(), NOW)
        .unwrap();
    assert_eq!(report.status, "UpToDate");
    let attrs = u64::from_le_bytes(report.report.as_td10().unwrap().td_attributes);
    assert_eq!(attrs & TD_ATTR_DEBUG, TD_ATTR_DEBUG);
}

#[test]
fn older_tdx_module_is_out_of_date() {
    let pki = pki(1);
    let mut fields = td(&pki);
    fields.tee_tcb_svn[0] -= 1; // module ISVSVN below the UpToDate level
    let quote = pki.quote(&fields).unwrap();
    let report = verify_sim(&pki, &quote, NOW).unwrap();
    assert_eq!(report.status, "OutOfDate");
    assert_eq!(report.advisory_ids, vec!["SIM-SA-00001".to_string()]);
}

#[test]
fn generation_is_deterministic() {
    let a = pki(7);
    let b = pki(7);
    assert_eq!(a.root_ca_der(), b.root_ca_der());
    assert_eq!(a.collateral(), b.collateral());
    let fields = td(&a);
    assert_eq!(a.quote(&fields).unwrap(), b.quote(&fields).unwrap());
}

#[test]
fn window_past_2049_uses_generalized_time_and_verifies() {
    // RFC 5280 switches certificate times to GeneralizedTime from 2050; webpki and
    // dcap-qvl accept both.
    let not_after = 2_600_000_000; // 2052-05-22
    let pki = SimPki::from_seed([4; 32], NOT_BEFORE, not_after).unwrap();
    let quote = pki.quote(&td(&pki)).unwrap();
    assert_eq!(
        verify_sim(&pki, &quote, 2_599_999_999).unwrap().status,
        "UpToDate"
    );
    expect_err(verify_sim(&pki, &quote, not_after), "CrlExpired");
}

#[test]
fn empty_window_is_an_error() {
    let err = SimPki::from_seed([1; 32], NOT_AFTER, NOT_BEFORE).unwrap_err();
    assert!(
        err.to_string().contains("validity window is empty"),
        "{err}"
    );
}

#[test]
fn rough_timing() {
    let t = std::time::Instant::now();
    let pki = pki(3);
    let generated = t.elapsed();
    let t = std::time::Instant::now();
    let quote = pki.quote(&td(&pki)).unwrap();
    let quoted = t.elapsed();
    let t = std::time::Instant::now();
    verify_sim(&pki, &quote, NOW).unwrap();
    eprintln!(
        "sim timing: generate {generated:?}, quote {quoted:?}, verify {:?}",
        t.elapsed()
    );
}
