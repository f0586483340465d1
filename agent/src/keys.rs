//! The agent's secret keys, generated in memory at boot.
//!
//! None of them is ever written to disk or logged: a key that left the TD's memory
//! could be used by the host to impersonate the attested worker. `Debug` is redacted;
//! the private key bytes handed to rustls live in a `Zeroizing` buffer that is wiped
//! when dropped (rustls keeps its own parsed copy for the process lifetime).

use ed25519_dalek::SigningKey;
use rcgen::{KeyPair, PublicKeyData as _, PKCS_ECDSA_P256_SHA256};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

use crate::ledger_shim::WorkerWallet;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("TLS key generation: {0}")]
    Tls(#[from] rcgen::Error),
    #[error("worker wallet key generation: {0}")]
    Wallet(String),
}

/// TLS key (ECDSA P-256, CONTRACT section 2), receipt key (Ed25519) and worker wallet.
pub struct AgentKeys {
    tls: KeyPair,
    receipt: SigningKey,
    wallet: WorkerWallet,
}

impl std::fmt::Debug for AgentKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentKeys")
            .field("tls_spki", &hex::encode(self.tls_spki_der()))
            .field("receipt_public", &hex::encode(self.receipt_public_key()))
            .field("wallet", &self.wallet_address())
            .finish_non_exhaustive()
    }
}

impl AgentKeys {
    /// Fresh keys from the OS RNG (inside a TD: the kernel's RNG seeded by RDSEED).
    pub fn generate() -> Result<Self, KeyError> {
        let tls = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let receipt = SigningKey::generate(&mut rand_core::OsRng);
        let wallet = WorkerWallet::generate().map_err(|e| KeyError::Wallet(e.to_string()))?;
        Ok(AgentKeys {
            tls,
            receipt,
            wallet,
        })
    }

    /// The TLS key pair (for rcgen signing the certificate).
    pub fn tls_key_pair(&self) -> &KeyPair {
        &self.tls
    }

    /// DER SubjectPublicKeyInfo of the TLS key: what the claims and the GPU nonce bind.
    pub fn tls_spki_der(&self) -> Vec<u8> {
        self.tls.subject_public_key_info()
    }

    /// The TLS private key for rustls (PKCS#8). The intermediate copy is wiped on drop.
    pub fn tls_private_key(&self) -> PrivateKeyDer<'static> {
        let der = Zeroizing::new(self.tls.serialize_der());
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.to_vec()))
    }

    pub fn receipt_key(&self) -> &SigningKey {
        &self.receipt
    }

    pub fn receipt_public_key(&self) -> [u8; 32] {
        self.receipt.verifying_key().to_bytes()
    }

    pub fn wallet(&self) -> &WorkerWallet {
        &self.wallet
    }

    pub fn wallet_address(&self) -> String {
        self.wallet.address().to_string()
    }
}
