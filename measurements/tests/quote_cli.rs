//! `cocoon-measure quote inspect|verify`: exit codes and JSON on real data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod common;

use std::path::Path;

use serde_json::Value;

const AT: &str = "1751624190";

fn run(args: &[&str]) -> (i32, Value, String) {
    let out = common::cocoon_measure().args(args).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let json = if args.contains(&"--json") {
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    } else {
        Value::Null
    };
    (out.status.code().unwrap(), json, stderr)
}

fn td(name: &str) -> String {
    common::testdata(&format!("tdx/{name}"))
        .display()
        .to_string()
}

fn write_tmp(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

fn codes(v: &Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn inspect_json_names_fields_and_debug_bit() {
    let (code, v, _) = run(&["--json", "quote", "inspect", &td("tdx_quote")]);
    assert_eq!(code, 0);
    assert_eq!(v["encoding"], "binary");
    let r = &v["quote"]["td_report"];
    assert_eq!(
        r["mrtd"],
        "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
    );
    assert_eq!(r["td_attributes"]["debug"], false);
    assert_eq!(r["td_attributes"]["sept_ve_disable"], true);
    assert_eq!(
        r["td_attributes"]["set"],
        serde_json::json!(["SEPT_VE_DISABLE"])
    );
    assert_eq!(v["quote"]["signature_data"]["pck_cert_data_type"], 5);

    let (code, v, _) = run(&["--json", "quote", "inspect", &td("tdx_quote_outdated")]);
    assert_eq!(code, 0);
    assert_eq!(v["quote"]["body_kind"], "td_report_1.5");
    assert_eq!(
        v["quote"]["td_report"]["tee_tcb_svn2"],
        "0d010300000000000000000000000000"
    );
}

#[test]
fn inspect_shows_a_debug_td() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = std::fs::read(td("tdx_quote")).unwrap();
    raw[48 + 120] |= 1;
    let f = write_tmp(dir.path(), "debug.hex", hex::encode(&raw).as_bytes());
    let (code, v, _) = run(&["--json", "quote", "inspect", &f]);
    assert_eq!(code, 0);
    assert_eq!(v["encoding"], "hex");
    assert_eq!(v["quote"]["td_report"]["td_attributes"]["debug"], true);
    assert_eq!(v["quote"]["td_report"]["td_attributes"]["set"][0], "DEBUG");
    let out = common::cocoon_measure()
        .args(["quote", "inspect", &f])
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("<-- DEBUG"));
}

#[test]
fn unparsable_quotes_exit_2_naming_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let raw = std::fs::read(td("tdx_quote")).unwrap();
    let mut wrong_version = raw.clone();
    wrong_version[0] = 6;
    let mut wrong_tee = raw.clone();
    wrong_tee[4] = 0;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "byte offset 0"),
        ("cut3", raw[..3].to_vec(), "byte offset 2"),
        ("cut200", raw[..200].to_vec(), "byte offset 184"),
        ("cut700", raw[..700].to_vec(), "byte offset 636"),
        ("version", wrong_version, "byte offset 0"),
        ("tee", wrong_tee, "byte offset 4"),
    ];
    for (name, bytes, needle) in cases {
        let f = write_tmp(dir.path(), name, &bytes);
        for sub in ["inspect", "verify"] {
            let mut args = vec!["--json", "quote", sub, f.as_str()];
            let coll = td("tdx_quote_collateral.json");
            if sub == "verify" {
                args.extend(["--collateral", coll.as_str(), "--at", AT]);
            }
            let (code, v, stderr) = run(&args);
            assert_eq!(code, 2, "{name} {sub}: {v}");
            let msg = v["error"].as_str().unwrap();
            assert!(msg.contains(needle), "{name} {sub}: {msg}");
            assert!(stderr.contains(needle));
        }
    }
    let (_, v, _) = run(&[
        "--json",
        "quote",
        "inspect",
        &write_tmp(dir.path(), "v", &{
            let mut b = raw.clone();
            b[0] = 6;
            b
        }),
    ]);
    assert!(v["error"].as_str().unwrap().contains("version 6"));
}

#[test]
fn verify_accepts_the_real_quote() {
    let (code, v, _) = run(&[
        "--json",
        "quote",
        "verify",
        &td("tdx_quote"),
        "--collateral",
        &td("tdx_quote_collateral.json"),
        "--at",
        AT,
    ]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["verdict"], "accepted");
    assert_eq!(v["tcb_status"], "UpToDate");
    assert_eq!(v["advisory_ids"], serde_json::json!([]));
    assert_eq!(v["reasons"], serde_json::json!([]));
    assert_eq!(v["registers_pinned"], false);
    assert!(v["note"].as_str().unwrap().contains("NOT pinned"));
    assert_eq!(v["trust_root"], "Intel SGX Root CA");
    assert_eq!(
        v["rtmr1"],
        "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378"
    );
    assert_eq!(v["td_attributes"]["debug"], false);
    assert_eq!(v["report_data"].as_str().unwrap().len(), 128);
}

#[test]
fn verify_rejects_outdated_tampered_expired() {
    let dir = tempfile::tempdir().unwrap();
    let (code, v, _) = run(&[
        "--json",
        "quote",
        "verify",
        &td("tdx_quote_outdated"),
        "--collateral",
        &td("tdx_quote_outdated_collateral.json"),
        "--at",
        "1772000000",
    ]);
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "rejected");
    assert_eq!(codes(&v), ["no_matching_tcb_level", "tcb_unknown"]);
    assert_eq!(v["tcb_status"], Value::Null);

    let mut raw = std::fs::read(td("tdx_quote")).unwrap();
    raw[48 + 120] |= 1; // DEBUG, inside the signed body
    let f = write_tmp(dir.path(), "debug", &raw);
    let (code, v, _) = run(&[
        "--json",
        "quote",
        "verify",
        &f,
        "--collateral",
        &td("tdx_quote_collateral.json"),
        "--at",
        AT,
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        codes(&v),
        ["quote_signature", "debug_enabled", "tcb_unknown"]
    );

    let (code, v, _) = run(&[
        "--json",
        "quote",
        "verify",
        &td("tdx_quote"),
        "--collateral",
        &td("tdx_quote_collateral.json"),
        "--at",
        "1752920164",
    ]);
    assert_eq!(code, 1);
    assert_eq!(codes(&v), ["collateral_expired", "tcb_unknown"]);
    assert!(v["reasons"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("collateral expired at 2025-07-19T10:16:04Z"));
}

#[test]
fn verify_bad_inputs_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let q = td("tdx_quote");
    let missing = dir.path().join("nope").display().to_string();
    let (code, v, _) = run(&["--json", "quote", "verify", &q, "--collateral", &missing]);
    assert_eq!(code, 2);
    assert!(v["error"].as_str().unwrap().contains("nope"));
    let bad = write_tmp(dir.path(), "c.json", b"{\"pck_crl\": 1}");
    let (code, _, _) = run(&["--json", "quote", "verify", &q, "--collateral", &bad]);
    assert_eq!(code, 2);
    let root = write_tmp(dir.path(), "root.der", b"junk");
    let (code, v, _) = run(&[
        "--json",
        "quote",
        "verify",
        &q,
        "--collateral",
        &td("tdx_quote_collateral.json"),
        "--root-ca",
        &root,
    ]);
    assert_eq!(code, 2);
    assert!(v["error"].as_str().unwrap().contains("root CA"));
    // Neither --collateral nor --pccs: usage error.
    let out = common::cocoon_measure()
        .args(["quote", "verify", &q])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unreachable_pccs_is_bad_input() {
    // Nothing listens on port 1 of the loopback: the fetch fails fast, offline.
    let (code, v, _) = run(&[
        "--json",
        "quote",
        "verify",
        &td("tdx_quote"),
        "--pccs",
        "http://127.0.0.1:1",
        "--at",
        AT,
    ]);
    assert_eq!(code, 2, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("collateral fetch from http://127.0.0.1:1"),
        "{v}"
    );
}
