//! A simulated TDX platform whose quotes are structurally real.
//!
//! Machines without TDX (CI, developer laptops) still need quotes that go through the
//! real verifier. [`SimPki`] is a test PKI shaped like Intel's SGX/TDX provisioning PKI
//! (root CA, PCK Platform CA, PCK leaf with the SGX extension, TCB signing certificate,
//! both CRLs, a TDX TCB info and a TD_QE identity), and [`SimPki::quote`] produces a TDX
//! quote v4 (TD report 1.0, ECDSA-P256 attestation key, certification data type 6 wrapping
//! a type 5 PEM PCK chain) in Intel's wire format (Intel TDX DCAP Quoting Library API,
//! appendix "Quote Format", version 4).
//!
//! `dcap_qvl::verify::QuoteVerifier::new(pki.root_ca_der())` accepts these quotes with
//! [`SimPki::collateral`]; Intel's root (`QuoteVerifier::new_prod()`, `dcap_qvl::verify::verify`)
//! rejects them, because the root CA CRL and every chain are signed by the simulated root.
//! A verifier therefore trusts simulated quotes only when someone hands it the simulated
//! root on purpose.
//!
//! Everything is derived from a 32-byte seed and a validity window, so the same
//! configuration gives byte-identical certificates, collateral and quotes (ECDSA signatures
//! use RFC 6979 deterministic nonces). The attestation key is derived from the seed too:
//! a real QE keeps one attestation key per platform across quotes, and a stable key keeps
//! test vectors reproducible.
#![deny(clippy::arithmetic_side_effects)]

mod collateral;
mod der_util;
mod quote;
mod store;
mod x509;

use std::path::PathBuf;

use p256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub use dcap_qvl::QuoteCollateralV3;
pub use store::{files, load_verifier_material, VerifierMaterial};

use crate::digest::Digest48;

/// TD attribute bit 0 (TUD.DEBUG): the TD runs in debug mode and its state is visible to
/// the host (Intel TDX Module ABI specification, TDX attributes table).
pub const TD_ATTR_DEBUG: u64 = 1;
/// TD attribute bit 28 (SEC.SEPT_VE_DISABLE); dcap-qvl rejects TDs without it.
pub const TD_ATTR_SEPT_VE_DISABLE: u64 = 1 << 28;

/// Intel's QE vendor ID (header field `qe_vendor_id`); dcap-qvl accepts no other.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];

/// Everything that can go wrong building, saving or loading a simulated platform.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(
        "validity window is empty: not_before {not_before} is not before not_after {not_after}"
    )]
    EmptyWindow { not_before: u64, not_after: u64 },
    #[error("time {secs} (unix seconds) cannot be encoded: {source}")]
    Time { secs: u64, source: der::Error },
    #[error("no valid P-256 key could be derived from the seed for the {0}")]
    KeyDerivation(&'static str),
    #[error("no randomness for a fresh seed: {0}")]
    Rng(String),
    #[error("DER encoding of {what} failed: {source}")]
    Der {
        what: &'static str,
        source: der::Error,
    },
    #[error("public key encoding of {what} failed: {why}")]
    PublicKey { what: &'static str, why: String },
    #[error("signing {what} failed: {why}")]
    Sign { what: &'static str, why: String },
    #[error("JSON encoding of {what} failed: {source}")]
    Json {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("{field} is {len} bytes, more than its length field can hold")]
    TooLong { field: &'static str, len: usize },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Malformed { path: PathBuf, why: String },
}

/// The identity of the simulated Quoting Enclave, as its QE report states it and the
/// QE identity collateral (TD_QE, version 2) pins it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimQe {
    #[serde(with = "hex_bytes")]
    pub mrsigner: [u8; 32],
    #[serde(with = "hex_bytes")]
    pub mrenclave: [u8; 32],
    pub isvprodid: u16,
    pub isvsvn: u16,
    /// SGX enclave attributes (16 bytes). Bit 1 of byte 0 is DEBUG; the QE identity mask
    /// covers it, so a debug QE is rejected.
    #[serde(with = "hex_bytes")]
    pub attributes: [u8; 16],
    pub miscselect: u32,
    /// QE authentication data; dcap-qvl requires exactly 32 bytes.
    #[serde(with = "hex_bytes")]
    pub auth_data: [u8; 32],
}

/// The platform the PKI certifies: PCK certificate fields and the TCB levels that the
/// TCB info calls UpToDate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimPlatform {
    #[serde(with = "hex_bytes")]
    pub fmspc: [u8; 6],
    #[serde(with = "hex_bytes")]
    pub pce_id: [u8; 2],
    #[serde(with = "hex_bytes")]
    pub ppid: [u8; 16],
    #[serde(with = "hex_bytes")]
    pub platform_instance_id: [u8; 16],
    /// QE ID, the first 16 bytes of the quote header's user data.
    #[serde(with = "hex_bytes")]
    pub qe_id: [u8; 16],
    /// The 16 SGX TCB components (PCK certificate CPUSVN); also the QE report's CPUSVN.
    #[serde(with = "hex_bytes")]
    pub cpu_svn: [u8; 16],
    pub pce_svn: u16,
    /// TEE_TCB_SVN the TCB info rates UpToDate. Byte 1 is the TDX module major version:
    /// when non-zero the TCB info carries a `TDX_<version>` module identity and byte 0 is
    /// judged by it (dcap-qvl `TcbInfo::tdx_module_identity`).
    #[serde(with = "hex_bytes")]
    pub tee_tcb_svn: [u8; 16],
    /// 0 = Standard, 1 = Scalable, 2 = Scalable with integrity.
    pub sgx_type: u8,
    pub dynamic_platform: bool,
    pub cached_keys: bool,
    pub smt_enabled: bool,
    /// MRSIGNER of the TDX module (Intel signs its modules with an all-zero MRSIGNER_SEAM).
    #[serde(with = "hex_bytes")]
    pub tdx_module_mrsigner: [u8; 48],
    pub qe: SimQe,
}

/// Platform values copied from a real Sapphire Rapids TDX platform (the dcap-qvl
/// `sample/tdx_quote`), so simulated quotes exercise the same code paths as real ones.
pub const DEFAULT_CPU_SVN: [u8; 16] = [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0];
pub const DEFAULT_PCE_SVN: u16 = 11;
pub const DEFAULT_TEE_TCB_SVN: [u8; 16] = [6, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
pub const DEFAULT_FMSPC: [u8; 6] = [0xb0, 0xc0, 0x6f, 0x00, 0x00, 0x00];
/// MRSIGNER of Intel's TD Quoting Enclave.
pub const INTEL_TD_QE_MRSIGNER: [u8; 32] = [
    0xdc, 0x9e, 0x2a, 0x7c, 0x6f, 0x94, 0x8f, 0x17, 0x47, 0x4e, 0x34, 0xa7, 0xfc, 0x43, 0xed, 0x03,
    0x0f, 0x7c, 0x15, 0x63, 0xf1, 0xba, 0xbd, 0xdf, 0x63, 0x40, 0xc8, 0x2e, 0x0e, 0x54, 0xa8, 0xc5,
];
const DEFAULT_QE_MRENCLAVE: [u8; 32] = [
    0xe5, 0xa3, 0xa7, 0xb5, 0xd8, 0x30, 0xc2, 0x95, 0x3b, 0x98, 0x53, 0x4c, 0x6c, 0x59, 0xa3, 0xa3,
    0x4f, 0xdc, 0x34, 0xe9, 0x33, 0xf7, 0xf5, 0x89, 0x8f, 0x0a, 0x85, 0xcf, 0x08, 0x84, 0x6b, 0xca,
];
/// INIT | MODE64BIT | PROVISIONKEY, XFRM 0xe7: what Intel's TD QE reports.
const DEFAULT_QE_ATTRIBUTES: [u8; 16] = [0x15, 0, 0, 0, 0, 0, 0, 0, 0xe7, 0, 0, 0, 0, 0, 0, 0];
/// MRSEAM of the TDX module in the same real quote.
pub const DEFAULT_MR_SEAM: [u8; 48] = [
    0x5b, 0x38, 0xe3, 0x3a, 0x64, 0x87, 0x95, 0x8b, 0x72, 0xc3, 0xc1, 0x2a, 0x93, 0x8e, 0xaa, 0x5e,
    0x3f, 0xd4, 0x51, 0x0c, 0x51, 0xae, 0xea, 0xb5, 0x8c, 0x7d, 0x5e, 0xce, 0xe4, 0x1d, 0x7c, 0x43,
    0x64, 0x89, 0xd6, 0xc8, 0xe4, 0xf9, 0x2f, 0x16, 0x0b, 0x7c, 0xad, 0x34, 0x20, 0x7b, 0x00, 0xc1,
];
/// XFAM of the same real quote (x87, SSE, AVX, AVX-512 state, PT, ...).
pub const DEFAULT_XFAM: u64 = 0x0006_02e7;

impl SimPlatform {
    /// Real-platform TCB values, with per-platform identifiers (PPID, platform instance
    /// ID, QE ID, QE auth data) derived from `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        SimPlatform {
            fmspc: DEFAULT_FMSPC,
            pce_id: [0, 0],
            ppid: derive_bytes(seed, "ppid"),
            platform_instance_id: derive_bytes(seed, "platform instance id"),
            qe_id: derive_bytes(seed, "qe id"),
            cpu_svn: DEFAULT_CPU_SVN,
            pce_svn: DEFAULT_PCE_SVN,
            tee_tcb_svn: DEFAULT_TEE_TCB_SVN,
            sgx_type: 1,
            dynamic_platform: true,
            cached_keys: true,
            smt_enabled: true,
            tdx_module_mrsigner: [0u8; 48],
            qe: SimQe {
                mrsigner: INTEL_TD_QE_MRSIGNER,
                mrenclave: DEFAULT_QE_MRENCLAVE,
                isvprodid: 2,
                isvsvn: 4,
                attributes: DEFAULT_QE_ATTRIBUTES,
                miscselect: 0,
                auth_data: derive_bytes(seed, "qe auth data"),
            },
        }
    }
}

/// What a [`SimPki`] is generated from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Every key, serial number and identifier is derived from this seed.
    pub seed: [u8; 32],
    /// Start of every validity period (certificates, CRLs, TCB info, QE identity), unix seconds.
    pub not_before: u64,
    /// End of every validity period, unix seconds. Verification succeeds for
    /// `not_before <= now < not_after` (a CRL counts as expired at its nextUpdate).
    pub not_after: u64,
    pub platform: SimPlatform,
    /// `tcbEvaluationDataNumber` of the TCB info and QE identity.
    pub tcb_evaluation_data_number: u32,
}

impl SimConfig {
    /// A configuration with the default (real-platform) TCB values.
    pub fn new(seed: [u8; 32], not_before: u64, not_after: u64) -> Self {
        SimConfig {
            platform: SimPlatform::from_seed(&seed),
            seed,
            not_before,
            not_after,
            tcb_evaluation_data_number: 17,
        }
    }

    /// Like [`SimConfig::new`] with a seed from the operating system's randomness.
    pub fn random(not_before: u64, not_after: u64) -> Result<Self, SimError> {
        use rand_core::RngCore as _;
        let mut seed = [0u8; 32];
        rand_core::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| SimError::Rng(e.to_string()))?;
        Ok(Self::new(seed, not_before, not_after))
    }
}

/// The fields of a TD report 1.0 (Intel TDX Module ABI, TDREPORT_STRUCT / TDINFO) that a
/// simulated quote carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdFields {
    pub tee_tcb_svn: [u8; 16],
    pub mr_seam: Digest48,
    pub mr_signer_seam: Digest48,
    pub seam_attributes: u64,
    /// TD attributes; see [`TD_ATTR_DEBUG`] and [`TD_ATTR_SEPT_VE_DISABLE`].
    pub td_attributes: u64,
    pub xfam: u64,
    pub mr_td: Digest48,
    pub mr_config_id: Digest48,
    pub mr_owner: Digest48,
    pub mr_owner_config: Digest48,
    pub rtmr: [Digest48; 4],
    pub report_data: [u8; 64],
}

impl Default for TdFields {
    /// A production (non-debug) TD on the default platform, all measurements zero.
    fn default() -> Self {
        TdFields {
            tee_tcb_svn: DEFAULT_TEE_TCB_SVN,
            mr_seam: Digest48(DEFAULT_MR_SEAM),
            mr_signer_seam: Digest48::ZERO,
            seam_attributes: 0,
            td_attributes: TD_ATTR_SEPT_VE_DISABLE,
            xfam: DEFAULT_XFAM,
            mr_td: Digest48::ZERO,
            mr_config_id: Digest48::ZERO,
            mr_owner: Digest48::ZERO,
            mr_owner_config: Digest48::ZERO,
            rtmr: [Digest48::ZERO; 4],
            report_data: [0u8; 64],
        }
    }
}

/// A simulated TDX platform together with the PKI and collateral that certify it.
///
/// Holds the private keys a quoting agent needs (PCK key, attestation key); the CA and
/// TCB signing keys are used during [`SimPki::generate`] and then dropped.
#[derive(Clone, Debug)]
pub struct SimPki {
    platform: SimPlatform,
    root_ca_der: Vec<u8>,
    /// PEM: PCK leaf, PCK Platform CA, root CA (the order Intel's QE embeds them).
    pck_chain_pem: String,
    collateral: QuoteCollateralV3,
    pck_key: SigningKey,
    attestation_key: SigningKey,
}

impl SimPki {
    /// Generate the PKI, collateral and platform keys described by `config`.
    pub fn generate(config: &SimConfig) -> Result<Self, SimError> {
        if config.not_before >= config.not_after {
            return Err(SimError::EmptyWindow {
                not_before: config.not_before,
                not_after: config.not_after,
            });
        }
        let keys = x509::Keys::derive(&config.seed)?;
        let certs = x509::issue(config, &keys)?;
        let collateral = collateral::build(config, &keys, &certs)?;
        Ok(SimPki {
            platform: config.platform.clone(),
            root_ca_der: certs.root.clone(),
            pck_chain_pem: certs.pck_chain_pem(),
            collateral,
            pck_key: keys.pck,
            attestation_key: keys.attestation,
        })
    }

    /// Convenience: [`SimConfig::new`] then [`SimPki::generate`].
    pub fn from_seed(seed: [u8; 32], not_before: u64, not_after: u64) -> Result<Self, SimError> {
        Self::generate(&SimConfig::new(seed, not_before, not_after))
    }

    /// A TDX quote v4 over `td`, signed by this platform's attestation key.
    pub fn quote(&self, td: &TdFields) -> Result<Vec<u8>, SimError> {
        quote::build(self, td)
    }

    /// DER of the simulated root CA: the trust anchor to give `QuoteVerifier::new`.
    pub fn root_ca_der(&self) -> &[u8] {
        &self.root_ca_der
    }

    /// The collateral that verifies this platform's quotes.
    pub fn collateral(&self) -> &QuoteCollateralV3 {
        &self.collateral
    }

    /// The collateral as JSON in dcap-qvl's serde format (byte fields as hex strings),
    /// the format of a PCCS collateral dump.
    pub fn collateral_json(&self) -> Result<String, SimError> {
        serde_json::to_string_pretty(&self.collateral).map_err(|source| SimError::Json {
            what: "collateral",
            source,
        })
    }

    /// The verifier's share: root CA and collateral (what [`SimPki::save`] writes outside
    /// `private/`).
    pub fn verifier_material(&self) -> VerifierMaterial {
        VerifierMaterial {
            root_ca_der: self.root_ca_der.clone(),
            collateral: self.collateral.clone(),
        }
    }

    /// PEM chain embedded in quotes: PCK leaf, PCK Platform CA, root CA.
    pub fn pck_chain_pem(&self) -> &str {
        &self.pck_chain_pem
    }

    pub fn platform(&self) -> &SimPlatform {
        &self.platform
    }

    /// TD fields for a production TD on this platform (its UpToDate TEE_TCB_SVN).
    pub fn td_fields(&self) -> TdFields {
        TdFields {
            tee_tcb_svn: self.platform.tee_tcb_svn,
            mr_signer_seam: Digest48(self.platform.tdx_module_mrsigner),
            ..TdFields::default()
        }
    }

    /// The attestation public key as it appears in quotes (64 bytes, x || y).
    pub fn attestation_public_key(&self) -> Vec<u8> {
        der_util::raw_public_key(&self.attestation_key)
    }
}

/// `N` bytes (at most 32) of SHA-256 over a domain-separated label and the seed.
fn derive_bytes<const N: usize>(seed: &[u8; 32], label: &str) -> [u8; N] {
    let hash = derive_hash(seed, label, 0);
    let mut out = [0u8; N];
    for (o, h) in out.iter_mut().zip(hash.iter()) {
        *o = *h;
    }
    out
}

fn derive_hash(seed: &[u8; 32], label: &str, counter: u8) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"cocoon-sim-v1\0")
        .chain_update(label.as_bytes())
        .chain_update([0u8])
        .chain_update(seed)
        .chain_update([counter])
        .finalize()
        .into()
}

/// Fixed-size byte arrays as hex strings in JSON.
mod hex_bytes {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(v: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        let v = hex::decode(&s).map_err(D::Error::custom)?;
        let len = v.len();
        v.try_into()
            .map_err(|_| D::Error::custom(format!("expected {N} bytes of hex, got {len}")))
    }
}
