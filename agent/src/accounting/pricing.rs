//! Price per token and the split between worker and proxy.
//!
//! Every amount is an integer number of nanoTON (1 TON = 10^9 nanoTON, the unit TON's
//! `Coins` type counts in), so a receipt's numbers can be re-derived exactly by anyone.
#![deny(clippy::arithmetic_side_effects)]

use serde::{Deserialize, Serialize};

/// Basis points in a whole (100 %).
pub const BPS_WHOLE: u32 = 10_000;

/// Pricing configuration (`[pricing]` in the agent's TOML, and recorded in every ledger
/// epoch so a verifier re-derives each receipt's amounts from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pricing {
    /// Price of one token (prompt or completion) in nanoTON. Default 20.
    pub nanoton_per_token: u64,
    /// Worker's share of each charge in basis points (1/100 of a percent). Default 9500
    /// (95 %). Rounded down; the remainder goes to the proxy.
    pub worker_share_bps: u32,
    /// Proxy's share of each charge in basis points. Default 500 (5 %). Must add up with
    /// `worker_share_bps` to 10000; it is implied by it, and stated so a config reader
    /// sees the split without arithmetic.
    pub proxy_share_bps: u32,
}

impl Default for Pricing {
    fn default() -> Self {
        Pricing {
            nanoton_per_token: 20,
            worker_share_bps: 9_500,
            proxy_share_bps: 500,
        }
    }
}

/// A charge in nanoTON; always `worker + proxy == total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amounts {
    /// Tokens times price.
    pub total: u64,
    /// The worker's part: `floor(total * worker_share_bps / 10000)`.
    pub worker: u64,
    /// The proxy's part: `total - worker`, so rounding never loses a nanoTON.
    pub proxy: u64,
}

/// Why a pricing config or a charge is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("pricing: worker_share_bps ({worker}) + proxy_share_bps ({proxy}) must equal 10000")]
    SharesDoNotSum { worker: u32, proxy: u32 },
    #[error("pricing: {tokens} tokens at {nanoton_per_token} nanoTON each overflows u64")]
    Overflow { tokens: u64, nanoton_per_token: u64 },
}

impl Pricing {
    /// Checks the shares add up to exactly 100 %.
    pub fn validate(&self) -> Result<(), PricingError> {
        let sum = u64::from(self.worker_share_bps).saturating_add(u64::from(self.proxy_share_bps));
        if sum != u64::from(BPS_WHOLE) {
            return Err(PricingError::SharesDoNotSum {
                worker: self.worker_share_bps,
                proxy: self.proxy_share_bps,
            });
        }
        Ok(())
    }

    /// Charge for `tokens` tokens and its split. Validates first, so a split can never
    /// hand out more than the total.
    pub fn split(&self, tokens: u64) -> Result<Amounts, PricingError> {
        self.validate()?;
        let total = tokens
            .checked_mul(self.nanoton_per_token)
            .ok_or(PricingError::Overflow {
                tokens,
                nanoton_per_token: self.nanoton_per_token,
            })?;
        // u128 holds u64::MAX * 10000 with room to spare; the quotient is <= total
        // because worker_share_bps <= 10000 (validated above).
        let worker_wide = u128::from(total)
            .saturating_mul(u128::from(self.worker_share_bps))
            .checked_div(u128::from(BPS_WHOLE))
            .unwrap_or(0);
        let worker = u64::try_from(worker_wide).unwrap_or(total).min(total);
        let proxy = total.saturating_sub(worker);
        Ok(Amounts {
            total,
            worker,
            proxy,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_issue() {
        let p = Pricing::default();
        assert_eq!(p.nanoton_per_token, 20);
        assert_eq!(p.worker_share_bps, 9500);
        assert_eq!(p.proxy_share_bps, 500);
        p.validate().unwrap();
        // 7 tokens * 20 = 140; 95 % = 133; the proxy gets the other 7.
        assert_eq!(
            p.split(7).unwrap(),
            Amounts {
                total: 140,
                worker: 133,
                proxy: 7
            }
        );
    }

    #[test]
    fn rounding_goes_to_proxy_and_nothing_is_lost() {
        let p = Pricing {
            nanoton_per_token: 1,
            worker_share_bps: 3333,
            proxy_share_bps: 6667,
        };
        for tokens in [0u64, 1, 2, 3, 7, 9_999, 10_001, 123_456_789] {
            let a = p.split(tokens).unwrap();
            assert_eq!(a.total, tokens);
            assert_eq!(a.worker + a.proxy, a.total);
            assert_eq!(a.worker, tokens * 3333 / 10_000);
        }
    }

    #[test]
    fn extreme_values() {
        let p = Pricing {
            nanoton_per_token: 1,
            worker_share_bps: 10_000,
            proxy_share_bps: 0,
        };
        let a = p.split(u64::MAX).unwrap();
        assert_eq!((a.total, a.worker, a.proxy), (u64::MAX, u64::MAX, 0));
        let p = Pricing {
            nanoton_per_token: 2,
            ..Pricing::default()
        };
        assert_eq!(
            p.split(u64::MAX / 2 + 1).unwrap_err(),
            PricingError::Overflow {
                tokens: u64::MAX / 2 + 1,
                nanoton_per_token: 2
            }
        );
    }

    #[test]
    fn shares_must_sum_to_whole() {
        let p = Pricing {
            worker_share_bps: 9000,
            ..Pricing::default()
        };
        assert!(matches!(
            p.validate(),
            Err(PricingError::SharesDoNotSum {
                worker: 9000,
                proxy: 500
            })
        ));
        assert!(p.split(1).is_err());
    }

    #[test]
    fn toml_defaults_and_unknown_fields() {
        let p: Pricing = toml::from_str("nanoton_per_token = 5").unwrap();
        assert_eq!(p.nanoton_per_token, 5);
        assert_eq!(p.worker_share_bps, 9500);
        let err = toml::from_str::<Pricing>("price = 5").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
