//! Ledger: write, verify, tamper (issue 6, item 7). Opening, repair and locking are in
//! `ledger_open.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod ledger_common;

use cocoon_agent::ledger::record::{sign_line, ReceiptBody, ReceiptSigner, SealBody};
use cocoon_agent::ledger::{verify, verify_reader, Body, Ledger, ProblemCode, LEDGER_FILE};
use ledger_common::*;

#[test]
fn receipts_verify_with_independent_totals() {
    let dir = tempfile::tempdir().unwrap();
    let n = 50;
    let mut ledger = Ledger::open(dir.path(), key(1), epoch()).unwrap();
    assert_eq!(ledger.open_report().previous_records, 0);
    assert_eq!(ledger.open_report().epoch_seq, 0);
    let (mut prompt, mut completion, mut total, mut worker) = (0u64, 0u64, 0u64, 0u64);
    for i in 0..n {
        let r = ledger.append(&input(i)).unwrap();
        // One receipt, then the seal that signs it.
        assert_eq!((r.body.seq, r.sealed_by), (1 + 2 * i, 2 + 2 * i));
        let u = usage(i);
        // Pricing arithmetic written out here, not through Pricing::split.
        let t = (u.prompt_tokens + u.completion_tokens) * 20;
        assert_eq!(r.body.total_nanoton, t);
        assert_eq!(r.body.worker_nanoton, t * 95 / 100);
        assert_eq!(r.body.proxy_nanoton, t - t * 95 / 100);
        prompt += u.prompt_tokens;
        completion += u.completion_tokens;
        total += t;
        worker += t * 95 / 100;
    }
    let totals = ledger.totals();
    assert_eq!(totals.genesis, totals.epoch);
    assert_eq!(totals.genesis.receipts, n);
    drop(ledger);

    let report = verify(dir.path()).unwrap();
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(report.lines, 2 * n + 1);
    assert_eq!(report.records, 2 * n + 1);
    assert_eq!(report.last_seq, Some(2 * n));
    assert!(report.warnings.is_empty());
    let t = report.totals;
    assert_eq!(
        (t.receipts, t.prompt_tokens, t.completion_tokens),
        (n, prompt, completion)
    );
    assert_eq!(
        (t.total_nanoton, t.worker_nanoton, t.proxy_nanoton),
        (total, worker, total - worker)
    );
    assert_eq!(report.epochs.len(), 1);
    assert!(report.epochs[0].attested);
    assert_eq!(report.epochs[0].totals, t);
    assert_eq!(report.epochs[0].owner_address, OWNER);

    // A second boot: new key, new epoch; totals split per epoch. One batch of 5: five
    // receipts and one seal, one write.
    let mut ledger = Ledger::open(dir.path(), key(2), epoch()).unwrap();
    assert_eq!(ledger.open_report().previous_records, 2 * n + 1);
    assert_eq!(ledger.open_report().epoch_seq, 2 * n + 1);
    let inputs: Vec<_> = (0..5).map(|i| input(1000 + i)).collect();
    for r in ledger.append_batch(&inputs) {
        assert_eq!(r.unwrap().sealed_by, 2 * n + 7);
    }
    let lt = ledger.totals();
    assert_eq!(lt.genesis.receipts, n + 5);
    assert_eq!(lt.epoch.receipts, 5);
    drop(ledger);
    let report = verify(dir.path()).unwrap();
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(report.last_seq, Some(2 * n + 7));
    assert_eq!(
        kinds(&read_lines(dir.path())).last().map(String::as_str),
        Some("seal")
    );
    assert_eq!(report.epochs.len(), 2);
    assert_eq!(report.epochs[1].totals, lt.epoch);
    assert_eq!(report.totals, lt.genesis);
    assert_eq!(
        report.epochs[1].receipt_public_key,
        hex::encode(key(2).verifying_key().as_bytes())
    );
}

#[test]
fn removed_line_is_named() {
    let dir = ledger_with(20);
    let mut lines = read_lines(dir.path());
    assert_eq!(
        kinds(&lines[6..12]),
        ["receipt", "receipt", "receipt", "receipt", "seal", "receipt"]
    );
    lines.remove(7); // line 8: the second receipt of the second batch (lines 7-10, seal 11)
    let report = verify_lines(dir.path(), &lines);
    assert!(!report.ok);
    assert_eq!(
        codes_at(&report, 8),
        vec![ProblemCode::PrevMismatch, ProblemCode::RecordsMissing]
    );
    // The seal still signs the (unchanged) chain head, but counts one receipt more.
    assert_eq!(codes_at(&report, 10), vec![ProblemCode::SealMismatch]);
    assert_eq!(report.problems.len(), 3, "{}", report.to_text());
    assert!(report.problems[1].detail.contains("1 record(s) missing"));
    assert!(report.problems[2]
        .detail
        .contains("seal counts 4 receipt(s); 3"));
}

#[test]
fn edited_token_count_is_named() {
    let dir = ledger_with(20);
    let mut lines = read_lines(dir.path());
    let v: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    let old = v["prompt_tokens"].as_u64().unwrap();
    lines[2] = lines[2].replacen(
        &format!("\"prompt_tokens\":{old},"),
        &format!("\"prompt_tokens\":{},", old + 1),
        1,
    );
    let report = verify_lines(dir.path(), &lines);
    assert_eq!(codes_at(&report, 3), vec![ProblemCode::AmountMismatch]);
    assert_eq!(codes_at(&report, 4), vec![ProblemCode::PrevMismatch]);
    assert_eq!(report.problems.len(), 2, "{}", report.to_text());
}

#[test]
fn consistent_edit_with_rechained_prevs_breaks_the_seal() {
    // A careful forger: more tokens with matching amounts, and every later `prev`
    // recomputed. Only the batch's seal (signed in the TEE) can tell.
    let dir = ledger_with(20);
    let mut lines = read_lines(dir.path());
    let mut v: serde_json::Value = serde_json::from_str(&lines[7]).unwrap();
    let body = v.as_object_mut().unwrap();
    let completion = body["completion_tokens"].as_u64().unwrap() + 100;
    let t = (body["prompt_tokens"].as_u64().unwrap() + completion) * 20;
    body.insert("completion_tokens".into(), completion.into());
    body.insert("total_nanoton".into(), t.into());
    body.insert("worker_nanoton".into(), (t * 95 / 100).into());
    body.insert("proxy_nanoton".into(), (t - t * 95 / 100).into());
    let edited = match serde_json::from_value::<Body>(v).unwrap() {
        b @ Body::Receipt(_) => b,
        other => panic!("expected a receipt, got {other:?}"),
    };
    lines[7] = String::from_utf8(edited.canonical().unwrap()).unwrap();
    rechain(&mut lines, 8);
    let report = verify_lines(dir.path(), &lines);
    assert!(!report.ok);
    assert_eq!(codes_at(&report, 11), vec![ProblemCode::BadSignature]);
    assert!(report.problems[0]
        .detail
        .contains("4 receipt(s) before it are not authenticated"));
    // Later seals sign their own batches' heads, which changed too.
    assert!(report.problems.iter().all(
        |p| p.code == ProblemCode::BadSignature && kinds(&lines)[p.line as usize - 1] == "seal"
    ));
}

#[test]
fn swapped_lines_are_named() {
    let dir = ledger_with(20);
    let mut lines = read_lines(dir.path());
    lines.swap(6, 7); // lines 7 and 8, receipts of the second batch
    let report = verify_lines(dir.path(), &lines);
    assert!(codes_at(&report, 7).contains(&ProblemCode::Reordered));
    assert!(codes_at(&report, 8).contains(&ProblemCode::Reordered));
    assert!(!all_codes(&report).contains(&ProblemCode::RecordsMissing));
    assert!(!all_codes(&report).contains(&ProblemCode::BadSignature));
    // The chain is broken at 7, 8 and 9 (each prev points elsewhere).
    for l in [7, 8, 9] {
        assert!(
            codes_at(&report, l).contains(&ProblemCode::PrevMismatch),
            "line {l}"
        );
    }
}

#[test]
fn forged_signature_is_named() {
    let dir = ledger_with(20);
    let mut lines = read_lines(dir.path());
    assert_eq!(kinds(&lines)[10], "seal");
    let v: serde_json::Value = serde_json::from_str(&lines[10]).unwrap();
    let mut sig = hex::decode(v["sig"].as_str().unwrap()).unwrap();
    sig[10] ^= 0x01;
    let old_sig = v["sig"].as_str().unwrap().to_string();
    lines[10] = lines[10].replace(&old_sig, &hex::encode(&sig));
    let report = verify_lines(dir.path(), &lines);
    assert_eq!(codes_at(&report, 11), vec![ProblemCode::BadSignature]);
    assert_eq!(codes_at(&report, 12), vec![ProblemCode::PrevMismatch]);
    assert_eq!(report.problems.len(), 2, "{}", report.to_text());
}

#[test]
fn removed_seal_is_named() {
    // The seal between two batches goes: the first batch's receipts run into the
    // second's, whose seal counts only its own.
    let dir = ledger_with(8);
    let mut lines = read_lines(dir.path());
    lines.remove(5);
    let report = verify_lines(dir.path(), &lines);
    assert_eq!(
        codes_at(&report, 6),
        vec![ProblemCode::PrevMismatch, ProblemCode::RecordsMissing]
    );
    assert_eq!(codes_at(&report, 10), vec![ProblemCode::SealMismatch]);

    // Before a new epoch, unsealed receipts are named as such (never a crash: a batch
    // and its seal are one write).
    let dir = ledger_with(4);
    let mut ledger = Ledger::open(dir.path(), key(2), epoch()).unwrap();
    ledger.append(&input(9)).unwrap();
    drop(ledger);
    let mut lines = read_lines(dir.path());
    lines.remove(5);
    let report = verify_lines(dir.path(), &lines);
    assert_eq!(codes_at(&report, 2), vec![ProblemCode::Unsealed]);
    assert!(report.problems[0]
        .detail
        .contains("4 receipt(s) (lines 2-5)"));
    // Not counted: only the second epoch's sealed receipt is.
    assert_eq!(report.totals.receipts, 1);
}

#[test]
fn resigned_wrong_price_is_named() {
    // Someone holding the key (not possible outside the TEE, but the check must not
    // rely on that) seals a receipt whose price differs from the epoch's.
    let dir = ledger_with(3);
    let mut lines = read_lines(dir.path());
    let last: ReceiptBody = match serde_json::from_str::<Body>(&lines[3]).unwrap() {
        Body::Receipt(r) => r,
        other => panic!("expected a receipt, got {other:?}"),
    };
    let signer = ReceiptSigner::new(&key(1)).unwrap();
    let mut forged = last.clone();
    forged.seq = 5;
    forged.prev = hex::encode(sha2_256(lines[4].as_bytes()));
    forged.nanoton_per_token = 30;
    let t = (forged.prompt_tokens + forged.completion_tokens) * 30;
    forged.total_nanoton = t;
    forged.worker_nanoton = t * 95 / 100;
    forged.proxy_nanoton = t - t * 95 / 100;
    let line = sign_line(&Body::Receipt(forged.clone()), &signer).unwrap();
    lines.push(String::from_utf8(line).unwrap());
    // And one with the right price but a skimmed worker share.
    let mut skim = last;
    skim.seq = 6;
    skim.prev = hex::encode(sha2_256(lines[5].as_bytes()));
    skim.worker_nanoton -= 1;
    skim.proxy_nanoton += 1;
    let line = sign_line(&Body::Receipt(skim), &signer).unwrap();
    lines.push(String::from_utf8(line).unwrap());
    let seal = Body::Seal(SealBody {
        seq: 7,
        prev: hex::encode(sha2_256(lines[6].as_bytes())),
        receipts: 2,
    });
    lines.push(String::from_utf8(sign_line(&seal, &signer).unwrap()).unwrap());
    let report = verify_lines(dir.path(), &lines);
    assert_eq!(codes_at(&report, 6), vec![ProblemCode::PriceMismatch]);
    assert_eq!(codes_at(&report, 7), vec![ProblemCode::AmountMismatch]);
    assert_eq!(report.problems.len(), 2, "{}", report.to_text());
}

#[test]
fn removed_epoch_leaves_receipts_unverifiable() {
    let dir = ledger_with(3);
    let mut lines = read_lines(dir.path());
    lines.remove(0);
    let report = verify_lines(dir.path(), &lines);
    assert_eq!(
        codes_at(&report, 1),
        vec![
            ProblemCode::PrevMismatch,
            ProblemCode::NoEpoch,
            ProblemCode::RecordsMissing
        ]
    );
    assert_eq!(codes_at(&report, 3), vec![ProblemCode::NoEpoch]);
    // The seal has no key to be checked with either.
    assert_eq!(codes_at(&report, 4), vec![ProblemCode::NoEpoch]);
}

#[test]
fn report_json_names_reasons() {
    let dir = ledger_with(4);
    let mut lines = read_lines(dir.path());
    lines.remove(2);
    let report = verify_lines(dir.path(), &lines);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["ok"], false);
    let codes: Vec<&str> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        vec!["prev_mismatch", "records_missing", "seal_mismatch"]
    );
    assert_eq!(json["problems"][1]["line"], 3);
    assert_eq!(json["problems"][2]["line"], 5);
    assert_eq!(json["totals"]["receipts"], 3);
    let text = report.to_text();
    assert!(
        text.contains("FAILED") && text.contains("records_missing"),
        "{text}"
    );
}

#[test]
fn garbage_and_damage_never_panic() {
    let dir = ledger_with(12);
    let good = std::fs::read(dir.path().join(LEDGER_FILE)).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    // Random bytes (some with newlines, some JSON-ish).
    for round in 0..300 {
        let len = rng.below(4000) as usize;
        let alphabet: &[u8] = if round % 2 == 0 {
            b"{}[]\":,0123456789abcdef\n kinds"
        } else {
            &[]
        };
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if alphabet.is_empty() {
                    rng.next() as u8
                } else {
                    alphabet[rng.below(alphabet.len() as u64) as usize]
                }
            })
            .collect();
        let _ = verify_reader(&bytes[..], "garbage").unwrap();
    }

    // Every truncation of a valid ledger verifies: cutting the end is only detectable
    // against a checkpoint (head_hash), a cut inside a line is a torn tail, and receipts
    // cut off from their seal are an unsealed tail.
    let mut cuts: Vec<usize> = (0..300)
        .map(|_| rng.below(good.len() as u64 + 1) as usize)
        .collect();
    for (i, b) in good.iter().enumerate() {
        if *b == b'\n' {
            cuts.extend([i, i + 1, (i + 2).min(good.len())]);
        }
    }
    cuts.extend([0, good.len()]);
    let good_lines: Vec<String> = String::from_utf8(good.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let good_kinds = kinds(&good_lines);
    for cut in cuts {
        let r = verify_reader(&good[..cut], "cut").unwrap();
        assert!(r.ok, "cut at {cut}: {}", r.to_text());
        let torn = cut > 0 && good[cut - 1] != b'\n';
        let whole_lines = good[..cut].iter().filter(|&&b| b == b'\n').count();
        let unsealed = whole_lines > 0 && good_kinds[whole_lines - 1] == "receipt";
        assert_eq!(
            r.warnings.len(),
            usize::from(torn) + usize::from(unsealed),
            "cut at {cut}: {}",
            r.to_text()
        );
    }

    // Any single bit flip is detected, except in the final newline (which turns the
    // last line, a seal, into a torn tail and its batch into an unsealed tail).
    for _ in 0..400 {
        let mut bad = good.clone();
        let at = rng.below(bad.len() as u64) as usize;
        bad[at] ^= 1 << rng.below(8);
        let r = verify_reader(&bad[..], "flip").unwrap();
        if at == good.len() - 1 {
            assert!(r.ok && r.warnings.len() == 2, "{}", r.to_text());
        } else {
            assert!(!r.ok, "flip at {at} undetected");
        }
    }
}

#[test]
fn strings_needing_escapes_are_written_canonically() {
    // Every ASCII character (controls, quote, backslash), a line separator, non-BMP text
    // and a field at the length limit: written through both append paths (the full
    // receipt and the serving path's ack), read back field for field, and the verifier
    // finds every line canonical.
    let ascii: String = (0u8..0x80).map(char::from).collect();
    let inputs = vec![
        cocoon_agent::ledger::ReceiptInput {
            request_id: ascii.clone(),
            model: "m\u{2028}\u{1F600}é".into(),
            endpoint: "/v1/completions".into(),
            usage: usage(1),
        },
        cocoon_agent::ledger::ReceiptInput {
            request_id: "r".repeat(cocoon_agent::ledger::MAX_FIELD_LEN),
            model: ascii.chars().rev().collect(),
            endpoint: "\\\"".into(),
            usage: usage(2),
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), key(1), epoch()).unwrap();
    let receipts = ledger.append_batch(&inputs);
    let acks = ledger.append_acks(&inputs);
    for (r, i) in receipts.iter().zip(&inputs) {
        let r = r.as_ref().unwrap();
        assert_eq!(r.body.request_id, i.request_id);
        assert_eq!(r.body.model, i.model);
        assert_eq!(r.body.endpoint, i.endpoint);
    }
    // The second batch follows the first: its receipts, then its seal.
    let seqs: Vec<_> = acks.iter().map(|a| a.as_ref().unwrap().seq).collect();
    assert_eq!(seqs, vec![4, 5]);
    assert!(acks.iter().all(|a| a.as_ref().unwrap().sealed_by == 6));
    drop(ledger);
    let report = verify(dir.path()).unwrap();
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(report.totals.receipts, 4);
    // A field over the limit fails alone; the rest of its batch is written.
    let mut ledger = Ledger::open(dir.path(), key(2), epoch()).unwrap();
    let mut long = inputs.clone();
    long[0].model = "m".repeat(cocoon_agent::ledger::MAX_FIELD_LEN + 1);
    let acks = ledger.append_acks(&long);
    assert!(acks[0].is_err());
    assert!(acks[1].is_ok());
    drop(ledger);
    let report = verify(dir.path()).unwrap();
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(report.totals.receipts, 5);
}
