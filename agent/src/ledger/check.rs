//! The chain checker shared by [`super::verify`] and [`super::Ledger::open`]: feeds on
//! lines, collects every problem with its line number, sums the totals.
#![deny(clippy::arithmetic_side_effects)]

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::lines::RawLine;
use super::record::{
    parse_public_key, Body, EpochBody, ParsedLine, ReceiptBody, SealBody, FORMAT, GENESIS_PREV,
};
pub use super::totals::Totals;
use crate::accounting::{Pricing, PricingError};

/// Most problems kept in a report; a mangled file could otherwise yield one per line.
pub const MAX_PROBLEMS: usize = 10_000;

/// What is wrong with a line. `code()` strings are stable for scripts and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemCode {
    /// Not a JSON record of a known kind (garbage, unknown field, bad `sig` encoding).
    Malformed,
    /// Longer than the line cap; not parsed.
    LineTooLong,
    /// The bytes differ from the canonical encoding of the parsed fields.
    NonCanonical,
    /// `prev` is not the hash of the line before: something before this line was
    /// removed, edited or moved.
    PrevMismatch,
    /// `seq` skips numbers that appear nowhere after it: records were removed.
    RecordsMissing,
    /// `seq` goes backwards, or skips numbers that appear later: lines were moved (or
    /// one was duplicated).
    Reordered,
    /// The signature does not verify with the epoch's key: the record (or, for a seal,
    /// a line before it) was edited, or the signature forged.
    BadSignature,
    /// A receipt or seal before any epoch record: no key to check it with.
    NoEpoch,
    /// Receipts followed by an epoch record instead of their seal: the seal was removed
    /// (a crash cannot do this: a batch and its seal are one write).
    Unsealed,
    /// A seal's `receipts` differs from the receipts since the previous seal or epoch.
    SealMismatch,
    /// An epoch's `receipt_public_key` is not an Ed25519 public key.
    BadKey,
    /// An epoch's `format` is not the one this verifier reads.
    UnknownFormat,
    /// An epoch's pricing shares do not add up to 10000 bps.
    BadPricing,
    /// A receipt's `nanoton_per_token` differs from its epoch's pricing.
    PriceMismatch,
    /// A receipt's amounts differ from tokens x price and the epoch's split.
    AmountMismatch,
    /// A receipt's `owner_address` differs from its epoch's.
    OwnerMismatch,
    /// The sums overflow 64 bits.
    TotalsOverflow,
    /// Warning: the last line has no `\n` (a write torn by a crash; never acknowledged).
    TornTail,
    /// Warning: receipts after the last seal (a batch torn by a crash before its seal
    /// reached the disk; never acknowledged, not counted).
    UnsealedTail,
}

impl ProblemCode {
    pub fn code(self) -> &'static str {
        match self {
            ProblemCode::Malformed => "malformed",
            ProblemCode::LineTooLong => "line_too_long",
            ProblemCode::NonCanonical => "non_canonical",
            ProblemCode::PrevMismatch => "prev_mismatch",
            ProblemCode::RecordsMissing => "records_missing",
            ProblemCode::Reordered => "reordered",
            ProblemCode::BadSignature => "bad_signature",
            ProblemCode::NoEpoch => "no_epoch",
            ProblemCode::Unsealed => "unsealed",
            ProblemCode::SealMismatch => "seal_mismatch",
            ProblemCode::BadKey => "bad_key",
            ProblemCode::UnknownFormat => "unknown_format",
            ProblemCode::BadPricing => "bad_pricing",
            ProblemCode::PriceMismatch => "price_mismatch",
            ProblemCode::AmountMismatch => "amount_mismatch",
            ProblemCode::OwnerMismatch => "owner_mismatch",
            ProblemCode::TotalsOverflow => "totals_overflow",
            ProblemCode::TornTail => "torn_tail",
            ProblemCode::UnsealedTail => "unsealed_tail",
        }
    }
}

/// One problem, at a 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub line: u64,
    pub code: ProblemCode,
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: {}: {}",
            self.line,
            self.code.code(),
            self.detail
        )
    }
}

/// An epoch as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochSummary {
    pub line: u64,
    pub seq: u64,
    pub receipt_public_key: String,
    pub worker_address: String,
    pub owner_address: String,
    pub pricing: Pricing,
    /// The epoch carries attestation evidence (not checked here: the verifier of the
    /// quote pins its own policy).
    pub attested: bool,
    pub time_ms: u64,
    /// Sealed receipts of this epoch.
    pub totals: Totals,
}

/// Receipts since the last seal or epoch, counted once a seal signs them.
struct Pending {
    count: u64,
    first_line: u64,
    last_line: u64,
    /// `None` once the sums overflowed.
    totals: Option<Totals>,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            count: 0,
            first_line: 0,
            last_line: 0,
            totals: Some(Totals::default()),
        }
    }
}

struct Current {
    key: Option<VerifyingKey>,
    pricing: Pricing,
    owner: String,
}

/// Chain state after the lines fed so far.
pub struct Checker {
    prev_hash: [u8; 32],
    max_seq: Option<u64>,
    current: Option<Current>,
    /// (line, first missing seq, first seq after the gap)
    gaps: Vec<(u64, u64, u64)>,
    backward: Vec<u64>,
    problems: Vec<Problem>,
    problems_omitted: u64,
    overflow_reported: bool,
    pending: Pending,
    /// Chain state just after the last epoch or seal line (what a ledger continues from).
    committed_head: [u8; 32],
    committed_next_seq: u64,
    committed_line: u64,
    /// Offset just past everything read.
    end: u64,
    pub lines: u64,
    pub records: u64,
    /// Sums over sealed receipts.
    pub totals: Totals,
    pub epochs: Vec<EpochSummary>,
    /// Offset just past the last epoch or seal line.
    pub committed_end: u64,
    /// The unterminated last line, if any: (line number, start offset, length).
    pub torn_tail: Option<(u64, u64, u64)>,
}

impl Default for Checker {
    fn default() -> Self {
        Checker::new()
    }
}

impl Checker {
    pub fn new() -> Checker {
        Checker {
            prev_hash: [0; 32],
            max_seq: None,
            current: None,
            gaps: Vec::new(),
            backward: Vec::new(),
            problems: Vec::new(),
            problems_omitted: 0,
            overflow_reported: false,
            pending: Pending::default(),
            committed_head: [0; 32],
            committed_next_seq: 0,
            committed_line: 0,
            end: 0,
            lines: 0,
            records: 0,
            totals: Totals::default(),
            epochs: Vec::new(),
            committed_end: 0,
            torn_tail: None,
        }
    }

    /// `seq` after the last complete line.
    pub fn next_seq(&self) -> u64 {
        self.max_seq.map_or(0, |s| s.saturating_add(1))
    }

    /// Hash of the last epoch or seal line (`prev` of the next record once an
    /// uncommitted tail is cut off).
    pub fn committed_head(&self) -> [u8; 32] {
        self.committed_head
    }

    /// `seq` after the last epoch or seal line.
    pub fn committed_next_seq(&self) -> u64 {
        self.committed_next_seq
    }

    /// What follows the last epoch or seal line, if anything: (its first line number,
    /// start offset, length). Receipts without their seal and a torn last line were
    /// never acknowledged; [`super::Ledger::open`] cuts them off.
    pub fn uncommitted_tail(&self) -> Option<(u64, u64, u64)> {
        let len = self.end.saturating_sub(self.committed_end);
        (len > 0).then(|| {
            (
                self.committed_line.saturating_add(1),
                self.committed_end,
                len,
            )
        })
    }

    fn commit_point(&mut self, raw: &RawLine) {
        self.committed_head = raw.hash;
        self.committed_next_seq = self.next_seq();
        self.committed_line = raw.no;
        self.committed_end = raw.end;
    }

    fn problem(&mut self, line: u64, code: ProblemCode, detail: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                line,
                code,
                detail: detail.into(),
            });
        } else {
            self.problems_omitted = self.problems_omitted.saturating_add(1);
        }
    }

    pub fn push(&mut self, raw: &RawLine) {
        self.end = raw.end;
        if !raw.terminated {
            // Not part of the chain: it was never acknowledged (module docs of writer).
            self.torn_tail = Some((raw.no, raw.start, raw.end.saturating_sub(raw.start)));
            return;
        }
        self.lines = raw.no;
        let expected_prev = self.prev_hash;
        self.prev_hash = raw.hash;
        let Some(bytes) = raw.bytes.as_deref() else {
            self.problem(raw.no, ProblemCode::LineTooLong, "line longer than 1 MiB");
            return;
        };
        let parsed = match ParsedLine::parse(bytes) {
            Ok(p) => p,
            Err(e) => {
                self.problem(raw.no, ProblemCode::Malformed, e.to_string());
                return;
            }
        };
        self.records = self.records.saturating_add(1);
        if !parsed.is_canonical {
            self.problem(
                raw.no,
                ProblemCode::NonCanonical,
                "bytes differ from the canonical encoding of the fields",
            );
        }
        let want_prev = if raw.no == 1 {
            GENESIS_PREV.to_string()
        } else {
            hex::encode(expected_prev)
        };
        if parsed.body.prev() != want_prev {
            self.problem(
                raw.no,
                ProblemCode::PrevMismatch,
                format!(
                    "prev {} != hash of the line before {}",
                    parsed.body.prev(),
                    want_prev
                ),
            );
        }
        self.check_seq(raw.no, parsed.body.seq());
        match &parsed.body {
            Body::Epoch(e) => {
                self.epoch(raw.no, e, &parsed);
                self.commit_point(raw);
            }
            Body::Receipt(r) => self.receipt(raw.no, r),
            Body::Seal(seal) => {
                self.seal(raw.no, seal, &parsed);
                self.commit_point(raw);
            }
        }
    }

    fn check_seq(&mut self, line: u64, seq: u64) {
        let expected = self.next_seq();
        if seq == expected {
            self.max_seq = Some(seq);
        } else if seq > expected {
            // Removed or moved: decided in finish(), once later lines were seen.
            self.gaps.push((line, expected, seq));
            self.max_seq = Some(seq);
        } else {
            self.backward.push(seq);
            self.problem(
                line,
                ProblemCode::Reordered,
                format!("seq {seq} after seq {}", expected.saturating_sub(1)),
            );
        }
    }

    fn epoch(&mut self, line: u64, e: &EpochBody, parsed: &ParsedLine) {
        let p = std::mem::take(&mut self.pending);
        if p.count > 0 {
            self.problem(
                p.first_line,
                ProblemCode::Unsealed,
                format!(
                    "{} receipt(s) (lines {}-{}) have no seal before the epoch at line {line}: not counted",
                    p.count, p.first_line, p.last_line
                ),
            );
        }
        if e.format != FORMAT {
            self.problem(
                line,
                ProblemCode::UnknownFormat,
                format!("format {:?}, expected {FORMAT:?}", e.format),
            );
        }
        let key = parse_public_key(&e.receipt_public_key);
        match &key {
            None => self.problem(
                line,
                ProblemCode::BadKey,
                "receipt_public_key is not an Ed25519 public key",
            ),
            Some(k) if !parsed.signature_valid(k) => self.problem(
                line,
                ProblemCode::BadSignature,
                "epoch signature does not verify with its receipt_public_key",
            ),
            Some(_) => {}
        }
        if let Err(err) = e.pricing.validate() {
            self.problem(line, ProblemCode::BadPricing, err.to_string());
        }
        self.current = Some(Current {
            key,
            pricing: e.pricing,
            owner: e.owner_address.clone(),
        });
        self.epochs.push(EpochSummary {
            line,
            seq: e.seq,
            receipt_public_key: e.receipt_public_key.clone(),
            worker_address: e.worker_address.clone(),
            owner_address: e.owner_address.clone(),
            pricing: e.pricing,
            attested: e.attestation.as_ref().is_some_and(|a| !a.is_null()),
            time_ms: e.time_ms,
            totals: Totals::default(),
        });
    }

    fn receipt(&mut self, line: u64, r: &ReceiptBody) {
        let Some(cur) = self.current.as_ref() else {
            self.problem(
                line,
                ProblemCode::NoEpoch,
                "receipt before any epoch record",
            );
            self.add_pending(line, r);
            return;
        };
        let price_ok = r.nanoton_per_token == cur.pricing.nanoton_per_token;
        let owner_ok = r.owner_address == cur.owner;
        let pricing = cur.pricing;
        if !price_ok {
            self.problem(
                line,
                ProblemCode::PriceMismatch,
                format!(
                    "nanoton_per_token {} != epoch's {}",
                    r.nanoton_per_token, pricing.nanoton_per_token
                ),
            );
        }
        // Amounts follow from the receipt's own price so a price change is reported
        // once (price_mismatch), not twice.
        let own = r
            .prompt_tokens
            .checked_add(r.completion_tokens)
            .map(|tokens| {
                Pricing {
                    nanoton_per_token: r.nanoton_per_token,
                    ..pricing
                }
                .split(tokens)
            });
        match own {
            Some(Ok(a))
                if (a.total, a.worker, a.proxy)
                    == (r.total_nanoton, r.worker_nanoton, r.proxy_nanoton) => {}
            Some(Ok(a)) => self.problem(
                line,
                ProblemCode::AmountMismatch,
                format!(
                    "({} + {}) tokens x {} = total {} worker {} proxy {}; receipt says total {} worker {} proxy {}",
                    r.prompt_tokens, r.completion_tokens, r.nanoton_per_token, a.total, a.worker, a.proxy,
                    r.total_nanoton, r.worker_nanoton, r.proxy_nanoton
                ),
            ),
            // The epoch's bad_pricing already says why no split exists.
            Some(Err(PricingError::SharesDoNotSum { .. })) => {}
            Some(Err(PricingError::Overflow { .. })) | None => self.problem(
                line,
                ProblemCode::AmountMismatch,
                "tokens x price overflows 64 bits",
            ),
        }
        if !owner_ok {
            self.problem(
                line,
                ProblemCode::OwnerMismatch,
                format!(
                    "owner_address {:?} differs from the epoch's",
                    r.owner_address
                ),
            );
        }
        self.add_pending(line, r);
    }

    fn add_pending(&mut self, line: u64, r: &ReceiptBody) {
        let p = &mut self.pending;
        if p.count == 0 {
            p.first_line = line;
        }
        p.count = p.count.saturating_add(1);
        p.last_line = line;
        p.totals = p.totals.and_then(|t| t.checked_add(r));
    }

    fn seal(&mut self, line: u64, seal: &SealBody, parsed: &ParsedLine) {
        let p = std::mem::take(&mut self.pending);
        match self.current.as_ref() {
            None => self.problem(line, ProblemCode::NoEpoch, "seal before any epoch record"),
            Some(cur) if !cur.key.as_ref().is_some_and(|k| parsed.signature_valid(k)) => self
                .problem(
                    line,
                    ProblemCode::BadSignature,
                    format!(
                        "seal signature does not verify with the epoch's key: the {} receipt(s) before it are not authenticated",
                        p.count
                    ),
                ),
            Some(_) => {}
        }
        if seal.receipts != p.count {
            self.problem(
                line,
                ProblemCode::SealMismatch,
                format!(
                    "seal counts {} receipt(s); {} since the previous seal or epoch",
                    seal.receipts, p.count
                ),
            );
        }
        if p.count == 0 {
            return;
        }
        let sums = p.totals.and_then(|batch| {
            let genesis = self.totals.checked_sum(&batch)?;
            let epoch = match self.epochs.last() {
                Some(e) => Some(e.totals.checked_sum(&batch)?),
                None => None,
            };
            Some((genesis, epoch))
        });
        match sums {
            Some((genesis, epoch)) => {
                self.totals = genesis;
                if let (Some(e), Some(last)) = (epoch, self.epochs.last_mut()) {
                    last.totals = e;
                }
            }
            None => {
                if !self.overflow_reported {
                    self.overflow_reported = true;
                    self.problem(
                        line,
                        ProblemCode::TotalsOverflow,
                        "token or nanoTON sums overflow 64 bits",
                    );
                }
            }
        }
    }

    /// Ends the walk: classifies seq gaps and returns problems (sorted by line),
    /// warnings and the count of problems left out past [`MAX_PROBLEMS`].
    pub fn finish(&mut self) -> (Vec<Problem>, Vec<Problem>, u64) {
        let mut backward = std::mem::take(&mut self.backward);
        backward.sort_unstable();
        for (line, from, to) in std::mem::take(&mut self.gaps) {
            // A skipped seq that shows up later (it can only show up going backwards)
            // was moved; one that never shows up was removed.
            let idx = backward.partition_point(|&s| s < from);
            let moved = backward.get(idx).is_some_and(|&s| s < to);
            if moved {
                self.problem(
                    line,
                    ProblemCode::Reordered,
                    format!("seq {to} where {from} was expected; the skipped seqs appear later"),
                );
            } else {
                let n = to.saturating_sub(from);
                self.problem(
                    line,
                    ProblemCode::RecordsMissing,
                    format!("seq {to} where {from} was expected: {n} record(s) missing"),
                );
            }
        }
        let mut problems = std::mem::take(&mut self.problems);
        problems.sort_by_key(|p| p.line);
        let mut warnings = Vec::new();
        let p = &self.pending;
        if p.count > 0 {
            warnings.push(Problem {
                line: p.first_line,
                code: ProblemCode::UnsealedTail,
                detail: format!(
                    "{} receipt(s) (lines {}-{}) after the last seal: a batch torn by a crash before its seal reached the disk; never acknowledged, not counted",
                    p.count, p.first_line, p.last_line
                ),
            });
        }
        if let Some((line, _, len)) = self.torn_tail {
            warnings.push(Problem {
                line,
                code: ProblemCode::TornTail,
                detail: format!(
                    "last line has {len} bytes and no newline: a torn write, not part of the chain"
                ),
            });
        }
        (problems, warnings, self.problems_omitted)
    }
}
