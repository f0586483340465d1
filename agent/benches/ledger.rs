//! Receipts per second with fsync, on the disk that holds `target/` (the data disk's
//! stand-in): one appender calling `Ledger::append` (one write + fdatasync each), and
//! 16 concurrent async submitters through `LedgerHandle` (group commit), plus the
//! verifier's speed over the resulting file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use cocoon_agent::accounting::{Pricing, UsageTokens};
use cocoon_agent::ledger::{verify, EpochInfo, Ledger, LedgerHandle, ReceiptInput};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ed25519_dalek::SigningKey;

fn epoch() -> EpochInfo {
    EpochInfo {
        worker_address: "0:1111111111111111111111111111111111111111111111111111111111111111".into(),
        owner_address: "0:ca6e321c7cce9ecedf0a8ca2492ec8592494aa5fb5ce0387dff96ef6af982a3e".into(),
        pricing: Pricing::default(),
        attestation: None,
    }
}

fn input(i: u64) -> ReceiptInput {
    ReceiptInput {
        request_id: format!("chatcmpl-{i:016x}"),
        model: "tiny-random".into(),
        endpoint: "/v1/chat/completions".into(),
        usage: UsageTokens {
            prompt_tokens: 120,
            completion_tokens: 80,
            total_tokens: 200,
        },
    }
}

fn bench_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn ledger_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("ledger");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(8));

    // The signature alone, per receipt: ed25519-dalek vs aws-lc (same deterministic
    // RFC 8032 signature, so either can sign the ledger).
    let msg = br#"{"v":1,"kind":"receipt","seq":12345,"prev":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","request_id":"0123456789abcdef-42","model":"tiny","endpoint":"/v1/chat/completions","prompt_tokens":12,"completion_tokens":8,"total_tokens":20,"nanoton":400,"worker_nanoton":380,"proxy_nanoton":20,"time":1767225600}"#;
    let dalek = SigningKey::from_bytes(&[7; 32]);
    g.bench_function("sign_dalek", |b| {
        b.iter(|| ed25519_dalek::Signer::sign(&dalek, msg))
    });
    let aws = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
    assert_eq!(
        aws.sign(msg).as_ref(),
        ed25519_dalek::Signer::sign(&dalek, msg)
            .to_bytes()
            .as_slice()
    );
    g.bench_function("sign_aws_lc", |b| b.iter(|| aws.sign(msg)));

    let dir = bench_dir();
    let mut ledger = Ledger::open(dir.path(), SigningKey::from_bytes(&[1; 32]), epoch()).unwrap();
    let mut i = 0u64;
    g.bench_function("append_fsync_single", |b| {
        b.iter(|| {
            i += 1;
            ledger.append(&input(i)).unwrap()
        })
    });
    drop(ledger);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    for submitters in [1u64, 16] {
        let dir = bench_dir();
        let ledger = Ledger::open(dir.path(), SigningKey::from_bytes(&[2; 32]), epoch()).unwrap();
        let handle = LedgerHandle::spawn(ledger).unwrap();
        g.bench_function(format!("handle_{submitters}_submitters"), |b| {
            b.iter_custom(|iters| {
                let per = iters.div_ceil(submitters);
                rt.block_on(async {
                    let start = Instant::now();
                    let mut joins = Vec::new();
                    for t in 0..submitters {
                        let h = handle.clone();
                        joins.push(tokio::spawn(async move {
                            for k in 0..per {
                                h.append(input(t * 1_000_000_000 + k)).await.unwrap();
                            }
                        }));
                    }
                    for j in joins {
                        j.await.unwrap();
                    }
                    // Scale to exactly `iters` receipts' worth of time.
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per * submitters) as f64)
                })
            })
        });
    }

    // Verifier throughput (parse, canonical re-encode, Ed25519 verify, chain) over a
    // 10 000-receipt file.
    let dir = bench_dir();
    let mut ledger = Ledger::open(dir.path(), SigningKey::from_bytes(&[3; 32]), epoch()).unwrap();
    let batch: Vec<ReceiptInput> = (0..10_000).map(input).collect();
    for chunk in batch.chunks(256) {
        for r in ledger.append_batch(chunk) {
            r.unwrap();
        }
    }
    drop(ledger);
    g.throughput(Throughput::Elements(10_001));
    g.sample_size(10);
    g.bench_function("verify_10k_lines", |b| {
        b.iter(|| {
            let r = verify(dir.path()).unwrap();
            assert!(r.ok);
            r
        })
    });
    g.finish();
}

criterion_group!(benches, ledger_benches);
criterion_main!(benches);
