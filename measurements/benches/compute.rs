//! `compute_uki` on a ~100 MB UKI-shaped file and MRTD on a 4 MiB firmware, beside raw
//! single-stream SHA-384 (sha2 over an in-memory buffer of the same size), in one run.
//! Ends with a table and the ratio "our bytes/s over single-stream SHA-384 bytes/s".
//!
//! `cargo bench --bench compute` (criterion); environment:
//! - `COCOON_BENCH_MB` (default 100): size of the synthetic UKI;
//! - `COCOON_BENCH_FIRMWARE`: a TDVF/OVMF image for MRTD (default: Debian trixie's
//!   OVMF.fd as `tools/fetch-ovmf` caches it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "../tests/uki_fixture/mod.rs"]
mod uki_fixture;

use std::hint::black_box;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cocoon_measurements::boot::{compute_uki_with, UkiOptions};
use cocoon_measurements::hashplan::RunOptions;
use cocoon_measurements::mrtd::{mrtd_from_file, PageOrder};
use criterion::{Criterion, Throughput};
use sha2::{Digest as _, Sha256, Sha384};
use uki_fixture::{PeSpec, Sec, UkiSpec};

/// Deterministic filler (xorshift64*), fast enough for 100 MB.
fn filler(n: usize, mut s: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        v.extend_from_slice(&s.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(n);
    v
}

/// Size of the synthetic kernel (`.linux`).
const KERNEL_LEN: usize = 16 << 20;

/// A UKI with a 16 MiB kernel and the rest initrd, like a real image with a big initrd.
fn synthetic_uki(total: usize) -> Vec<u8> {
    let kernel_len = KERNEL_LEN;
    let linux = PeSpec {
        sections: vec![
            Sec::new(".setup", filler(0x3c00, 1)),
            Sec::new(".text", filler(kernel_len - 0x4000, 2)),
        ],
        ..Default::default()
    }
    .build();
    let initrd_len = total.saturating_sub(linux.len() + 0x20000).max(1 << 20);
    UkiSpec {
        linux,
        initrd: Some(filler(initrd_len, 3)),
        ..Default::default()
    }
    .build()
}

/// CPU time (user + system) of this process so far, all threads, from /proc/self/stat
/// (clock ticks of 10 ms). On a machine shared with other work the wall time of a
/// multi-threaded run says little; the CPU time is the work done.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14, 15.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    Duration::from_millis(f.iter().sum::<u64>() * 10)
}

/// Median wall time and median CPU time of `runs` calls.
fn median(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut wall = Vec::with_capacity(runs);
    let mut cpu = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (s, c) = (Instant::now(), cpu_time());
        f();
        wall.push(s.elapsed());
        cpu.push(cpu_time().saturating_sub(c));
    }
    wall.sort();
    cpu.sort();
    (wall[runs / 2], cpu[runs / 2])
}

fn mb_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

/// The firmware for the MRTD bench: `$COCOON_BENCH_FIRMWARE`, else Debian trixie's
/// OVMF.fd where `tools/fetch-ovmf` caches it.
fn firmware() -> Option<PathBuf> {
    std::env::var_os("COCOON_BENCH_FIRMWARE")
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("COCOON_CACHE")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/cocoon"))
                })?;
            Some(cache.join("ovmf-2025.02-8+deb13u1/OVMF.fd"))
        })
        .filter(|p| p.exists())
}

fn compute(path: &Path, threads: Option<usize>) {
    let opts = UkiOptions {
        run: RunOptions {
            threads,
            ..Default::default()
        },
        ..Default::default()
    };
    black_box(compute_uki_with(path, &opts).expect("compute_uki on the synthetic UKI"));
}

fn main() {
    let mb: usize = std::env::var("COCOON_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let img = synthetic_uki(mb << 20);
    let len = img.len();
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(&img).expect("write UKI");
    file.flush().expect("flush");
    let path = file.path().to_path_buf();
    let mem = img; // same size, in memory, for the raw hash baselines
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    {
        let mut g = c.benchmark_group(format!("uki_{}MB", len >> 20));
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function("sha384_single_stream_in_memory", |b| {
            b.iter(|| black_box(Sha384::digest(black_box(&mem))))
        });
        g.bench_function("sha256_in_memory", |b| {
            b.iter(|| black_box(Sha256::digest(black_box(&mem))))
        });
        g.bench_function("compute_uki_all_cores", |b| b.iter(|| compute(&path, None)));
        g.bench_function("compute_uki_1_thread", |b| {
            b.iter(|| compute(&path, Some(1)))
        });
        g.finish();
    }
    let fw = firmware();
    let mrtd_works = fw
        .as_ref()
        .is_some_and(|p| mrtd_from_file(p, PageOrder::PageByPage).is_ok());
    if let (Some(fw), true) = (&fw, mrtd_works) {
        let fw_len = std::fs::metadata(fw).map_or(0, |m| m.len());
        let mut g = c.benchmark_group("mrtd");
        g.throughput(Throughput::Bytes(fw_len));
        g.bench_function("mrtd_from_file", |b| {
            b.iter(|| black_box(mrtd_from_file(fw, PageOrder::PageByPage)))
        });
        g.finish();
    }
    c.final_summary();

    // Same-run comparison, independent of criterion's report format.
    let runs = 7;
    let t384 = median(runs, || {
        black_box(Sha384::digest(black_box(&mem)));
    });
    let t256 = median(runs, || {
        black_box(Sha256::digest(black_box(&mem)));
    });
    let tall = median(runs, || compute(&path, None));
    let t1 = median(runs, || compute(&path, Some(1)));
    let base = mb_s(len, t384.0);
    println!(
        "\n{} MB UKI-shaped file ({} bytes), {cores} cores, load average {}, median of {runs}:",
        len >> 20,
        len,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("?")
    );
    println!("| what | wall | CPU | MB/s (wall) | vs single-stream SHA-384 |");
    println!("|---|---|---|---|---|");
    for (what, (w, c)) in [
        ("SHA-384, one stream, in memory (sha2)", t384),
        ("SHA-256, one stream, in memory (sha2)", t256),
        ("compute_uki, all cores (file, one pass)", tall),
        ("compute_uki, 1 thread (file, one pass)", t1),
    ] {
        println!(
            "| {what} | {:.0} ms | {:.0} ms | {:.0} | {:.0}% |",
            w.as_secs_f64() * 1e3,
            c.as_secs_f64() * 1e3,
            mb_s(len, w),
            100.0 * mb_s(len, w) / base
        );
    }
    // On idle cores the pass takes about max(total work / cores, its longest lane); the
    // longest lane is the UKI's Authenticode digest, one SHA-384 over (almost) the file.
    let projected = (tall.1.as_secs_f64() / cores as f64).max(t384.1.as_secs_f64());
    println!(
        "projected on {cores} idle cores: {:.0} ms = {:.0}% of single-stream SHA-384 \
         (CPU work {:.2}x one SHA-384 pass)",
        projected * 1e3,
        100.0 * t384.1.as_secs_f64() / projected,
        tall.1.as_secs_f64() / t384.1.as_secs_f64().max(1e-9)
    );
    match (&fw, mrtd_works) {
        (Some(fw), true) => {
            let fw_len = std::fs::metadata(fw).map_or(0, |m| m.len()) as usize;
            let (t, _) = median(runs, || {
                black_box(mrtd_from_file(fw, PageOrder::PageByPage).ok());
            });
            println!(
                "| MRTD of {} ({} bytes) | {:.1} ms | {:.0} | |",
                fw.display(),
                fw_len,
                t.as_secs_f64() * 1e3,
                mb_s(fw_len, t)
            );
            // MRTD's own hashing work: a 128-byte record per page added, a 128-byte
            // record plus 256 data bytes per chunk extended (all one SHA-384 stream),
            // beside a SHA-256 of the file on the other core.
            let r = mrtd_from_file(fw, PageOrder::PageByPage).unwrap();
            let sha384_bytes: u64 = r
                .sections
                .iter()
                .map(|s| s.pages_added * 128 + s.chunks_extended * 384)
                .sum();
            let sha384_t = sha384_bytes as f64 / (base * 1e6);
            let sha256_t = fw_len as f64 / (mb_s(len, t256.0) * 1e6);
            let limit = sha384_t.max((sha384_t + sha256_t) / cores as f64);
            println!(
                "MRTD hashing limit: {:.1} ms (SHA-384 over {:.2} MB in one stream, SHA-256 over \
                 {:.2} MB); mrtd_from_file reaches {:.0}% of it",
                limit * 1e3,
                sha384_bytes as f64 / 1e6,
                fw_len as f64 / 1e6,
                100.0 * limit / t.as_secs_f64()
            );
        }
        (Some(fw), false) => println!(
            "MRTD: skipped, mrtd_from_file({}) failed (not implemented in this build?)",
            fw.display()
        ),
        (None, _) => println!("MRTD: skipped, no firmware (set COCOON_BENCH_FIRMWARE)"),
    }
    // The hashing limit: the digests `compute` must produce are fixed by what the
    // firmware and the stub measure: two SHA-384 passes over (almost) the whole file
    // (the UKI's Authenticode, the section contents), one over the kernel (its own
    // Authenticode) and a SHA-256 of the file for the inputs record. At this machine's
    // measured single-stream rates, spread over every core, that work cannot take less
    // than `limit`; how close compute_uki gets to it is its efficiency.
    let kernel = KERNEL_LEN as f64;
    let sha384_work = (2.0 * len as f64 + kernel) / (base * 1e6);
    let sha256_work = len as f64 / (mb_s(len, t256.0) * 1e6);
    let limit = ((sha384_work + sha256_work) / cores as f64).max(t384.0.as_secs_f64());
    println!(
        "hashing limit on {cores} cores: {:.0} ms (SHA-384 over {:.0} MB + SHA-256 over {:.0} MB at \
         the rates above); compute_uki reaches {:.0}% of it (wall {:.0} ms)",
        limit * 1e3,
        (2.0 * len as f64 + kernel) / 1e6,
        len as f64 / 1e6,
        100.0 * limit / tall.0.as_secs_f64(),
        tall.0.as_secs_f64() * 1e3
    );
    println!(
        "ratio (compute_uki all cores / single-stream SHA-384): {:.2}",
        mb_s(len, tall.0) / base
    );
}
