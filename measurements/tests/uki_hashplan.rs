//! The streaming hash plan: every lane gets exactly its bytes, whatever the thread
//! count, chunk size or file order; a file that changes under it is an error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::Write as _;

use cocoon_measurements::hashplan::{Algo, HashPlanError, Plan, RunOptions};
use cocoon_measurements::Digest48;
use sha2::{Digest as _, Sha256};

fn file_with(data: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(data).unwrap();
    f.flush().unwrap();
    f
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 131 % 251) as u8).collect()
}

#[test]
fn lanes_emit_the_digests_of_their_segments() {
    let d = data(300_000);
    let f = file_with(&d);
    let mut plan = Plan::new(d.len() as u64);
    let whole = plan.lane("whole sha256", Algo::Sha256);
    plan.file(whole, 0, d.len() as u64);
    let whole_id = plan.emit(whole);

    // Two ranges, literal bytes and zeros, with a checkpoint in the middle.
    let mixed = plan.lane("mixed", Algo::Sha384);
    plan.file(mixed, 10, 1000);
    plan.bytes(mixed, b"literal".to_vec());
    let mid = plan.emit(mixed);
    plan.zeros(mixed, 70_000);
    plan.file(mixed, 200_000, 99_999);
    let end = plan.emit(mixed);

    // Ranges out of file order: hashed with positioned reads.
    let backwards = plan.lane("backwards", Algo::Sha384);
    plan.file(backwards, 250_000, 10);
    plan.file(backwards, 5, 20);
    let back = plan.emit(backwards);

    let mut expect_mid = d[10..1010].to_vec();
    expect_mid.extend_from_slice(b"literal");
    let mut expect_end = expect_mid.clone();
    expect_end.extend(std::iter::repeat_n(0u8, 70_000));
    expect_end.extend_from_slice(&d[200_000..299_999]);
    let mut expect_back = d[250_000..250_010].to_vec();
    expect_back.extend_from_slice(&d[5..25]);

    for threads in [1, 2, 4] {
        for chunk in [4096, 65_536, 1 << 20] {
            let out = plan
                .run(
                    f.as_file(),
                    "test",
                    &RunOptions {
                        threads: Some(threads),
                        chunk: Some(chunk),
                        progress: None,
                    },
                )
                .unwrap();
            let ctx = format!("threads {threads} chunk {chunk}");
            assert_eq!(
                out.sha256(whole_id).unwrap(),
                <[u8; 32]>::from(Sha256::digest(&d)),
                "{ctx}"
            );
            assert_eq!(
                out.sha384(mid).unwrap(),
                Digest48::sha384(&expect_mid),
                "{ctx}"
            );
            assert_eq!(
                out.sha384(end).unwrap(),
                Digest48::sha384(&expect_end),
                "{ctx}"
            );
            assert_eq!(
                out.sha384(back).unwrap(),
                Digest48::sha384(&expect_back),
                "{ctx}"
            );
            assert!(
                out.sha256(mid).is_none(),
                "a SHA-384 output is not a SHA-256 one"
            );
        }
    }
}

#[test]
fn progress_reaches_the_file_length() {
    let d = data(100_000);
    let f = file_with(&d);
    let mut plan = Plan::new(d.len() as u64);
    let l = plan.lane("x", Algo::Sha384);
    plan.file(l, 0, d.len() as u64);
    plan.emit(l);
    let seen = std::sync::Mutex::new(Vec::new());
    let cb = |done: u64, total: u64| seen.lock().unwrap().push((done, total));
    plan.run(
        f.as_file(),
        "x",
        &RunOptions {
            threads: Some(1),
            chunk: Some(16_384),
            progress: Some(&cb),
        },
    )
    .unwrap();
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 7);
    assert_eq!(*seen.last().unwrap(), (100_000, 100_000));
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn changed_files_are_detected() {
    let d = data(50_000);
    let f = file_with(&d);
    // Expected bytes that differ from the file.
    let mut plan = Plan::new(d.len() as u64);
    let l = plan.lane("x", Algo::Sha384);
    plan.file(l, 0, 100);
    plan.emit(l);
    let mut wrong = d[40_000..40_010].to_vec();
    wrong[3] ^= 1;
    plan.expect(40_000, wrong);
    let e = plan
        .run(f.as_file(), "f", &RunOptions::default())
        .unwrap_err();
    assert!(
        matches!(e, HashPlanError::ContentChanged { offset: 40_000, .. }),
        "{e}"
    );

    // A plan made for a longer or a shorter file.
    for len in [60_000u64, 40_000] {
        let mut plan = Plan::new(len);
        let l = plan.lane("x", Algo::Sha384);
        plan.file(l, 0, 100);
        plan.emit(l);
        let e = plan
            .run(f.as_file(), "f", &RunOptions::default())
            .unwrap_err();
        assert!(
            matches!(e, HashPlanError::LengthChanged { expected, found: 50_000, .. } if expected == len),
            "{e}"
        );
    }

    // A range past the end is a planning error, reported before reading.
    let mut plan = Plan::new(d.len() as u64);
    let l = plan.lane("past", Algo::Sha384);
    plan.file(l, 49_990, 20);
    let e = plan
        .run(f.as_file(), "f", &RunOptions::default())
        .unwrap_err();
    assert!(
        matches!(e, HashPlanError::RangeBeyondFile { end: 50_010, .. }),
        "{e}"
    );
}
