#![no_main]
// The receipt ledger's verifier over arbitrary bytes (a ledger file is data from the
// disk, which the host controls): a report with named problems, never a panic; and the
// report's arithmetic stays consistent with itself.
use cocoon_agent::ledger::verify_reader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = verify_reader(data, "fuzz") else {
        return;
    };
    assert_eq!(report.ok, report.problems.is_empty() && report.problems_omitted == 0);
    let per_epoch: u64 = report.epochs.iter().map(|e| e.totals.receipts).sum();
    assert!(per_epoch <= report.totals.receipts);
    assert!(report.records <= report.lines);
    let _ = report.to_text();
});
