//! The worker's own wallet: an Ed25519 key generated from the OS RNG inside the TEE at
//! boot, held only in memory, and the address of the standard wallet contract for it.
//!
//! Wallet version: v4r2 (`WalletVersion::V4R2` in tonlib-core, code hash
//! `feb5ff68…` in TON's wallet registry), with the default subwallet id 698983191
//! (0x29a9a317, what every v4 wallet app uses), on the basechain (workchain 0). v4r2
//! rather than v5r1 because its address does not depend on the network's global id
//! (v5r1 folds it into the wallet id) and every wallet app and library supports it.

use ed25519_dalek::{Signer, SigningKey};
use rand_core::{OsRng, RngCore};
use tonlib_core::wallet::mnemonic::KeyPair;
use tonlib_core::wallet::version_helper::VersionHelper;
use tonlib_core::wallet::versioned::DEFAULT_WALLET_ID;
use tonlib_core::wallet::wallet_version::WalletVersion;
use tonlib_core::TonAddress;
use zeroize::Zeroizing;

/// The wallet contract whose address a worker key maps to.
pub const WALLET_VERSION: WalletVersion = WalletVersion::V4R2;
/// Subwallet id used in the contract's initial data.
pub const WALLET_ID: i32 = DEFAULT_WALLET_ID;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    #[error("OS random number generator failed: {0}")]
    Rng(String),
    #[error("deriving the wallet address: {0}")]
    Derive(String),
}

/// The worker's wallet key and address. Not `Clone`, not serializable; the secret key
/// is zeroized on drop (ed25519-dalek's `SigningKey` implements `ZeroizeOnDrop`), and
/// `Debug` shows only the public parts.
pub struct WorkerWallet {
    key: SigningKey,
    address: TonAddress,
}

impl std::fmt::Debug for WorkerWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerWallet")
            .field("address", &self.address_friendly())
            .field("public_key", &hex::encode(self.public_key()))
            .finish_non_exhaustive()
    }
}

impl WorkerWallet {
    /// A fresh key from the OS RNG (inside the TEE: the guest kernel's RNG, seeded by
    /// RDRAND/RDSEED, which the host cannot read).
    pub fn generate() -> Result<WorkerWallet, WalletError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng
            .try_fill_bytes(seed.as_mut())
            .map_err(|e| WalletError::Rng(e.to_string()))?;
        WorkerWallet::from_signing_key(SigningKey::from_bytes(&seed))
    }

    /// Wallet for a given key (tests; a key unsealed from elsewhere).
    pub fn from_signing_key(key: SigningKey) -> Result<WorkerWallet, WalletError> {
        let address = wallet_address(&key.verifying_key().to_bytes())?;
        Ok(WorkerWallet { key, address })
    }

    pub fn address(&self) -> &TonAddress {
        &self.address
    }

    /// User-friendly, non-bounceable, mainnet form (`UQ…`): what TEP-2 asks wallets to
    /// show for addresses of wallets, so funds sent before deployment do not bounce.
    pub fn address_friendly(&self) -> String {
        self.address.to_base64_url_flags(true, false)
    }

    /// `0:<hex>`.
    pub fn address_raw(&self) -> String {
        self.address.to_hex()
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Ed25519 signature, e.g. over a wallet external message's cell hash.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

/// Address of the v4r2 wallet for `public_key`: hash of its StateInit (code + initial
/// data with seqno 0, [`WALLET_ID`], the key, no plugins) on workchain 0.
pub fn wallet_address(public_key: &[u8; 32]) -> Result<TonAddress, WalletError> {
    // The data cell needs only the public key; the secret never enters tonlib-core.
    let key_pair = KeyPair {
        public_key: public_key.to_vec(),
        secret_key: Vec::new(),
    };
    let data = VersionHelper::get_data(WALLET_VERSION, &key_pair, WALLET_ID)
        .map_err(|e| WalletError::Derive(e.to_string()))?;
    let code =
        VersionHelper::get_code(WALLET_VERSION).map_err(|e| WalletError::Derive(e.to_string()))?;
    TonAddress::derive(0, code.clone(), data.to_arc())
        .map_err(|e| WalletError::Derive(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use tonlib_core::wallet::mnemonic::Mnemonic;

    /// The 24-word mnemonic and its v4r2 address from tonlib-core 0.26.11's own test
    /// `wallet::ton_wallet::tests::test_ton_wallet_create` (an address produced by the
    /// reference TON tooling; tonlib-core checks its derivation against it).
    const MNEMONIC: &str = "fancy carpet hello mandate penalty trial consider property top vicious exit rebuild tragic profit urban major total month holiday sudden rib gather media vicious";
    const V4R2_ADDRESS: &str = "EQCDM_QGggZ3qMa_f3lRPk4_qLDnLTqdi6OkMAV2NB9r5TG3";

    #[test]
    fn known_mnemonic_gives_known_v4r2_address() {
        let pair = Mnemonic::from_str(MNEMONIC, &None)
            .unwrap()
            .to_key_pair()
            .unwrap();
        // NaCl's 64-byte secret key is seed || public key; dalek derives the public
        // key from the seed independently, and must agree.
        let seed: [u8; 32] = pair.secret_key[..32].try_into().unwrap();
        let wallet = WorkerWallet::from_signing_key(SigningKey::from_bytes(&seed)).unwrap();
        assert_eq!(wallet.public_key().as_slice(), pair.public_key.as_slice());
        assert_eq!(
            wallet.address(),
            &TonAddress::from_str(V4R2_ADDRESS).unwrap()
        );
        assert_eq!(wallet.address().to_base64_url(), V4R2_ADDRESS);
        assert!(wallet.address_friendly().starts_with("UQ"));
        assert!(wallet.address_raw().starts_with("0:"));
        // The friendly forms parse back through the owner-address validator.
        let parsed = crate::ton::parse_owner_address(&wallet.address_friendly()).unwrap();
        assert_eq!(parsed.raw(), wallet.address_raw());
    }

    #[test]
    fn v4r2_code_hash_is_the_published_one() {
        // Code hash of wallet v4r2 as listed by TON explorers and wallet registries.
        let code = VersionHelper::get_code(WALLET_VERSION).unwrap();
        assert_eq!(
            code.cell_hash().to_hex(),
            "feb5ff6820e2ff0d9483e7e0d62c817d846789fb4ae580c878866d959dabd5c0"
        );
        assert_eq!(WALLET_ID, 698_983_191);
    }

    #[test]
    fn generated_wallets_differ_and_hide_the_secret() {
        let a = WorkerWallet::generate().unwrap();
        let b = WorkerWallet::generate().unwrap();
        assert_ne!(a.public_key(), b.public_key());
        assert_ne!(a.address(), b.address());
        assert_eq!(a.address(), &wallet_address(&a.public_key()).unwrap());
        let dbg = format!("{a:?}");
        let secret_hex = hex::encode(a.key.to_bytes());
        assert!(!dbg.contains(&secret_hex), "{dbg}");
        assert!(dbg.contains(&a.address_friendly()));
        // Signatures verify with the public key.
        let sig = a.sign(b"msg");
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&a.public_key()).unwrap();
        vk.verify_strict(b"msg", &ed25519_dalek::Signature::from_bytes(&sig))
            .unwrap();
    }
}
