//! Temporary stand-ins for the ledger helper's `accounting` and `ton` modules.
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    #[serde(default)]
    pub nanoton_per_token: Option<u64>,
}

impl Pricing {
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

pub fn parse_owner_address(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("empty".into());
    }
    Ok(s.to_string())
}

/// Stand-in for `ton::WorkerWallet` (a wallet key generated inside the TEE).
pub struct WorkerWallet {
    address: String,
}

impl WorkerWallet {
    pub fn generate() -> Result<Self, String> {
        Ok(WorkerWallet {
            address: "0:0000000000000000000000000000000000000000000000000000000000000000".into(),
        })
    }
    pub fn address(&self) -> String {
        self.address.clone()
    }
}
