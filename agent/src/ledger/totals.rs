//! Sums over receipts, as the writer keeps them and the verifier recomputes them.
#![deny(clippy::arithmetic_side_effects)]

use serde::{Deserialize, Serialize};

use super::record::ReceiptBody;

/// Sums over receipts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub receipts: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_nanoton: u64,
    pub worker_nanoton: u64,
    pub proxy_nanoton: u64,
}

impl Totals {
    /// One receipt's share.
    pub fn of<S>(r: &ReceiptBody<S>) -> Totals {
        Totals {
            receipts: 1,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            total_nanoton: r.total_nanoton,
            worker_nanoton: r.worker_nanoton,
            proxy_nanoton: r.proxy_nanoton,
        }
    }

    /// Adds one receipt; `None` on overflow (self unchanged).
    pub fn checked_add<S>(&self, r: &ReceiptBody<S>) -> Option<Totals> {
        self.checked_sum(&Totals::of(r))
    }

    /// `self + other`, field by field; `None` on overflow.
    pub fn checked_sum(&self, o: &Totals) -> Option<Totals> {
        Some(Totals {
            receipts: self.receipts.checked_add(o.receipts)?,
            prompt_tokens: self.prompt_tokens.checked_add(o.prompt_tokens)?,
            completion_tokens: self.completion_tokens.checked_add(o.completion_tokens)?,
            total_nanoton: self.total_nanoton.checked_add(o.total_nanoton)?,
            worker_nanoton: self.worker_nanoton.checked_add(o.worker_nanoton)?,
            proxy_nanoton: self.proxy_nanoton.checked_add(o.proxy_nanoton)?,
        })
    }
}
