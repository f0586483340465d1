//! An async front for [`Ledger`]: a dedicated writer thread owns the file, so a slow
//! fsync blocks that thread and never a tokio worker.
//!
//! Group commit: the writer takes every request already queued (up to
//! [`MAX_BATCH`]) and writes them with one write and one fsync; each caller is
//! answered only after that fsync. Under concurrency this turns N fsyncs into one
//! without delaying a lone request (no timer: it never waits for company).

use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use tokio::sync::{mpsc, oneshot};

use super::writer::{Ack, Ledger, LedgerError, LedgerTotals, ReceiptInput};

/// Most receipts per write + fsync.
pub const MAX_BATCH: usize = 256;
/// Queued requests before `append` waits (back-pressure on a stalled disk).
const QUEUE: usize = 4096;

enum Command {
    Append(ReceiptInput, oneshot::Sender<Result<Ack, LedgerError>>),
    Totals(oneshot::Sender<LedgerTotals>),
}

/// Cloneable handle; the writer thread stops (and the file lock is released) when the
/// last handle is dropped and the queue is drained.
#[derive(Clone)]
pub struct LedgerHandle {
    tx: mpsc::Sender<Command>,
    public_key: VerifyingKey,
    path: Arc<std::path::PathBuf>,
}

impl std::fmt::Debug for LedgerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerHandle")
            .field("path", &self.path)
            .field("public_key", &hex::encode(self.public_key.as_bytes()))
            .finish()
    }
}

impl LedgerHandle {
    /// Moves `ledger` to a new writer thread.
    pub fn spawn(ledger: Ledger) -> Result<LedgerHandle, LedgerError> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let public_key = ledger.verifying_key();
        let path = Arc::new(ledger.path().to_path_buf());
        std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer_loop(ledger, rx))
            .map_err(|e| LedgerError::Io {
                op: "spawn writer for",
                path: path.as_ref().clone(),
                source: Arc::new(e),
            })?;
        Ok(LedgerHandle {
            tx,
            public_key,
            path,
        })
    }

    /// Appends a receipt; resolves once it is durable. If the future is dropped
    /// before it resolves, the receipt may still be written (never the reverse).
    pub async fn append(&self, input: ReceiptInput) -> Result<Ack, LedgerError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Append(input, reply))
            .await
            .map_err(|_| LedgerError::Closed)?;
        rx.await.map_err(|_| LedgerError::Closed)?
    }

    /// Totals including at least every receipt acknowledged before this call.
    pub async fn totals(&self) -> Result<LedgerTotals, LedgerError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Totals(reply))
            .await
            .map_err(|_| LedgerError::Closed)?;
        rx.await.map_err(|_| LedgerError::Closed)
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.public_key
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// Makes the calling thread SCHED_BATCH: the scheduler then never lets it preempt a
/// running thread when it wakes. Without this, on a busy core every receipt request
/// woke the writer at once, so it wrote batches of one and paid two context switches
/// per request (a quarter of the agent's CPU in the proxy benchmark); with it, the
/// writer runs when the serving threads have nothing left to do, and takes everything
/// queued by then in one batch.
fn yield_to_serving_threads() {
    let param = nix::libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler(2) reads `param` only; pid 0 is the calling thread.
    let rc = unsafe { nix::libc::sched_setscheduler(0, nix::libc::SCHED_BATCH, &param) };
    if rc != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "ledger writer stays SCHED_OTHER"
        );
    }
}

fn writer_loop(mut ledger: Ledger, mut rx: mpsc::Receiver<Command>) {
    yield_to_serving_threads();
    // blocking_recv is right here: this is a plain thread, outside any runtime.
    while let Some(first) = rx.blocking_recv() {
        let mut inputs = Vec::new();
        let mut replies = Vec::new();
        let mut totals_waiters = Vec::new();
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Command::Append(input, reply) => {
                    inputs.push(input);
                    replies.push(reply);
                }
                Command::Totals(reply) => totals_waiters.push(reply),
            }
            if inputs.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !inputs.is_empty() {
            let results = ledger.append_acks(&inputs);
            for (reply, result) in replies.into_iter().zip(results) {
                // A caller that went away still had its receipt written.
                let _ = reply.send(result);
            }
        }
        for reply in totals_waiters {
            let _ = reply.send(ledger.totals());
        }
    }
}
