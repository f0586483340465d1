//! The seam between serving and the receipt ledger.
//!
//! A request is billed only once it completed: the receipt is appended (durable:
//! the ledger acknowledges after fsync) before the last byte reaches the client, so a
//! crash can lose an unanswered request but never an answered, unbilled one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::accounting::UsageTokens;
use crate::ledger::{LedgerError, LedgerHandle, ReceiptInput};
use crate::server::metrics::Metrics;

/// Records receipts for completed requests.
pub struct Billing {
    ledger: LedgerHandle,
    metrics: Arc<Metrics>,
    /// Random per boot, so request ids stay unique across restarts of the agent.
    boot_id: String,
    next: AtomicU64,
}

impl Billing {
    pub fn new(ledger: LedgerHandle, metrics: Arc<Metrics>) -> Self {
        use rand_core::RngCore as _;
        let mut id = [0u8; 8];
        rand_core::OsRng.fill_bytes(&mut id);
        Billing {
            ledger,
            metrics,
            boot_id: hex::encode(id),
            next: AtomicU64::new(0),
        }
    }

    /// Append a receipt for `usage` of a completed request on `route`; resolves once
    /// the receipt is durable.
    pub async fn record(
        &self,
        route: &'static str,
        model: Option<&str>,
        usage: UsageTokens,
    ) -> Result<(), LedgerError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let input = ReceiptInput {
            request_id: format!("{}-{n}", self.boot_id),
            model: model.unwrap_or_default().to_string(),
            endpoint: route.to_string(),
            usage,
        };
        self.ledger.append(input).await?;
        self.metrics.prompt_tokens.inc_by(usage.prompt_tokens);
        self.metrics
            .completion_tokens
            .inc_by(usage.completion_tokens);
        self.metrics.receipts.inc();
        Ok(())
    }
}
