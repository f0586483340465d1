//! Simulated-TEE quotes go through the production verifier: accepted only when the
//! caller passes the sim root explicitly; a DEBUG TD and a register mismatch are
//! named by the policy layer. Times are fixed inside the sim PKI's window.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod common;

use cocoon_measurements::digest::Digest48;
use cocoon_measurements::policy::{Allowed, Policy};
use cocoon_measurements::sim::{SimPki, TdFields, TD_ATTR_DEBUG};
use cocoon_measurements::verify::{verify_quote, TrustRoot, Verdict};

const NOT_BEFORE: u64 = 1_760_000_000;
const NOT_AFTER: u64 = 1_800_000_000;
const AT: u64 = 1_780_000_000;

fn pki() -> SimPki {
    SimPki::from_seed([7u8; 32], NOT_BEFORE, NOT_AFTER).unwrap()
}

fn fields(pki: &SimPki) -> TdFields {
    let mut f = pki.td_fields();
    f.mr_td = Digest48::sha384(b"sim firmware");
    f.rtmr[1] = Digest48::sha384(b"sim uki");
    f.rtmr[2] = Digest48::sha384(b"sim cmdline");
    f
}

fn codes(v: &Verdict) -> Vec<&'static str> {
    v.reasons.iter().map(|r| r.code()).collect()
}

fn verify(pki: &SimPki, quote: &[u8], root: &TrustRoot, policy: &Policy) -> Verdict {
    verify_quote(quote, pki.collateral(), AT, root, policy, None).unwrap()
}

#[test]
fn sim_quote_accepted_only_with_the_sim_root_passed_explicitly() {
    let pki = pki();
    let quote = pki.quote(&fields(&pki)).unwrap();
    let sim_root = TrustRoot::custom(pki.root_ca_der().to_vec()).unwrap();

    let ok = verify(&pki, &quote, &sim_root, &Policy::default_unpinned());
    assert!(ok.accepted, "{:#?}", ok.reasons);
    assert_eq!(ok.tcb.as_ref().unwrap().status, "UpToDate");

    // The default verifier trusts Intel's root only: the simulated quote must fail
    // with a named crypto reason, never pass.
    let intel = verify(&pki, &quote, &TrustRoot::Intel, &Policy::default_unpinned());
    assert!(!intel.accepted);
    assert!(
        codes(&intel)
            .iter()
            .any(|c| ["root_ca", "crl", "pck_chain", "collateral_signer_chain"].contains(c)),
        "{:#?}",
        intel.reasons
    );

    // Another simulated platform's root does not vouch for this one either.
    let other = SimPki::from_seed([8u8; 32], NOT_BEFORE, NOT_AFTER).unwrap();
    let other_root = TrustRoot::custom(other.root_ca_der().to_vec()).unwrap();
    let v = verify(&pki, &quote, &other_root, &Policy::default_unpinned());
    assert!(!v.accepted, "a foreign sim root accepted the quote");
}

#[test]
fn debug_td_is_rejected_by_name() {
    let pki = pki();
    let mut f = fields(&pki);
    f.td_attributes |= TD_ATTR_DEBUG;
    let quote = pki.quote(&f).unwrap();
    let root = TrustRoot::custom(pki.root_ca_der().to_vec()).unwrap();
    let v = verify(&pki, &quote, &root, &Policy::default_unpinned());
    assert!(!v.accepted);
    // The signature is genuine: the only reason is the policy's DEBUG rule.
    assert_eq!(codes(&v), ["debug_enabled"], "{:#?}", v.reasons);
    assert!(v.quote.td_report.td_attributes.debug());

    let mut allow = Policy::default_unpinned();
    allow.td.allow_debug = true;
    let v = verify(&pki, &quote, &root, &allow);
    assert!(v.accepted, "{:#?}", v.reasons);
}

#[test]
fn pinned_policy_lists_every_mismatching_register() {
    let pki = pki();
    let f = fields(&pki);
    let quote = pki.quote(&f).unwrap();
    let root = TrustRoot::custom(pki.root_ca_der().to_vec()).unwrap();

    let mut policy = Policy::default_unpinned();
    policy.registers.mrtd = Allowed::OneOf(vec![f.mr_td]);
    policy.registers.rtmr1 = Allowed::OneOf(vec![f.rtmr[1]]);
    policy.registers.rtmr2 = Allowed::OneOf(vec![f.rtmr[2]]);
    assert!(verify(&pki, &quote, &root, &policy).accepted);

    policy.registers.mrtd = Allowed::OneOf(vec![Digest48::sha384(b"other firmware")]);
    policy.registers.rtmr2 = Allowed::OneOf(vec![Digest48::sha384(b"other cmdline")]);
    let v = verify(&pki, &quote, &root, &policy);
    assert_eq!(
        codes(&v),
        ["mrtd_mismatch", "rtmr2_mismatch"],
        "{:#?}",
        v.reasons
    );
}

#[test]
fn cli_trusts_the_sim_root_only_when_passed() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    pki.save(dir.path()).unwrap();
    let quote_path = dir.path().join("quote.bin");
    std::fs::write(&quote_path, pki.quote(&fields(&pki)).unwrap()).unwrap();
    let coll = dir.path().join("collateral.json");
    let at = AT.to_string();

    let run = |extra: &[&std::ffi::OsStr]| {
        let out = common::cocoon_measure()
            .args(["quote", "verify", "--json", "--at", &at, "--collateral"])
            .arg(&coll)
            .arg(&quote_path)
            .args(extra)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), v)
    };

    let (code, v) = run(&[]);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["verdict"], "rejected");

    let root = dir.path().join("root_ca.der");
    let (code, v) = run(&["--root-ca".as_ref(), root.as_os_str()]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["verdict"], "accepted");
    assert_eq!(v["tcb_status"], "UpToDate");
}
