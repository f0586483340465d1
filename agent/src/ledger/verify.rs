//! `cocoon-agent ledger verify DIR`: walks a ledger and reports every problem.
//!
//! What it proves: every line from the first to the last is chained to the line before
//! and numbered without gaps; every receipt is followed, within its epoch, by a seal
//! that the epoch's key signed over the chain head (so the receipt is signed too), and
//! priced by its epoch's pricing. What it cannot prove alone: that lines were not cut off the
//! *end* (a shorter file is still a valid chain) — compare `head_hash`/`seq` with a
//! copy a proxy or owner kept — and that an epoch's key really lives in a TEE — check
//! the epoch's `attestation` quote against a policy.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::check::{Checker, EpochSummary, Problem, Totals};
use super::lines::LineReader;
use super::record::LEDGER_FILE;

/// Why a ledger could not be read at all (a ledger that reads but is wrong is a
/// [`VerifyReport`] with problems, not an error).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("no ledger at {path}")]
    Missing { path: PathBuf },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Result of a verification; JSON-serializable for `--json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// No problems (warnings allowed).
    pub ok: bool,
    pub path: String,
    /// Complete (`\n`-terminated) lines.
    pub lines: u64,
    /// Lines that parsed as records.
    pub records: u64,
    /// Sums over all sealed receipts since genesis.
    pub totals: Totals,
    pub epochs: Vec<EpochSummary>,
    /// Every problem found, ordered by line.
    pub problems: Vec<Problem>,
    /// Problems found beyond the report's cap (see `check::MAX_PROBLEMS`).
    pub problems_omitted: u64,
    /// Not failures: a torn last line, receipts after the last seal (a torn batch).
    pub warnings: Vec<Problem>,
    /// `seq` of the last epoch or seal record.
    pub last_seq: Option<u64>,
    /// Hex SHA-256 of the last epoch or seal line: a checkpoint a third party can keep
    /// to detect later truncation.
    pub head_hash: String,
}

/// Verifies `DIR/ledger.jsonl`.
pub fn verify(dir: &Path) -> Result<VerifyReport, VerifyError> {
    verify_file(&dir.join(LEDGER_FILE))
}

/// Verifies a ledger file at any path.
pub fn verify_file(path: &Path) -> Result<VerifyReport, VerifyError> {
    let file = File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => VerifyError::Missing {
            path: path.to_path_buf(),
        },
        _ => VerifyError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    verify_reader(
        BufReader::with_capacity(1 << 16, file),
        &path.display().to_string(),
    )
    .map_err(|source| VerifyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Verifies ledger bytes from any reader; `label` names it in the report.
pub fn verify_reader(reader: impl BufRead, label: &str) -> io::Result<VerifyReport> {
    let mut checker = Checker::new();
    let mut lines = LineReader::new(reader);
    while let Some(line) = lines.next_line()? {
        checker.push(&line);
    }
    Ok(report(checker, label))
}

pub(crate) fn report(mut checker: Checker, label: &str) -> VerifyReport {
    let (problems, warnings, problems_omitted) = checker.finish();
    let last_seq = checker.committed_next_seq().checked_sub(1);
    VerifyReport {
        ok: problems.is_empty() && problems_omitted == 0,
        path: label.to_string(),
        lines: checker.lines,
        records: checker.records,
        totals: checker.totals,
        epochs: checker.epochs.clone(),
        problems,
        problems_omitted,
        warnings,
        last_seq,
        head_hash: hex::encode(checker.committed_head()),
    }
}

impl VerifyReport {
    /// Human-readable summary for the CLI's text mode.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let verdict = if self.ok { "OK" } else { "FAILED" };
        let _ = writeln!(
            s,
            "ledger {}: {verdict} ({} lines, {} records, {} epochs)",
            self.path,
            self.lines,
            self.records,
            self.epochs.len()
        );
        let t = &self.totals;
        let _ = writeln!(
            s,
            "  total: {} receipts, {} prompt + {} completion tokens, {} nanoTON (worker {}, proxy {})",
            t.receipts, t.prompt_tokens, t.completion_tokens, t.total_nanoton, t.worker_nanoton, t.proxy_nanoton
        );
        for e in &self.epochs {
            let t = &e.totals;
            let _ = writeln!(
                s,
                "  epoch at line {} (seq {}, key {}, {}): {} receipts, {} tokens, {} nanoTON",
                e.line,
                e.seq,
                e.receipt_public_key
                    .get(..16)
                    .unwrap_or(&e.receipt_public_key),
                if e.attested {
                    "attested"
                } else {
                    "no attestation"
                },
                t.receipts,
                t.prompt_tokens.saturating_add(t.completion_tokens),
                t.total_nanoton
            );
        }
        for p in &self.problems {
            let _ = writeln!(s, "  problem: {p}");
        }
        if self.problems_omitted > 0 {
            let _ = writeln!(s, "  ... and {} more problems", self.problems_omitted);
        }
        for w in &self.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
        let _ = writeln!(s, "  head: {}", self.head_hash);
        s
    }
}
