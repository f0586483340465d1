//! Helpers shared by the ledger integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::path::Path;

use cocoon_agent::accounting::{Pricing, UsageTokens};
use cocoon_agent::ledger::{
    verify, EpochInfo, Ledger, ProblemCode, ReceiptInput, VerifyReport, LEDGER_FILE,
};
use ed25519_dalek::SigningKey;

pub const OWNER: &str = "0:ca6e321c7cce9ecedf0a8ca2492ec8592494aa5fb5ce0387dff96ef6af982a3e";

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn epoch() -> EpochInfo {
    EpochInfo {
        worker_address: "0:1111111111111111111111111111111111111111111111111111111111111111".into(),
        owner_address: OWNER.into(),
        pricing: Pricing::default(),
        attestation: Some(serde_json::json!({"tee": "sim", "quote_hex": "00ff"})),
    }
}

/// Deterministic, varied token counts for receipt `i`.
pub fn usage(i: u64) -> UsageTokens {
    let p = 5 + (i * 7919) % 300;
    let c = 1 + (i * 104_729) % 97;
    UsageTokens {
        prompt_tokens: p,
        completion_tokens: c,
        total_tokens: p + c,
    }
}

pub fn input(i: u64) -> ReceiptInput {
    ReceiptInput {
        request_id: format!("req-{i}"),
        model: "tiny-random".into(),
        endpoint: if i % 2 == 0 {
            "/v1/chat/completions".into()
        } else {
            "/v1/completions".into()
        },
        usage: usage(i),
    }
}

pub fn read_lines(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(LEDGER_FILE)).unwrap();
    text.lines().map(str::to_string).collect()
}

pub fn write_lines(dir: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(dir.join(LEDGER_FILE), text).unwrap();
}

/// Tiny deterministic PRNG (xorshift64*), so garbage tests are reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub fn codes_at(report: &VerifyReport, line: u64) -> Vec<ProblemCode> {
    report
        .problems
        .iter()
        .filter(|p| p.line == line)
        .map(|p| p.code)
        .collect()
}

pub fn all_codes(report: &VerifyReport) -> Vec<ProblemCode> {
    report.problems.iter().map(|p| p.code).collect()
}

/// Receipts per batch in [`ledger_with`].
pub const BATCH: u64 = 4;

/// Writes an epoch and `n` receipts in batches of [`BATCH`], each batch with its seal:
/// line 1 the epoch, then for batch k (from 0) receipts on lines 2+5k..=5+5k and the
/// seal on line 6+5k (the last batch may be shorter). Returns the directory.
pub fn ledger_with(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), key(1), epoch()).unwrap();
    let mut next_seq = 1;
    for start in (0..n).step_by(BATCH as usize) {
        let inputs: Vec<_> = (start..n.min(start + BATCH)).map(input).collect();
        let results = ledger.append_batch(&inputs);
        let seal_seq = next_seq + inputs.len() as u64;
        for r in results {
            let r = r.unwrap();
            assert_eq!(r.body.seq, next_seq);
            assert_eq!(r.sealed_by, seal_seq);
            next_seq += 1;
        }
        next_seq += 1; // the seal
    }
    dir
}

/// `kind` of every line.
pub fn kinds(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

pub fn sha2_256(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

/// Rewrites every `prev` from line index `from` on to the hash of the line before, as
/// someone without the key would to hide an edit: only a seal's signature can catch it.
pub fn rechain(lines: &mut [String], from: usize) {
    for i in from..lines.len() {
        let want = hex::encode(sha2_256(lines[i - 1].as_bytes()));
        let v: serde_json::Value = serde_json::from_str(&lines[i]).unwrap();
        let old = v["prev"].as_str().unwrap().to_string();
        lines[i] = lines[i].replacen(&old, &want, 1);
    }
}

/// Writes `lines` as the ledger in `dir` and verifies it.
pub fn verify_lines(dir: &Path, lines: &[String]) -> VerifyReport {
    write_lines(dir, lines);
    verify(dir).unwrap()
}
