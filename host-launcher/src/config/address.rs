//! The owner's TON payout address, parsed with tonlib-core: raw form
//! (`<workchain>:<64 hex>`) or user-friendly form (36 bytes in base64/base64url: tag,
//! workchain, 32-byte account id, CRC16-XMODEM; TON "Smart contract addresses" doc).

use tonlib_core::TonAddress;

/// Why an owner address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// tonlib-core could not parse it (bad length, bad base64, CRC mismatch, bad tag).
    #[error("`{input}` is not a TON address: {reason}")]
    Parse { input: String, reason: String },
    /// Parsed, but on a workchain payouts cannot go to.
    #[error("`{input}` is on workchain {workchain}; payouts go to the basechain (0) or masterchain (-1)")]
    Workchain { input: String, workchain: i32 },
}

/// Parse and check an owner address; returns its raw form `wc:hex`.
pub fn validate_owner_address(input: &str) -> Result<String, AddressError> {
    let trimmed = input.trim();
    let addr: TonAddress = trimmed
        .parse()
        .map_err(|e: tonlib_core::TonAddressParseError| AddressError::Parse {
            input: input.to_string(),
            reason: e.to_string(),
        })?;
    if addr.workchain != 0 && addr.workchain != -1 {
        return Err(AddressError::Workchain {
            input: input.to_string(),
            workchain: addr.workchain,
        });
    }
    Ok(addr.to_hex())
}
