//! Temporary stand-ins for the ledger helper's `ton` module (address parsing, worker wallet).

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
