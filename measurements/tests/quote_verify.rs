//! Verification of the real quotes of `testdata/tdx` with dcap-qvl, and the named
//! reason each kind of tampering produces. Times are fixed inside the collateral
//! windows documented in testdata/README.md, never the wall clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod common;

use cocoon_measurements::policy::{Allowed, Policy, ReasonCode};
use cocoon_measurements::quote::Quote;
use cocoon_measurements::verify::{
    load_collateral_json, verify_quote, QuoteCollateralV3, TrustRoot, Verdict,
};

/// Inside 1750329147..=1752919234, where `tdx_quote` verifies.
const AT: u64 = 1751624190;
/// Inside 1771412331..=1774003274, the outdated quote's collateral window.
const AT_OUTDATED: u64 = 1772000000;
const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";

fn quote() -> Vec<u8> {
    std::fs::read(common::testdata("tdx/tdx_quote")).unwrap()
}

fn collateral() -> QuoteCollateralV3 {
    load_collateral_json(&std::fs::read(common::testdata("tdx/tdx_quote_collateral.json")).unwrap())
        .unwrap()
}

fn verify(raw: &[u8], coll: &QuoteCollateralV3, at: u64) -> Verdict {
    verify_quote(
        raw,
        coll,
        at,
        &TrustRoot::Intel,
        &Policy::default_unpinned(),
        None,
    )
    .unwrap()
}

fn codes(v: &Verdict) -> Vec<&'static str> {
    v.reasons.iter().map(|r| r.code()).collect()
}

/// The first reason is dcap-qvl's failure; `tcb_unknown` follows because there is
/// then no TCB status for the policy to accept.
fn assert_crypto_failure(v: &Verdict, code: ReasonCode) {
    assert!(!v.accepted);
    assert_eq!(codes(v), [code.code(), "tcb_unknown"], "{:#?}", v.reasons);
}

#[test]
fn real_quote_verifies_up_to_date() {
    let v = verify(&quote(), &collateral(), AT);
    assert!(v.accepted, "{:#?}", v.reasons);
    let tcb = v.tcb.as_ref().unwrap();
    assert_eq!(tcb.status, "UpToDate");
    assert!(tcb.advisory_ids.is_empty());
    assert_eq!(v.quote.td_report.mrtd.to_hex(), MRTD);
    // TCB info issueDate 2025-06-19T10:16:03Z.
    assert_eq!(tcb.tcb_info_issue_date, 1750328163);
}

#[test]
fn window_edges_are_inclusive() {
    let (q, c) = (quote(), collateral());
    assert!(verify(&q, &c, 1750329147).accepted);
    assert!(verify(&q, &c, 1752919234).accepted);
}

#[test]
fn hex_text_quote_verifies_like_the_binary() {
    let raw = quote();
    let text = format!("0x{}\n", hex::encode(&raw));
    let (decoded, _) = Quote::parse_file_content(text.as_bytes()).unwrap();
    assert_eq!(decoded, raw);
    assert!(verify(&decoded, &collateral(), AT).accepted);
}

#[test]
fn outdated_quote_has_no_matching_tcb_level() {
    let raw = std::fs::read(common::testdata("tdx/tdx_quote_outdated")).unwrap();
    let coll = load_collateral_json(
        &std::fs::read(common::testdata("tdx/tdx_quote_outdated_collateral.json")).unwrap(),
    )
    .unwrap();
    for at in [1771412331, AT_OUTDATED, 1774003274] {
        let v = verify(&raw, &coll, at);
        assert_crypto_failure(&v, ReasonCode::NoMatchingTcbLevel);
        assert!(v.reasons[0].message.contains("No matching TCB level found"));
    }
}

#[test]
fn flipped_bit_in_signed_mrtd_breaks_the_quote_signature() {
    let mut raw = quote();
    let q = Quote::parse(&raw).unwrap();
    // MRTD is at offset 136 of the TD report.
    raw[q.body_offset + 136] ^= 0x01;
    let v = verify(&raw, &collateral(), AT);
    assert_crypto_failure(&v, ReasonCode::QuoteSignature);

    // With a policy pinning the genuine MRTD, the altered value is named too.
    let mut p = Policy::default_unpinned();
    p.registers.mrtd = Allowed::OneOf(vec![MRTD.parse().unwrap()]);
    let v = verify_quote(&raw, &collateral(), AT, &TrustRoot::Intel, &p, None).unwrap();
    assert_eq!(
        codes(&v),
        ["quote_signature", "mrtd_mismatch", "tcb_unknown"]
    );
}

#[test]
fn flipped_bit_in_ecdsa_signature() {
    let mut raw = quote();
    let q = Quote::parse(&raw).unwrap();
    // Signature data: length (4 bytes), then the 64-byte ECDSA signature.
    raw[q.signed_len + 4 + 17] ^= 0x80;
    assert_crypto_failure(&verify(&raw, &collateral(), AT), ReasonCode::QuoteSignature);
}

#[test]
fn flipped_bit_in_debug_attribute_is_named_by_policy_too() {
    let mut raw = quote();
    let q = Quote::parse(&raw).unwrap();
    raw[q.body_offset + 120] |= 0x01; // TDATTRIBUTES.DEBUG
    let v = verify(&raw, &collateral(), AT);
    assert_eq!(
        codes(&v),
        ["quote_signature", "debug_enabled", "tcb_unknown"]
    );
}

/// Change one base64 character of the PEM PCK leaf certificate inside the quote's
/// certification data: a bit flip in its DER (A = 0b000000, B = 0b000001).
fn tamper_pck_leaf(raw: &mut [u8], chars_into_cert: usize) {
    let q = Quote::parse(raw).unwrap();
    let start = q.signature_data.pck_cert_data_offset;
    let pem = &raw[start..];
    let begin = pem
        .windows(27)
        .position(|w| w == b"-----BEGIN CERTIFICATE-----")
        .unwrap();
    let mut at = start + begin + 28 + chars_into_cert;
    while !raw[at].is_ascii_alphanumeric() {
        at += 1;
    }
    raw[at] = if raw[at] == b'A' { b'B' } else { b'A' };
}

#[test]
fn flipped_bit_in_pck_certificate() {
    for into in [300, 900] {
        let mut raw = quote();
        tamper_pck_leaf(&mut raw, into);
        let v = verify(&raw, &collateral(), AT);
        assert_crypto_failure(&v, ReasonCode::PckChain);
        assert!(v.reasons[0].message.contains("PCK certificate chain"));
    }
}

#[test]
fn flipped_bit_in_qe_report_and_attestation_key() {
    let raw = quote();
    let q = Quote::parse(&raw).unwrap();
    // After length, signature (64), attestation key (64), cert type (2), size (4).
    let qe_report = q.signed_len + 4 + 128 + 6;
    let mut r = raw.clone();
    r[qe_report + 64] ^= 1;
    assert_crypto_failure(
        &verify(&r, &collateral(), AT),
        ReasonCode::QeReportSignature,
    );
    let mut r = raw.clone();
    r[q.signed_len + 4 + 64 + 5] ^= 1;
    assert_crypto_failure(&verify(&r, &collateral(), AT), ReasonCode::QeReportData);
}

#[test]
fn after_next_update_the_collateral_is_expired() {
    let (q, c) = (quote(), collateral());
    // PCK CRL nextUpdate 2025-07-19T10:00:35Z = 1752919235 - 1.
    let v = verify(&q, &c, 1752919235);
    assert_crypto_failure(&v, ReasonCode::CollateralExpired);
    assert!(
        v.reasons[0].message.contains("CRL"),
        "{}",
        v.reasons[0].message
    );
    // TCB info nextUpdate 2025-07-19T10:16:03Z.
    let v = verify(&q, &c, 1752920164);
    assert_crypto_failure(&v, ReasonCode::CollateralExpired);
    assert!(v.reasons[0].message.contains("TCB info expired"));
    assert!(v.reasons[0].message.contains("2025-07-19T10:16:04Z"));
    // Before QE identity issueDate 2025-06-19T10:32:27Z.
    assert_crypto_failure(
        &verify(&q, &c, 1750329146),
        ReasonCode::CollateralNotYetValid,
    );
}

fn tampered_collateral(f: impl FnOnce(&mut QuoteCollateralV3)) -> QuoteCollateralV3 {
    let mut c = collateral();
    f(&mut c);
    c
}

#[test]
fn tampered_collateral_is_named() {
    let q = quote();
    let c = tampered_collateral(|c| {
        c.tcb_info = c.tcb_info.replacen("\"UpToDate\"", "\"OutOfDate\"", 1);
    });
    assert_crypto_failure(&verify(&q, &c, AT), ReasonCode::TcbInfoSignature);

    let c = tampered_collateral(|c| {
        c.qe_identity = c.qe_identity.replacen("\"version\":2", "\"version\":3", 1);
    });
    assert_crypto_failure(&verify(&q, &c, AT), ReasonCode::QeIdentitySignature);

    let c = tampered_collateral(|c| {
        let s = &mut c.tcb_info_issuer_chain;
        let at = s.find("-----BEGIN CERTIFICATE-----").unwrap() + 28 + 300;
        let new = if &s[at..at + 1] == "A" { "B" } else { "A" };
        s.replace_range(at..at + 1, new);
    });
    assert_crypto_failure(&verify(&q, &c, AT), ReasonCode::CollateralSignerChain);

    let c = tampered_collateral(|c| c.pck_crl[100] ^= 1);
    assert_crypto_failure(&verify(&q, &c, AT), ReasonCode::Crl);

    let c = tampered_collateral(|c| c.root_ca_crl[100] ^= 1);
    assert_crypto_failure(&verify(&q, &c, AT), ReasonCode::RootCa);
}

/// The certificates of the quote's PEM chain, DER, leaf first.
fn chain_der(raw: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    let q = Quote::parse(raw).unwrap();
    let pem = q.pck_chain_pem().unwrap();
    pem.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .map(|c| {
            let b64: String = c
                .split("-----END CERTIFICATE-----")
                .next()
                .unwrap()
                .split_whitespace()
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap()
        })
        .collect()
}

#[test]
fn custom_root_is_used_only_when_given() {
    let raw = quote();
    let certs = chain_der(&raw);
    assert_eq!(certs.len(), 3);
    // Intel's root passed explicitly behaves as the built-in one.
    let intel = TrustRoot::custom(certs[2].clone()).unwrap();
    let p = Policy::default_unpinned();
    assert!(
        verify_quote(&raw, &collateral(), AT, &intel, &p, None)
            .unwrap()
            .accepted
    );
    // Another root (here the PCK platform CA): the collateral does not chain to it.
    let other = TrustRoot::custom(certs[1].clone()).unwrap();
    let v = verify_quote(&raw, &collateral(), AT, &other, &p, None).unwrap();
    assert_crypto_failure(&v, ReasonCode::RootCa);
    // Not a certificate at all: refused before verification.
    assert!(TrustRoot::custom(b"not a certificate".to_vec()).is_err());
}
