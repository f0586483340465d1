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
