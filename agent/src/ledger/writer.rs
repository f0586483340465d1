//! The appending side: one process at a time (flock), every receipt durable before it
//! is acknowledged.
//!
//! Crash model: a batch of receipts and the seal that signs them are written with one
//! `write(2)`, then `fdatasync(2)`; [`Ledger::append_batch`] returns only after both. A
//! crash (power loss) in between can leave a prefix of the batch: whole receipt lines
//! without their seal, and a last line without its `\n`. No caller was told any of it
//! exists, so [`Ledger::open`] cuts everything after the last seal (or epoch) off. A
//! `kill -9` of the agent cannot tear a batch (the kernel completes the write into the
//! page cache), it can only lose receipts not yet acknowledged.
#![deny(clippy::arithmetic_side_effects)]

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::{SigningKey, VerifyingKey};
use nix::fcntl::{Flock, FlockArg};
use serde_json::Value;

use super::check::{Checker, Problem, Totals, MAX_PROBLEMS};
use super::lines::LineReader;
use super::record::{
    hex32, hex32_in, line_hash, sign_line, sort_keys, Body, EpochBody, ParsedLine, ReceiptBody,
    ReceiptSigner, SealBody, FORMAT, LEDGER_FILE,
};
use crate::accounting::{Pricing, PricingError, UsageTokens};

/// Longest `request_id`, `model` or `endpoint` accepted, so a receipt line stays far
/// below the verifier's line cap.
pub const MAX_FIELD_LEN: usize = 4096;
/// Largest batch buffer kept between batches (a full batch of ordinary receipts is
/// about 100 KiB; one of maximal fields would be several MiB and is not kept).
const SCRATCH_KEEP: usize = 1 << 20;

/// Why the ledger could not be opened or written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("ledger {path} is locked by another process (another agent is running)")]
    Locked { path: PathBuf },
    #[error("ledger {path} fails verification ({} problems{}), first: {}", problems.len(), if *omitted > 0 { " and more" } else { "" }, problems.first().map(|p| p.to_string()).unwrap_or_default())]
    Corrupt {
        path: PathBuf,
        problems: Vec<Problem>,
        omitted: u64,
    },
    #[error("ledger pricing: {0}")]
    Pricing(#[from] PricingError),
    #[error("receipt field `{field}` is {len} bytes, more than {MAX_FIELD_LEN}")]
    FieldTooLong { field: &'static str, len: usize },
    #[error("encoding a ledger record: {0}")]
    Encode(String),
    #[error("ledger totals would overflow 64 bits")]
    TotalsOverflow,
    #[error("ledger is unusable after a failed fsync; restart the agent to recover")]
    Poisoned,
    #[error("ledger writer thread has stopped")]
    Closed,
}

/// What the agent knows at open time, recorded in the epoch record.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochInfo {
    pub worker_address: String,
    /// Payout address; use the parsed, normalised form (`ton::OwnerAddress::raw()`).
    pub owner_address: String,
    pub pricing: Pricing,
    /// RA-TLS quote/claims binding the receipt key to the TEE; `None` when unavailable.
    pub attestation: Option<Value>,
}

/// One request to account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptInput {
    pub request_id: String,
    pub model: String,
    pub endpoint: String,
    pub usage: UsageTokens,
}

/// Where a durable receipt sits in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub seq: u64,
    /// SHA-256 of the receipt's line (the next record's `prev`).
    pub hash: [u8; 32],
    /// `seq` of the seal that covers it.
    pub sealed_by: u64,
}

/// A durable receipt.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub body: ReceiptBody,
    /// The whole line as written (without `\n`), e.g. to hand to the client.
    pub line: String,
    /// Hex SHA-256 of `line` (the next record's `prev`).
    pub hash: String,
    /// `seq` of the seal whose signature covers this receipt (written in the same
    /// batch, durable together with it).
    pub sealed_by: u64,
}

/// Sums since genesis and since this open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LedgerTotals {
    pub genesis: Totals,
    pub epoch: Totals,
}

/// What [`Ledger::open`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OpenReport {
    /// Records in the file before this open (counting those of a torn batch).
    pub previous_records: u64,
    /// Bytes of a torn batch cut off (receipts whose seal never made it to disk, and a
    /// last line without `\n`), with the line number where the cut starts.
    pub truncated_bytes: u64,
    pub torn_line: Option<u64>,
    /// `seq` of this open's epoch record.
    pub epoch_seq: u64,
}

/// An open ledger, exclusively locked.
pub struct Ledger {
    file: Flock<File>,
    path: PathBuf,
    signer: ReceiptSigner,
    owner_address: String,
    pricing: Pricing,
    head: [u8; 32],
    next_seq: u64,
    /// File length up to the last durable line.
    len: u64,
    totals: LedgerTotals,
    poisoned: bool,
    report: OpenReport,
    /// The batch buffer of [`Ledger::append_acks`], reused.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Ledger {
    // The signing key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path)
            .field(
                "public_key",
                &hex::encode(self.signer.verifying_key().as_bytes()),
            )
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LedgerError + 'a {
    move |e| LedgerError::Io {
        op,
        path: path.to_path_buf(),
        source: Arc::new(e),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn check_len(field: &'static str, s: &str) -> Result<(), LedgerError> {
    if s.len() > MAX_FIELD_LEN {
        return Err(LedgerError::FieldTooLong {
            field,
            len: s.len(),
        });
    }
    Ok(())
}

impl Ledger {
    /// Opens (or creates) `dir/ledger.jsonl`, verifies the existing chain, cuts off a
    /// torn last line, and appends an epoch record introducing `signer`'s public key.
    ///
    /// `signer` is this boot's receipt key, generated in TEE memory; the ledger never
    /// writes it anywhere. A chain that fails verification is not appended to: the
    /// error lists the problems (move the file aside to start a new ledger).
    pub fn open(dir: &Path, signer: SigningKey, epoch: EpochInfo) -> Result<Ledger, LedgerError> {
        epoch.pricing.validate()?;
        check_len("owner_address", &epoch.owner_address)?;
        check_len("worker_address", &epoch.worker_address)?;
        std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let path = dir.join(LEDGER_FILE);
        let existed = path.exists();
        // O_APPEND: every write lands at the end even if something else moved the
        // offset; reads (the verification below) use the same descriptor.
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("open", &path))?;
        let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(f) => f,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Err(LedgerError::Locked { path }),
            Err((_, errno)) => return Err(io_err("lock", &path)(io::Error::from(errno))),
        };
        if !existed {
            // The new directory entry must survive a crash too.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err("fsync directory", dir))?;
        }

        let mut checker = Checker::new();
        let mut lines = LineReader::new(BufReader::with_capacity(1 << 16, &*file));
        while let Some(line) = lines.next_line().map_err(io_err("read", &path))? {
            checker.push(&line);
        }
        let (problems, _warnings, omitted) = checker.finish();
        if !problems.is_empty() {
            return Err(LedgerError::Corrupt {
                path,
                problems: problems.into_iter().take(MAX_PROBLEMS).collect(),
                omitted,
            });
        }
        let mut report = OpenReport {
            previous_records: checker.records,
            ..OpenReport::default()
        };
        if let Some((line, start, bytes)) = checker.uncommitted_tail() {
            file.set_len(start)
                .map_err(io_err("truncate torn batch of", &path))?;
            file.sync_all().map_err(io_err("fsync", &path))?;
            tracing::warn!(path = %path.display(), line, bytes, "ledger: cut off a torn batch (never acknowledged)");
            report.truncated_bytes = bytes;
            report.torn_line = Some(line);
        }

        let signer = ReceiptSigner::new(&signer).map_err(LedgerError::Encode)?;
        let mut ledger = Ledger {
            file,
            path,
            signer,
            owner_address: epoch.owner_address.clone(),
            pricing: epoch.pricing,
            head: checker.committed_head(),
            next_seq: checker.committed_next_seq(),
            len: checker.committed_end,
            totals: LedgerTotals {
                genesis: checker.totals,
                epoch: Totals::default(),
            },
            poisoned: false,
            report,
            scratch: Vec::new(),
        };
        let body = Body::Epoch(EpochBody {
            seq: ledger.next_seq,
            prev: hex32(&ledger.head),
            format: FORMAT.to_string(),
            receipt_public_key: hex::encode(ledger.signer.verifying_key().as_bytes()),
            worker_address: epoch.worker_address,
            owner_address: epoch.owner_address,
            pricing: epoch.pricing,
            attestation: epoch.attestation.map(sort_keys),
            time_ms: now_ms(),
        });
        let line =
            sign_line(&body, &ledger.signer).map_err(|e| LedgerError::Encode(e.to_string()))?;
        ledger.report.epoch_seq = ledger.next_seq;
        let head = line_hash(&line);
        let mut buf = line;
        buf.push(b'\n');
        ledger.commit(&buf, 1, head)?;
        Ok(ledger)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signer.verifying_key()
    }

    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    pub fn totals(&self) -> LedgerTotals {
        self.totals
    }

    /// Pricing of this epoch.
    pub fn pricing(&self) -> Pricing {
        self.pricing
    }

    /// Writes one receipt and returns once it is on disk.
    pub fn append(&mut self, input: &ReceiptInput) -> Result<Receipt, LedgerError> {
        self.append_batch(std::slice::from_ref(input))
            .pop()
            .unwrap_or(Err(LedgerError::Closed))
    }

    /// Group commit: writes all receipts and one seal signing them with one write and
    /// one fsync. The result for each input is in input order; a receipt is `Ok` only
    /// once durable. An input that cannot be priced fails alone; an I/O failure fails
    /// the whole batch.
    pub fn append_batch(&mut self, inputs: &[ReceiptInput]) -> Vec<Result<Receipt, LedgerError>> {
        let mut buf = Vec::new();
        let results = self.write_batch(inputs, &mut buf);
        results
            .into_iter()
            .map(|r| {
                let (ack, span) = r?;
                let line = buf
                    .get(span)
                    .ok_or_else(|| LedgerError::Encode("receipt span outside its batch".into()))?;
                let body = match ParsedLine::parse(line).map(|p| p.body) {
                    Ok(Body::Receipt(b)) => b,
                    _ => return Err(LedgerError::Encode("written receipt does not parse".into())),
                };
                Ok(Receipt {
                    body,
                    line: String::from_utf8(line.to_vec())
                        .map_err(|_| LedgerError::Encode("a ledger line is not UTF-8".into()))?,
                    hash: hex32(&ack.hash),
                    sealed_by: ack.sealed_by,
                })
            })
            .collect()
    }

    /// [`Ledger::append_batch`] for the serving path: the same write and fsync, but each
    /// caller learns only its receipt's place in the chain, so nothing is allocated per
    /// receipt on the writer thread (and freed on another).
    pub fn append_acks(&mut self, inputs: &[ReceiptInput]) -> Vec<Result<Ack, LedgerError>> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        let results = self
            .write_batch(inputs, &mut buf)
            .into_iter()
            .map(|r| r.map(|(ack, _)| ack))
            .collect();
        // Keep the allocation for the next batch unless one huge batch inflated it.
        if buf.capacity() <= SCRATCH_KEEP {
            self.scratch = buf;
        }
        results
    }

    /// Encodes the receipts and their seal into `buf` (one line each, `\n`-terminated)
    /// and commits it. Each `Ok` carries the receipt's span (without `\n`) in `buf`.
    fn write_batch(
        &mut self,
        inputs: &[ReceiptInput],
        buf: &mut Vec<u8>,
    ) -> Vec<Result<(Ack, Range<usize>), LedgerError>> {
        if self.poisoned {
            return inputs.iter().map(|_| Err(LedgerError::Poisoned)).collect();
        }
        let time_ms = now_ms();
        let mut results = Vec::with_capacity(inputs.len());
        let mut head = self.head;
        let mut seq = self.next_seq;
        let mut totals = self.totals;
        let mut receipts: u64 = 0;
        for input in inputs {
            let start = buf.len();
            match self.encode_receipt(input, seq, &head, time_ms, &totals, buf) {
                Ok(new_totals) => {
                    let span = start..buf.len();
                    let hash = line_hash(buf.get(span.clone()).unwrap_or_default());
                    buf.push(b'\n');
                    results.push(Ok((
                        Ack {
                            seq,
                            hash,
                            // Set once the batch's seal is written.
                            sealed_by: 0,
                        },
                        span,
                    )));
                    head = hash;
                    seq = seq.saturating_add(1);
                    receipts = receipts.saturating_add(1);
                    totals = new_totals;
                }
                Err(e) => {
                    buf.truncate(start);
                    results.push(Err(e));
                }
            }
        }
        if receipts == 0 {
            return results;
        }
        let seal = Body::Seal(SealBody {
            seq,
            prev: hex32(&head),
            receipts,
        });
        let seal_line = match sign_line(&seal, &self.signer) {
            Ok(l) => l,
            Err(e) => {
                let e = LedgerError::Encode(e);
                return results.into_iter().map(|r| r.and(Err(e.clone()))).collect();
            }
        };
        head = line_hash(&seal_line);
        buf.extend_from_slice(&seal_line);
        buf.push(b'\n');
        if let Err(e) = self.commit(buf, receipts.saturating_add(1), head) {
            return results.into_iter().map(|r| r.and(Err(e.clone()))).collect();
        }
        self.totals = totals;
        for (ack, _) in results.iter_mut().flatten() {
            ack.sealed_by = seq;
        }
        results
    }

    /// Appends one receipt line (without `\n`) for `input` to `buf`; returns the totals
    /// with it counted. On error `buf` may hold part of the line (the caller cuts it).
    fn encode_receipt(
        &self,
        input: &ReceiptInput,
        seq: u64,
        prev: &[u8; 32],
        time_ms: u64,
        totals: &LedgerTotals,
        buf: &mut Vec<u8>,
    ) -> Result<LedgerTotals, LedgerError> {
        check_len("request_id", &input.request_id)?;
        check_len("model", &input.model)?;
        check_len("endpoint", &input.endpoint)?;
        let u = input.usage;
        let tokens = u
            .prompt_tokens
            .checked_add(u.completion_tokens)
            .ok_or(LedgerError::TotalsOverflow)?;
        let amounts = self.pricing.split(tokens)?;
        let mut prev_hex = [0u8; 64];
        let prev = hex32_in(prev, &mut prev_hex)
            .ok_or_else(|| LedgerError::Encode("hex of the previous line's hash".into()))?;
        let body = ReceiptBody {
            seq,
            prev,
            request_id: input.request_id.as_str(),
            model: &input.model,
            endpoint: &input.endpoint,
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            nanoton_per_token: self.pricing.nanoton_per_token,
            total_nanoton: amounts.total,
            worker_nanoton: amounts.worker,
            proxy_nanoton: amounts.proxy,
            owner_address: &self.owner_address,
            time_ms,
        };
        let new_totals = LedgerTotals {
            genesis: totals
                .genesis
                .checked_add(&body)
                .ok_or(LedgerError::TotalsOverflow)?,
            epoch: totals
                .epoch
                .checked_add(&body)
                .ok_or(LedgerError::TotalsOverflow)?,
        };
        let line: Body<&str> = Body::Receipt(body);
        serde_json::to_writer(&mut *buf, &line).map_err(|e| LedgerError::Encode(e.to_string()))?;
        Ok(new_totals)
    }

    /// Appends `buf` (`lines` whole lines, each ending in `\n`) and makes it durable; on
    /// success advances the chain to `head`, the hash of the last line.
    fn commit(&mut self, buf: &[u8], lines: u64, head: [u8; 32]) -> Result<(), LedgerError> {
        if let Err(e) = (&*self.file).write_all(buf) {
            // Undo a partial write so the chain on disk stays what we believe it is;
            // if even that fails, only a reopen (which cuts torn lines) can recover.
            let undone = self.file.set_len(self.len).is_ok() && self.file.sync_data().is_ok();
            if !undone {
                self.poisoned = true;
            }
            return Err(io_err("write", &self.path)(e));
        }
        if let Err(e) = self.file.sync_data() {
            // After a failed fsync the kernel may have dropped the dirty pages and a
            // retry can report success for data that is gone (PostgreSQL "fsyncgate",
            // 2018): never acknowledge anything from this descriptor again.
            self.poisoned = true;
            return Err(io_err("fsync", &self.path)(e));
        }
        self.head = head;
        self.next_seq = self.next_seq.saturating_add(lines);
        self.len = self.len.saturating_add(buf.len() as u64);
        Ok(())
    }
}
