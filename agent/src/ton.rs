//! TON addresses and the worker's wallet (issue 6, item 7).
//!
//! - [`parse_owner_address`]: the owner's payout address from config, in raw
//!   (`0:<64 hex>`) or user-friendly (48 chars of base64 or base64url) form, with the
//!   CRC16 checked and the workchain limited to basechain (0) or masterchain (-1).
//! - [`WorkerWallet`]: a wallet key generated inside the TEE at boot; its address is
//!   the standard wallet v4r2 contract's for that key.
//!
//! Address formats: TON documentation, "Smart contract addresses" (raw form:
//! `workchain:account_id`; user-friendly: 1 tag byte, 1 workchain byte, 32 bytes
//! account id, CRC16-XMODEM of those 34 bytes big-endian, base64 or base64url).

mod address;
mod wallet;

pub use address::{parse_owner_address, AddressError, AddressForm, OwnerAddress};
pub use wallet::{wallet_address, WalletError, WorkerWallet, WALLET_ID, WALLET_VERSION};
