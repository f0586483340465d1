//! Append-only, fsync'd, hash-chained ledger of Ed25519-signed usage receipts (issue
//! 6, item 7): a crash of the engine or the agent loses no acknowledged request, and a
//! removed, edited, reordered or forged receipt is detectable (`cocoon-agent ledger
//! verify DIR`).
//!
//! File: `DIR/ledger.jsonl`, one record per line; formats in [`record`]. Each agent
//! boot opens it with a fresh Ed25519 key (generated inside the TEE, never written
//! anywhere) and starts an *epoch* record naming that key. Receipts are written in
//! batches (group commit), each batch followed by a *seal* that the key signs over the
//! chain head, so one signature covers every receipt of the batch. The epoch record can
//! carry the RA-TLS attestation, which binds the key to the measured image: whoever
//! holds a quote-verified key trusts the receipts its seals sign.
//!
//! - [`Ledger`]: open (verify, cut a torn batch, lock) and append (group commit).
//! - [`LedgerHandle`]: the same behind a writer thread, for async callers.
//! - [`verify()`]: the verifier, reporting every problem with its line number.

pub mod check;
mod handle;
pub mod lines;
pub mod record;
mod totals;
mod verify;
mod writer;

pub use check::{EpochSummary, Problem, ProblemCode, Totals};
pub use handle::{LedgerHandle, MAX_BATCH};
pub use record::{Body, EpochBody, ReceiptBody, SealBody, FORMAT, GENESIS_PREV, LEDGER_FILE};
pub use verify::{verify, verify_file, verify_reader, VerifyError, VerifyReport};
pub use writer::{
    Ack, EpochInfo, Ledger, LedgerError, LedgerTotals, OpenReport, Receipt, ReceiptInput,
    MAX_FIELD_LEN,
};
