//! Policies: loading (fail closed), every rule on the real quote, generation from
//! measurements, and the CLI.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod common;

use cocoon_measurements::claims::{example_claims, Claims};
use cocoon_measurements::digest::Digest48;
use cocoon_measurements::expected::{ExpectedMeasurements, Inputs, MEASUREMENTS_FORMAT};
use cocoon_measurements::policy::{check, Evidence, Policy, PolicyError};
use cocoon_measurements::quote::Quote;
use cocoon_measurements::verify::{
    load_collateral_json, verify_quote, TcbFacts, TrustRoot, Verdict,
};

const AT: u64 = 1751624190;
const MRTD: &str = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7";
const RTMR0: &str = "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0";
const RTMR1: &str = "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378";
const RTMR2: &str = "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132";
const REPORT_DATA: &str = "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20";
const WRONG: &str = "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001";

/// A policy matching the real quote exactly, with placeholders to break.
fn policy_text(mrtd: &str, rtmr0: &str, rtmr1: &str, extra_tcb: &str, report_data: &str) -> String {
    format!(
        r#"
version = 1
[registers]
mrtd = ["{mrtd}"]
rtmr0 = {rtmr0}
rtmr1 = ["{rtmr1}"]
rtmr2 = ["{RTMR2}"]
rtmr3 = ["{zero}"]
[td]
allow_debug = false
xfam = ["0x00000000000602e7"]
[tcb]
accepted_statuses = ["UpToDate"]
{extra_tcb}
[report_data]
{report_data}
"#,
        zero = "0".repeat(96)
    )
}

fn exact() -> String {
    format!("binding = \"exact\"\nvalue = \"{REPORT_DATA}\"")
}

fn verify_with(policy: &Policy, claims: Option<&Claims>) -> Verdict {
    let raw = std::fs::read(common::testdata("tdx/tdx_quote")).unwrap();
    let coll = load_collateral_json(
        &std::fs::read(common::testdata("tdx/tdx_quote_collateral.json")).unwrap(),
    )
    .unwrap();
    verify_quote(&raw, &coll, AT, &TrustRoot::Intel, policy, claims).unwrap()
}

fn codes(v: &Verdict) -> Vec<&'static str> {
    v.reasons.iter().map(|r| r.code()).collect()
}

#[test]
fn exact_policy_accepts_the_real_quote() {
    let p = Policy::from_toml(&policy_text(
        MRTD,
        &format!("[\"{RTMR0}\"]"),
        RTMR1,
        "",
        &exact(),
    ))
    .unwrap();
    let v = verify_with(&p, None);
    assert!(v.accepted, "{:#?}", v.reasons);
}

#[test]
fn mrtd_mismatch_is_the_only_reason() {
    let p = Policy::from_toml(&policy_text(WRONG, "\"any\"", RTMR1, "", &exact())).unwrap();
    let v = verify_with(&p, None);
    assert!(!v.accepted);
    assert_eq!(codes(&v), ["mrtd_mismatch"]);
    let r = &v.reasons[0];
    assert_eq!(r.expected.as_deref(), Some(WRONG));
    assert_eq!(r.found.as_deref(), Some(MRTD));
    assert!(r.message.contains(MRTD) && r.message.contains(WRONG));
}

#[test]
fn several_mismatches_are_all_listed() {
    let text = policy_text(
        WRONG,
        &format!("[\"{WRONG}\"]"),
        WRONG,
        "max_collateral_age_secs = 86400",
        &format!("binding = \"exact\"\nvalue = \"{}\"", "00".repeat(64)),
    )
    .replace(
        "xfam = [\"0x00000000000602e7\"]",
        "xfam = [\"0x00000000000000e7\"]",
    )
    .replace(
        "accepted_statuses = [\"UpToDate\"]",
        "accepted_statuses = [\"OutOfDate\"]",
    );
    let p = Policy::from_toml(&text).unwrap();
    let v = verify_with(&p, None);
    assert_eq!(
        codes(&v),
        [
            "mrtd_mismatch",
            "rtmr0_mismatch",
            "rtmr1_mismatch",
            "xfam_mismatch",
            "tcb_status",
            "collateral_too_old",
            "report_data_mismatch",
        ]
    );
    // TCB info issued 2025-06-19T10:16:03Z (1750328163): 1296027 s before AT.
    let age = v
        .reasons
        .iter()
        .find(|r| r.code() == "collateral_too_old")
        .unwrap();
    assert_eq!(age.found.as_deref(), Some("1296027 s"));
}

#[test]
fn claims_binding() {
    let text = policy_text(
        MRTD,
        "\"any\"",
        RTMR1,
        "",
        "binding = \"claims_v1\"\nrequire_nonce = true",
    );
    let p = Policy::from_toml(&text).unwrap();
    assert_eq!(codes(&verify_with(&p, None)), ["claims_missing"]);
    let mut c = example_claims();
    c.nonce = None;
    // These claims are not what the real quote's REPORTDATA commits to.
    assert_eq!(
        codes(&verify_with(&p, Some(&c))),
        ["claims_incomplete", "report_data_mismatch"]
    );
}

fn facts(status: &str, advisories: &[&str]) -> TcbFacts {
    TcbFacts {
        status: status.into(),
        advisory_ids: advisories.iter().map(|s| s.to_string()).collect(),
        tcb_info_issue_date: 1750328163,
        collateral_expires: 1752919234,
        platform_tcb_date: 1700000000,
        fmspc: "00806f050000".into(),
        tcb_eval_data_number: 17,
    }
}

#[test]
fn advisories_statuses_and_claims_on_synthetic_facts() {
    let raw = std::fs::read(common::testdata("tdx/tdx_quote")).unwrap();
    let q = Quote::parse(&raw).unwrap();
    let mut p = Policy::default_unpinned();
    p.tcb.accepted_statuses = vec!["UpToDate".into(), "SWHardeningNeeded".into()];
    p.tcb.tolerated_advisories = vec!["intel-sa-00615".into()];
    let run = |p: &Policy, f: &TcbFacts| {
        check(
            p,
            &Evidence {
                report: &q.td_report,
                tcb: Some(f),
                claims: None,
                at: AT,
            },
        )
        .iter()
        .map(|r| r.code())
        .collect::<Vec<_>>()
    };
    let f = facts("SWHardeningNeeded", &["INTEL-SA-00615"]);
    assert!(run(&p, &f).is_empty());
    let f = facts(
        "OutOfDate",
        &["INTEL-SA-00615", "INTEL-SA-00837", "INTEL-SA-00960"],
    );
    assert_eq!(run(&p, &f), ["tcb_status", "advisory", "advisory"]);
    // Without facts (not verified), the TCB rules fail closed.
    let none = check(
        &p,
        &Evidence {
            report: &q.td_report,
            tcb: None,
            claims: None,
            at: AT,
        },
    );
    assert_eq!(none.len(), 1);
    assert_eq!(none[0].code(), "tcb_unknown");
}

#[test]
fn policies_fail_closed_on_load() {
    let good = policy_text(MRTD, "\"any\"", RTMR1, "", "binding = \"any\"");
    assert!(Policy::from_toml(&good).is_ok());
    // A missing register is an error, not "any".
    let e = Policy::from_toml(&good.replace("rtmr0 = \"any\"\n", "")).unwrap_err();
    assert!(
        matches!(&e, PolicyError::Syntax(m) if m.contains("rtmr0")),
        "{e}"
    );
    // MRTD may not be "any" or empty.
    let e = Policy::from_toml(&good.replace(&format!("mrtd = [\"{MRTD}\"]"), "mrtd = \"any\""))
        .unwrap_err();
    assert_eq!(e, PolicyError::Unpinned("mrtd"));
    let e = Policy::from_toml(&good.replace(&format!("rtmr2 = [\"{RTMR2}\"]"), "rtmr2 = []"))
        .unwrap_err();
    assert_eq!(e, PolicyError::Unpinned("rtmr2"));
    // Unknown keys anywhere, including typos of real ones.
    for bad in [
        good.replace("allow_debug = false", "allow_debugg = false"),
        good.replace("[td]", "[td]\nsept_ve = true"),
        format!("{good}\nextra = 1"),
    ] {
        assert!(
            matches!(Policy::from_toml(&bad), Err(PolicyError::Syntax(_))),
            "{bad}"
        );
    }
    // Missing [report_data] and [td] tables.
    let no_rd = good.split("[report_data]").next().unwrap().to_string();
    assert!(Policy::from_toml(&no_rd).is_err());
    assert!(Policy::from_toml(&good.replace("xfam = [\"0x00000000000602e7\"]", "")).is_err());
    // Bad values.
    assert!(matches!(
        Policy::from_toml(&good.replace("[\"UpToDate\"]", "[\"Fine\"]")),
        Err(PolicyError::UnknownStatus(_))
    ));
    assert!(Policy::from_toml(&good.replace(MRTD, "abcd")).is_err());
    assert!(Policy::from_toml(&good.replace("version = 1", "version = 2")).is_err());
    assert!(Policy::from_toml(&good.replace("binding = \"any\"", "binding = \"exact\"")).is_err());
    assert!(Policy::from_toml(&good.replace("rtmr0 = \"any\"", "rtmr0 = \"all\"")).is_err());
    // The [gpu] table is accepted (its content belongs to the GPU policy).
    assert!(Policy::from_toml(&format!("{good}\n[gpu]\n"))
        .unwrap()
        .gpu
        .is_some());
}

fn measurements(rtmr0: Option<Digest48>) -> ExpectedMeasurements {
    ExpectedMeasurements {
        format: MEASUREMENTS_FORMAT,
        mrtd: MRTD.parse().unwrap(),
        rtmr0,
        rtmr1: RTMR1.parse().unwrap(),
        rtmr2: RTMR2.parse().unwrap(),
        rtmr0_note: None,
        inputs: Inputs::default(),
        events: vec![],
    }
}

#[test]
fn from_measurements_pins_and_round_trips() {
    for rtmr0 in [None, Some(RTMR0.parse().unwrap())] {
        let p = Policy::from_measurements(&measurements(rtmr0));
        let text = p.to_toml(Some("measurements.json")).unwrap();
        assert_eq!(Policy::from_toml(&text).unwrap(), p);
        assert!(text.contains(MRTD));
        assert_eq!(text.contains(RTMR0), rtmr0.is_some());
        // The generated policy binds REPORTDATA to claims, so the real quote is
        // rejected without them, but its registers match.
        let v = verify_with(&p, None);
        assert_eq!(codes(&v), ["claims_missing"]);
    }
}

#[test]
fn cli_from_measurements_then_verify() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("measurements.json");
    std::fs::write(
        &m,
        serde_json::to_vec(&measurements(Some(RTMR0.parse().unwrap()))).unwrap(),
    )
    .unwrap();
    let out_p = dir.path().join("policy.toml");
    let o = common::cocoon_measure()
        .args(["--json", "policy", "from-measurements"])
        .arg(&m)
        .arg("--out")
        .arg(&out_p)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pinned"]["rtmr0"], true);
    assert_eq!(v["policy"]["registers"]["mrtd"][0], MRTD);
    let text = std::fs::read_to_string(&out_p).unwrap();
    assert_eq!(v["policy_toml"], text.as_str());

    // Loosen the binding, break RTMR2: the verify verdict lists exactly that.
    let text = text
        .replace("binding = \"claims_v1\"", "binding = \"any\"")
        .replace(RTMR2, WRONG);
    std::fs::write(&out_p, text).unwrap();
    let o = common::cocoon_measure()
        .args(["--json", "quote", "verify"])
        .arg(common::testdata("tdx/tdx_quote"))
        .arg("--collateral")
        .arg(common::testdata("tdx/tdx_quote_collateral.json"))
        .args(["--at", "1751624190", "--policy"])
        .arg(&out_p)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "rejected");
    assert_eq!(v["registers_pinned"], true);
    assert_eq!(v["tcb_status"], "UpToDate");
    assert_eq!(v["reasons"].as_array().unwrap().len(), 1);
    assert_eq!(v["reasons"][0]["code"], "rtmr2_mismatch");
    assert_eq!(v["reasons"][0]["expected"], WRONG);

    // `policy check` accepts the file; a broken one exits 2 naming the key.
    let o = common::cocoon_measure()
        .args(["--json", "policy", "check"])
        .arg(&out_p)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    std::fs::write(&out_p, "version = 1\n[registers]\nmrtd = []\n").unwrap();
    let o = common::cocoon_measure()
        .args(["--json", "policy", "check"])
        .arg(&out_p)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("missing field"),
        "{v}"
    );
}

#[test]
fn cli_claims_binding() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        policy_text(MRTD, "\"any\"", RTMR1, "", "binding = \"claims_v1\""),
    )
    .unwrap();
    let c = dir.path().join("claims.json");
    std::fs::write(&c, serde_json::to_vec(&example_claims()).unwrap()).unwrap();
    let verify = |extra: &[&std::path::Path]| {
        let mut cmd = common::cocoon_measure();
        cmd.args(["--json", "quote", "verify"])
            .arg(common::testdata("tdx/tdx_quote"))
            .arg("--collateral")
            .arg(common::testdata("tdx/tdx_quote_collateral.json"))
            .args(["--at", "1751624190", "--policy"])
            .arg(&p);
        if let Some(c) = extra.first() {
            cmd.arg("--claims").arg(c);
        }
        let o = cmd.output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (o.status.code(), v)
    };
    let (code, v) = verify(&[]);
    assert_eq!(code, Some(1));
    assert_eq!(v["reasons"][0]["code"], "claims_missing");
    let (code, v) = verify(&[&c]);
    assert_eq!(code, Some(1));
    assert_eq!(v["reasons"].as_array().unwrap().len(), 1);
    assert_eq!(v["reasons"][0]["code"], "report_data_mismatch");
    assert_eq!(v["reasons"][0]["found"], REPORT_DATA);
    // Claims JSON with an unknown field is bad input.
    std::fs::write(&c, br#"{"tls_spki_der": "00", "x": 1}"#).unwrap();
    assert_eq!(verify(&[&c]).0, Some(2));
}
