//! kill -9 safety: a child process appends receipts in a loop and prints each one only
//! after `append` returned (i.e. after its fsync); the parent SIGKILLs it mid-loop. The
//! ledger must verify, and hold every acknowledged receipt.
//!
//! Re-exec pattern: the child is this test binary running the ignored test
//! `child_writer` with `LEDGER_CRASH_CHILD_DIR` set.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ledger_common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use cocoon_agent::ledger::{verify, Ledger};
use ledger_common::*;
use sha2::Digest;

const CHILD_ENV: &str = "LEDGER_CRASH_CHILD_DIR";

#[test]
#[ignore = "child process of kill9_never_loses_an_acknowledged_receipt"]
fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let seed: u8 = std::env::var("LEDGER_CRASH_SEED").unwrap().parse().unwrap();
    let mut ledger = Ledger::open(Path::new(&dir), key(seed), epoch()).unwrap();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for i in 0.. {
        let r = ledger.append(&input(i)).unwrap();
        // Acknowledged only now, after the fsync.
        writeln!(out, "ack {} {}", r.body.seq, r.hash).unwrap();
        out.flush().unwrap();
    }
}

/// Runs a child writer until it acknowledged `acks` receipts, SIGKILLs it, and returns
/// the (seq, hash) of every receipt it acknowledged.
fn run_and_kill(dir: &Path, seed: u8, acks: usize) -> Vec<(u64, String)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "child_writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .env("LEDGER_CRASH_SEED", seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut acked = Vec::new();
    let mut line = String::new();
    while acked.len() < acks {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "child ended early"
        );
        if let Some(rest) = line.trim_end().strip_prefix("ack ") {
            let (seq, hash) = rest.split_once(' ').unwrap();
            acked.push((seq.parse().unwrap(), hash.to_string()));
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    // Acks already in the pipe when the child died count too.
    for rest in reader.lines() {
        let l = rest.unwrap();
        if let Some(rest) = l.strip_prefix("ack ") {
            let (seq, hash) = rest.split_once(' ').unwrap();
            acked.push((seq.parse().unwrap(), hash.to_string()));
        }
    }
    acked
}

#[test]
fn kill9_never_loses_an_acknowledged_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let mut all_acked = Vec::new();
    // Three boots, each killed at a different point; each later boot re-verifies the
    // chain the killed one left and continues it.
    for (round, acks) in [(1u8, 150usize), (2, 37), (3, 90)] {
        let acked = run_and_kill(dir.path(), round, acks);
        assert!(acked.len() >= acks);
        all_acked.extend(acked);

        let report = verify(dir.path()).unwrap();
        assert!(report.ok, "round {round}: {}", report.to_text());
        assert_eq!(report.epochs.len(), usize::from(round));
        let on_disk = report.totals.receipts;
        assert!(
            all_acked.len() as u64 <= on_disk,
            "round {round}: {} acknowledged > {on_disk} on disk",
            all_acked.len()
        );
        // Every acknowledged receipt is on disk, byte for byte (its line hash).
        let text = std::fs::read_to_string(dir.path().join("ledger.jsonl")).unwrap();
        let hashes: HashSet<String> = text
            .lines()
            .map(|l| hex::encode(sha2::Sha256::digest(l.as_bytes())))
            .collect();
        for (seq, hash) in &all_acked {
            assert!(
                hashes.contains(hash),
                "round {round}: acknowledged seq {seq} missing"
            );
        }
    }
    // And a normal boot after the last kill opens and continues cleanly.
    let mut ledger = Ledger::open(dir.path(), key(9), epoch()).unwrap();
    ledger.append(&input(0)).unwrap();
    drop(ledger);
    assert!(verify(dir.path()).unwrap().ok);
}
