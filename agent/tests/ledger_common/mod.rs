//! Helpers shared by the ledger integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::path::Path;

use cocoon_agent::accounting::{Pricing, UsageTokens};
use cocoon_agent::ledger::{EpochInfo, ReceiptInput, LEDGER_FILE};
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
