//! The built `cocoon-agent` binary: `check-config` exit codes and JSON, and `run`
//! printing the ready line, serving, and exiting 0 on SIGTERM.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cocoon-agent"))
}

#[test]
fn check_config_accepts_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, common::sim_config(dir.path(), "kind = \"none\"", "")).unwrap();
    let out = bin()
        .args(["check-config", path.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["tee"], "sim");
    assert_eq!(v["engine"], "none");
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn check_config_names_the_bad_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    let text = common::sim_config(dir.path(), "kind = \"none\"\nport = 0", "");
    std::fs::write(&path, text).unwrap();
    let out = bin()
        .args(["check-config", path.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "error");
    assert_eq!(v["field"], "engine.port");
    assert!(String::from_utf8_lossy(&out.stderr).contains("engine.port"));
}

#[test]
fn run_refuses_a_bad_config_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, "[tee]\nkind = \"sev\"\n").unwrap();
    let out = bin()
        .args(["run", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no ready line");
    assert!(String::from_utf8_lossy(&out.stderr).contains("tee.kind"));
}

#[test]
fn run_prints_the_ready_line_serves_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, common::sim_config(dir.path(), "kind = \"none\"", "")).unwrap();
    let mut child = bin()
        .args(["run", "--config", path.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let line = line.trim_end();
    let rest = line
        .strip_prefix("cocoon-agent: ready tee=sim listen=")
        .unwrap_or_else(|| panic!("ready line: {line:?}"));
    let (addr, engine) = rest.split_once(' ').unwrap();
    assert_eq!(engine, "engine=none");
    let addr: std::net::SocketAddr = addr.parse().unwrap();

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let health = rt
        .block_on(common::client::request(
            addr,
            common::verifier(true, now),
            "GET",
            "/health",
            None,
        ))
        .unwrap();
    assert_eq!(health.status, 200);

    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    // Exactly one line on stdout.
    let mut more = String::new();
    stdout.read_line(&mut more).unwrap();
    assert!(more.is_empty(), "extra stdout: {more:?}");

    // The boot wrote an epoch record; the ledger verifies.
    let out = bin()
        .args(["ledger", "verify", dir.path().to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["epochs"].as_array().unwrap().len(), 1);
}

#[test]
fn ledger_verify_rejects_a_tampered_ledger_and_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, common::sim_config(dir.path(), "kind = \"none\"", "")).unwrap();
    // Two boots: two epoch records chained.
    for _ in 0..2 {
        let mut child = bin()
            .args(["run", "--config", path.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("cocoon-agent: ready"));
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(0));
    }
    let ledger = dir.path().join("ledger.jsonl");
    let text = std::fs::read_to_string(&ledger).unwrap();
    assert_eq!(text.lines().count(), 2);
    // Drop the first record: the chain no longer starts at genesis.
    let tampered: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&ledger, tampered).unwrap();
    let out = bin()
        .args(["ledger", "verify", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("problem:") && stdout.contains("REJECTED"),
        "{stdout}"
    );
}
