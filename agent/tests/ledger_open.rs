//! Ledger: opening (a torn tail or batch cut off, a tampered chain refused), the file
//! lock, validation of what is appended, the async handle (issue 6, item 7).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ledger_common;

use cocoon_agent::accounting::Pricing;
use cocoon_agent::ledger::{
    verify, Ledger, LedgerError, LedgerHandle, ProblemCode, VerifyError, LEDGER_FILE,
};
use ledger_common::*;

#[test]
fn torn_tail_is_cut_on_open_and_chain_continues() {
    let dir = ledger_with(10); // 14 lines: epoch, 4 + seal, 4 + seal, 2 + seal
    let path = dir.path().join(LEDGER_FILE);
    let before = std::fs::read(&path).unwrap();
    // A crash mid-write: half of a would-be next line, no newline.
    let lines = read_lines(dir.path());
    let half = &lines[10].as_bytes()[..150];
    let mut torn = before.clone();
    torn.extend_from_slice(half);
    std::fs::write(&path, &torn).unwrap();

    let report = verify(dir.path()).unwrap();
    assert!(report.ok, "a torn tail is a warning: {}", report.to_text());
    assert_eq!(report.warnings.len(), 1);
    assert_eq!(report.warnings[0].code, ProblemCode::TornTail);
    assert_eq!(report.warnings[0].line, 15);
    assert_eq!(report.totals.receipts, 10);

    let mut ledger = Ledger::open(dir.path(), key(3), epoch()).unwrap();
    assert_eq!(ledger.open_report().truncated_bytes, 150);
    assert_eq!(ledger.open_report().torn_line, Some(15));
    assert_eq!(ledger.open_report().epoch_seq, 14);
    ledger.append(&input(99)).unwrap();
    drop(ledger);
    let after = std::fs::read(&path).unwrap();
    assert_eq!(&after[..before.len()], &before[..], "history untouched");
    let report = verify(dir.path()).unwrap();
    assert!(report.ok, "{}", report.to_text());
    assert!(report.warnings.is_empty());
    assert_eq!(report.totals.receipts, 11);
    assert_eq!(report.last_seq, Some(16));
}

#[test]
fn batch_torn_before_its_seal_is_cut_on_open() {
    // Power lost mid-batch: a boot's epoch and two whole receipt lines reached the disk,
    // their seal only half. None of it was acknowledged.
    let dir = ledger_with(10);
    let path = dir.path().join(LEDGER_FILE);
    let before = std::fs::read(&path).unwrap();
    let mut ledger = Ledger::open(dir.path(), key(2), epoch()).unwrap();
    for r in ledger.append_batch(&[input(50), input(51)]) {
        r.unwrap();
    }
    drop(ledger);
    let full = std::fs::read(&path).unwrap();
    let epoch_end = before.len()
        + full[before.len()..]
            .iter()
            .position(|&b| b == b'\n')
            .unwrap()
        + 1;
    let cut = full.len() - 40; // inside the seal line
    std::fs::write(&path, &full[..cut]).unwrap();

    let report = verify(dir.path()).unwrap();
    assert!(report.ok, "a torn batch is a warning: {}", report.to_text());
    let codes: Vec<_> = report.warnings.iter().map(|w| (w.code, w.line)).collect();
    assert_eq!(
        codes,
        vec![(ProblemCode::UnsealedTail, 16), (ProblemCode::TornTail, 18)]
    );
    assert_eq!(
        report.totals.receipts, 10,
        "unsealed receipts are not counted"
    );
    assert_eq!(report.epochs.len(), 2);
    assert_eq!(report.epochs[1].totals.receipts, 0);
    // The checkpoint is the last signed line: the second epoch (seq 14).
    assert_eq!(report.last_seq, Some(14));
    assert_eq!(
        report.head_hash,
        hex::encode(sha2_256(&full[before.len()..epoch_end - 1]))
    );

    let mut ledger = Ledger::open(dir.path(), key(3), epoch()).unwrap();
    assert_eq!(ledger.open_report().torn_line, Some(16));
    assert_eq!(
        ledger.open_report().truncated_bytes,
        (cut - epoch_end) as u64
    );
    assert_eq!(ledger.open_report().epoch_seq, 15);
    ledger.append(&input(99)).unwrap();
    drop(ledger);
    let after = std::fs::read(&path).unwrap();
    assert_eq!(&after[..epoch_end], &full[..epoch_end], "history untouched");
    let report = verify(dir.path()).unwrap();
    assert!(report.ok, "{}", report.to_text());
    assert!(report.warnings.is_empty());
    assert_eq!(report.totals.receipts, 11);
    assert_eq!(report.epochs.len(), 3);
}

#[test]
fn open_refuses_a_tampered_ledger() {
    let dir = ledger_with(5);
    let mut lines = read_lines(dir.path());
    lines.remove(2);
    write_lines(dir.path(), &lines);
    let err = Ledger::open(dir.path(), key(4), epoch()).unwrap_err();
    match err {
        LedgerError::Corrupt { problems, .. } => {
            assert!(problems
                .iter()
                .any(|p| p.code == ProblemCode::RecordsMissing))
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    // Nothing was appended.
    assert_eq!(read_lines(dir.path()), lines);
}

#[test]
fn second_writer_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let first = Ledger::open(dir.path(), key(1), epoch()).unwrap();
    let err = Ledger::open(dir.path(), key(2), epoch()).unwrap_err();
    assert!(matches!(err, LedgerError::Locked { .. }), "{err}");
    drop(first);
    Ledger::open(dir.path(), key(2), epoch()).unwrap();
}

#[test]
fn bad_pricing_and_long_fields_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = epoch();
    e.pricing = Pricing {
        worker_share_bps: 9000,
        ..Pricing::default()
    };
    assert!(matches!(
        Ledger::open(dir.path(), key(1), e),
        Err(LedgerError::Pricing(_))
    ));
    let mut ledger = Ledger::open(dir.path(), key(1), epoch()).unwrap();
    let mut i = input(0);
    i.request_id = "x".repeat(5000);
    assert!(matches!(
        ledger.append(&i),
        Err(LedgerError::FieldTooLong {
            field: "request_id",
            ..
        })
    ));
    // The refused receipt consumed no seq: the next one is still seq 1.
    assert_eq!(ledger.append(&input(1)).unwrap().body.seq, 1);
    drop(ledger);
    assert!(verify(dir.path()).unwrap().ok);
}

#[test]
fn handle_serves_concurrent_submitters() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), key(1), epoch()).unwrap();
    let handle = LedgerHandle::spawn(ledger).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let (tasks, per) = (16u64, 20u64);
    let mut seqs: Vec<u64> = rt.block_on(async {
        let mut joins = Vec::new();
        for t in 0..tasks {
            let h = handle.clone();
            joins.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..per {
                    seqs.push(h.append(input(t * 1000 + i)).await.unwrap().seq);
                }
                seqs
            }));
        }
        let mut all = Vec::new();
        for j in joins {
            all.extend(j.await.unwrap());
        }
        all
    });
    let totals = rt.block_on(handle.totals()).unwrap();
    assert_eq!(totals.epoch.receipts, tasks * per);
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len() as u64, tasks * per, "every receipt its own seq");
    // Receipts and seals share the numbering: every seq after the epoch is one or the
    // other, and the batches' seals fill exactly the gaps.
    let lines = read_lines(dir.path());
    let seals = kinds(&lines).iter().filter(|k| *k == "seal").count() as u64;
    assert_eq!(lines.len() as u64, 1 + tasks * per + seals);
    assert!(seqs.iter().all(|&s| (1..=tasks * per + seals).contains(&s)));
    drop(handle);
    // The writer thread releases the lock once the last handle is gone.
    let mut reopened = None;
    for _ in 0..100 {
        match Ledger::open(dir.path(), key(2), epoch()) {
            Ok(l) => {
                reopened = Some(l);
                break;
            }
            Err(LedgerError::Locked { .. }) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(e) => panic!("{e}"),
        }
    }
    let reopened = reopened.expect("lock released");
    assert_eq!(reopened.totals().genesis, totals.genesis);
    drop(reopened);
    let report = verify(dir.path()).unwrap();
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(report.totals, totals.genesis);
}

#[test]
fn missing_and_empty_ledgers() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        verify(dir.path()),
        Err(VerifyError::Missing { .. })
    ));
    std::fs::write(dir.path().join(LEDGER_FILE), b"").unwrap();
    let report = verify(dir.path()).unwrap();
    assert!(report.ok);
    assert_eq!(
        (report.lines, report.records, report.last_seq),
        (0, 0, None)
    );
}
