//! `cocoon-measure connect` against a real TLS 1.3 RA-TLS server (sim TEE), and
//! `cocoon-measure sim-pki`: exit codes and JSON.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;
mod ratls_common;

use std::path::{Path, PathBuf};

use cocoon_measurements::digest::Digest48;
use cocoon_measurements::policy::Allowed;
use serde_json::Value;

use ratls_common::{pki, policy, serve, Tamper, Worker, AT};

struct Files {
    _dir: tempfile::TempDir,
    policy: PathBuf,
    wrong_policy: PathBuf,
    root_der: PathBuf,
    root_pem: PathBuf,
    foreign_root: PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("policy.toml"), policy().to_toml(None).unwrap()).unwrap();
    let mut wrong = policy();
    wrong.registers.mrtd = Allowed::OneOf(vec![Digest48::sha384(b"other firmware")]);
    std::fs::write(p("wrong.toml"), wrong.to_toml(None).unwrap()).unwrap();
    let root = pki(7).root_ca_der().to_vec();
    std::fs::write(p("root.der"), &root).unwrap();
    let pem =
        pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, &root).unwrap();
    std::fs::write(p("root.pem"), pem).unwrap();
    std::fs::write(p("foreign.der"), pki(8).root_ca_der()).unwrap();
    Files {
        policy: p("policy.toml"),
        wrong_policy: p("wrong.toml"),
        root_der: p("root.der"),
        root_pem: p("root.pem"),
        foreign_root: p("foreign.der"),
        _dir: dir,
    }
}

fn connect(tamper: Tamper, policy: &Path, root: Option<&Path>) -> (i32, Value) {
    let addr = serve(Worker::new(pki(7), tamper));
    let mut cmd = common::cocoon_measure();
    cmd.args(["--json", "connect"])
        .arg(format!("https://{addr}"))
        .arg("--policy")
        .arg(policy)
        .args(["--at", &AT.to_string()]);
    if let Some(r) = root {
        cmd.arg("--trust-sim-root").arg(r);
    }
    let out = cmd.output().unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), json)
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
fn connect_accepts_with_the_sim_root_der_and_pem() {
    let f = files();
    for root in [&f.root_der, &f.root_pem] {
        let (code, v) = connect(Tamper::default(), &f.policy, Some(root));
        assert_eq!(code, 0, "{v:#}");
        assert_eq!(v["verdict"], "accepted");
        assert_eq!(v["tee"], "sim");
        assert_eq!(v["registers"]["mrtd"], ratls_common::mrtd().to_hex());
        assert_eq!(v["tcb_status"], "UpToDate");
        assert_eq!(v["nonce"].as_str().unwrap().len(), 64);
        assert_eq!(
            v["runtime_events"],
            serde_json::json!(["config", "model", "engine-cmdline"])
        );
    }
}

#[test]
fn connect_text_output_names_the_reasons() {
    let f = files();
    let addr = serve(Worker::new(pki(7), Tamper::default()));
    let out = common::cocoon_measure()
        .arg("connect")
        .arg(format!("https://{addr}"))
        .arg("--policy")
        .arg(&f.policy)
        .args(["--at", &AT.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("REJECTED"), "{text}");
    assert!(text.contains("[sim_not_trusted]"), "{text}");
    assert!(text.contains("measured registers:"), "{text}");
}

#[test]
fn connect_rejections_are_named() {
    let f = files();
    let cases: [(&str, Tamper, &Path, Option<&Path>, &str); 7] = [
        (
            "no sim root",
            Tamper::default(),
            &f.policy,
            None,
            "sim_not_trusted",
        ),
        (
            "foreign root",
            Tamper::default(),
            &f.policy,
            Some(&f.foreign_root),
            "",
        ),
        (
            "mrtd",
            Tamper::default(),
            &f.wrong_policy,
            Some(&f.root_der),
            "mrtd_mismatch",
        ),
        (
            "spki",
            Tamper {
                claims_spki_other: true,
                ..Default::default()
            },
            &f.policy,
            Some(&f.root_der),
            "spki_mismatch",
        ),
        (
            "report data",
            Tamper {
                report_data_wrong: true,
                ..Default::default()
            },
            &f.policy,
            Some(&f.root_der),
            "report_data_mismatch",
        ),
        (
            "runtime log",
            Tamper {
                runtime_log_tampered: true,
                ..Default::default()
            },
            &f.policy,
            Some(&f.root_der),
            "runtime_log_digest",
        ),
        (
            "nonce",
            Tamper {
                nonce_wrong: true,
                ..Default::default()
            },
            &f.policy,
            Some(&f.root_der),
            "nonce_mismatch",
        ),
    ];
    for (name, tamper, policy, root, code) in cases {
        let (exit, v) = connect(tamper, policy, root);
        assert_eq!(exit, 1, "{name}: {v:#}");
        assert_eq!(v["verdict"], "rejected", "{name}");
        let c = codes(&v);
        if code.is_empty() {
            assert!(
                c.iter().any(
                    |x| ["root_ca", "pck_chain", "collateral_signer_chain", "crl"]
                        .contains(&x.as_str())
                ),
                "{name}: {c:?}"
            );
        } else {
            assert!(c.contains(&code.to_string()), "{name}: {c:?}");
        }
    }
}

#[test]
fn connect_bad_input_exits_2_naming_the_cause() {
    let f = files();
    // Nothing listens on this port (bound, then dropped).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = |args: &[&str]| {
        let out = common::cocoon_measure()
            .args(["--json", "connect"])
            .args(args)
            .arg("--policy")
            .arg(&f.policy)
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            out.status.code().unwrap(),
            v["error"].as_str().unwrap().to_string(),
        )
    };
    let (code, err) = run(&[&format!("https://127.0.0.1:{port}")]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot connect"), "{err}");
    let (code, err) = run(&["http://127.0.0.1:1"]);
    assert_eq!(code, 2);
    assert!(err.contains("https://"), "{err}");
    let bad_root = f.policy.to_str().unwrap();
    let (code, err) = run(&["https://127.0.0.1:1", "--trust-sim-root", bad_root]);
    assert_eq!(code, 2);
    assert!(err.contains("root CA"), "{err}");
}

fn read_dir_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(read_dir_bytes(&p));
        } else {
            out.push((
                p.strip_prefix(dir).unwrap().to_path_buf(),
                std::fs::read(&p).unwrap(),
            ));
        }
    }
    out.sort();
    out
}

/// Same seed and window, same bytes: the dev image and its verifiers can each
/// regenerate the PKI and agree.
#[test]
fn sim_pki_is_deterministic_and_loadable() {
    let dir = tempfile::tempdir().unwrap();
    let seed = hex::encode([0x42u8; 32]);
    let mut outputs = Vec::new();
    for name in ["a", "b"] {
        let out_dir = dir.path().join(name);
        let out = common::cocoon_measure()
            .args(["--json", "sim-pki", "--seed", &seed])
            .args(["--not-before", &ratls_common::NOT_BEFORE.to_string()])
            .args(["--not-after", &ratls_common::NOT_AFTER.to_string()])
            .arg("--out")
            .arg(&out_dir)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v["root_ca_der"],
            out_dir.join("root-ca.der").to_str().unwrap()
        );
        outputs.push(read_dir_bytes(&out_dir));
    }
    assert_eq!(
        outputs[0].len(),
        8,
        "{:?}",
        outputs[0].iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    assert_eq!(outputs[0], outputs[1]);
    let a = dir.path().join("a");
    assert_eq!(
        std::fs::read(a.join("root-ca.der")).unwrap(),
        std::fs::read(a.join("root_ca.der")).unwrap()
    );
    // The library reads it back, and it is the PKI the seed gives.
    let loaded = cocoon_measurements::sim::SimPki::load(&a).unwrap();
    let direct = cocoon_measurements::sim::SimPki::from_seed(
        [0x42; 32],
        ratls_common::NOT_BEFORE,
        ratls_common::NOT_AFTER,
    )
    .unwrap();
    assert_eq!(loaded.root_ca_der(), direct.root_ca_der());
    // A different seed gives a different root.
    let out = common::cocoon_measure()
        .args(["sim-pki", "--seed", &hex::encode([0x43u8; 32])])
        .args(["--not-before", "1767225600", "--not-after", "2082758400"])
        .arg("--out")
        .arg(dir.path().join("c"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_ne!(
        std::fs::read(dir.path().join("c/root-ca.der")).unwrap(),
        std::fs::read(a.join("root-ca.der")).unwrap()
    );
    // Bad seeds exit 2 naming the flag.
    let out = common::cocoon_measure()
        .args([
            "--json",
            "sim-pki",
            "--seed",
            "abcd",
            "--not-before",
            "1",
            "--not-after",
            "2",
        ])
        .arg("--out")
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("--seed"));
}
