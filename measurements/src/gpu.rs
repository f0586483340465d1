//! NVIDIA GPU confidential-computing evidence, verified offline.
//!
//! A proxy must know that the GPU holding a user's data is a genuine NVIDIA GPU in
//! CC mode running known firmware before it sends a prompt. NVIDIA's verifiers
//! (nvtrust, Python/C++) call NVIDIA's online RIM and OCSP services; this module
//! verifies the same evidence with pinned roots, RIM files and stapled OCSP
//! responses only:
//!
//! - [`spdm`]: the SPDM 1.1 GET_MEASUREMENTS request + MEASUREMENTS response
//!   ("attestation report"), NVIDIA's opaque data;
//! - [`certs`]: the device and RIM certificate chains, FWID extension;
//! - [`rim`]: signed SWID reference integrity manifests (XML-DSig, C14N 1.1 via
//!   libxml2);
//! - [`ocsp`]: stapled OCSP responses;
//! - [`evidence`]: hex / raw / PEM / NVIDIA JSON input forms;
//! - [`verify`](mod@verify): every check together, all reasons collected;
//! - [`digest`]: the evidence digest that binds it to an RA-TLS quote's claims.

pub mod certs;
pub mod digest;
pub mod evidence;
pub mod ocsp;
pub mod rim;
pub mod spdm;
pub mod verify;
mod xml;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

pub use verify::{verify, GpuError, GpuEvidence, GpuVerdict, Reason, RimInput, VerifyOptions};

/// NVIDIA's device identity root ("NVIDIA Device Identity CA", valid 2021-11-05 to
/// 9999-12-31, SHA-256 fingerprint 102bf659...167b48), as shipped in nvtrust's
/// local verifier (`verifier/certs/verifier_device_root.pem`). Pinned: it replaces
/// whatever root a presented chain ends with.
pub const NVIDIA_DEVICE_ROOT_PEM: &str = include_str!("gpu/roots/nvidia_device_identity_ca.pem");

/// NVIDIA's RIM signing root ("NVIDIA CoRIM signing Root CA", valid 2023-03-16 to
/// 2053-03-08, SHA-256 fingerprint 12977b51...1df5d1), from nvtrust
/// (`verifier/certs/verifier_RIM_root.pem`).
pub const NVIDIA_RIM_ROOT_PEM: &str = include_str!("gpu/roots/nvidia_corim_signing_root_ca.pem");

/// Domain-separation label of the TLS-key nonce binding (see [`nonce_for_tls_spki`]).
pub const TLS_SPKI_NONCE_LABEL: &[u8] = b"cocoon-gpu-nonce-v1/tls-spki-sha256\0";

/// The SPDM nonce an agent must request GPU evidence with, derived from its TLS
/// key: `SHA-256("cocoon-gpu-nonce-v1/tls-spki-sha256\0" || SubjectPublicKeyInfo
/// DER)`.
///
/// Why: the proxy checks the GPU report against the key of the TLS connection it
/// is about to send a prompt over, so a report cannot be replayed by a host that
/// does not hold that key, and no extra round trip is needed for a fresh
/// challenge. The label keeps this hash from colliding with any other use of a
/// SHA-256 of the same key. (Freshness beyond the key's lifetime comes from
/// rotating the TLS key; use [`NonceBinding::Caller`] with a random challenge where
/// that is not enough.)
pub fn nonce_for_tls_spki(spki_der: &[u8]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update(TLS_SPKI_NONCE_LABEL);
    h.update(spki_der);
    h.finalize().into()
}

/// Confidential-computing mode of the GPU as NVML reports it
/// (`nvmlSystemGetConfComputeState`, `nvmlDeviceGetConfComputeGpuAttestationReport`
/// callers read it alongside). Hopper's signed report does not carry it, so it is
/// trusted only as far as the attested agent that reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CcMode {
    /// CC on, production.
    On,
    /// CC off.
    Off,
    /// CC on with developer tools (debuggers, profilers) enabled.
    DevTools,
}

impl std::str::FromStr for CcMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "on" => Ok(Self::On),
            "off" => Ok(Self::Off),
            "devtools" | "dev-tools" => Ok(Self::DevTools),
            other => Err(format!("unknown CC mode {other:?} (on, off, devtools)")),
        }
    }
}

/// How the verifier learns the nonce a report must carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NonceBinding {
    /// The nonce is [`nonce_for_tls_spki`] of the agent's TLS key: the verifier
    /// derives it from the key of the connection it checks.
    #[default]
    TlsSpkiSha256,
    /// The verifier issued the nonce itself (a random challenge) and passes it in.
    Caller,
}

/// A RIM file the policy pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RimPin {
    /// Path of the RIM (relative paths are relative to the policy file).
    pub path: PathBuf,
    /// SHA-256 of the file, hex: a different file is rejected even if NVIDIA
    /// signed it.
    pub sha256: String,
}

fn yes() -> bool {
    true
}

/// Policy for NVIDIA GPU evidence: the `[gpu]` table of a policy file.
///
/// Defaults fail closed: nothing is allowed until listed, CC mode is required,
/// dev-tools mode is forbidden, both RIMs are required, a missing OCSP response
/// rejects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuPolicy {
    /// Driver versions accepted, exact match (e.g. "550.90.07"). Empty: none.
    #[serde(default)]
    pub allowed_driver_versions: Vec<String>,
    /// VBIOS versions accepted, case-insensitive (e.g. "96.00.9F.00.01"). Empty:
    /// none.
    #[serde(default)]
    pub allowed_vbios_versions: Vec<String>,
    /// Reject a GPU whose CC mode is off or was not reported. Default: true.
    #[serde(default = "yes")]
    pub require_cc_mode: bool,
    /// Reject a GPU in CC dev-tools mode (or whose mode was not reported).
    /// Default: true.
    #[serde(default = "yes")]
    pub forbid_dev_tools: bool,
    /// RIM files (path + SHA-256) the report's measurements are compared with.
    #[serde(default)]
    pub rims: Vec<RimPin>,
    /// Require a driver RIM among the RIMs compared. Default: true.
    #[serde(default = "yes")]
    pub require_driver_rim: bool,
    /// Require a VBIOS RIM among the RIMs compared. Default: true.
    #[serde(default = "yes")]
    pub require_vbios_rim: bool,
    /// Accept certificates for which no stapled OCSP response gives a status.
    /// A revoked or invalid response rejects regardless. Default: false.
    #[serde(default)]
    pub allow_missing_ocsp: bool,
    /// How the expected nonce is obtained. Default: "tls-spki-sha256".
    #[serde(default)]
    pub nonce_binding: NonceBinding,
}

impl Default for GpuPolicy {
    fn default() -> Self {
        Self {
            allowed_driver_versions: Vec::new(),
            allowed_vbios_versions: Vec::new(),
            require_cc_mode: true,
            forbid_dev_tools: true,
            rims: Vec::new(),
            require_driver_rim: true,
            require_vbios_rim: true,
            allow_missing_ocsp: false,
            nonce_binding: NonceBinding::default(),
        }
    }
}

/// A policy file whose `[gpu]` table cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuPolicyError {
    #[error("policy is not TOML: {0}")]
    Toml(String),
    #[error("policy has no [gpu] table")]
    NoGpuTable,
    #[error("policy [gpu]: {0}")]
    Invalid(String),
}

impl GpuPolicy {
    /// Read the `[gpu]` table of a shared TOML policy. Other tables are left to
    /// their owners; inside `[gpu]` an unknown key is an error.
    pub fn from_policy_toml(text: &str) -> Result<Self, GpuPolicyError> {
        let value: toml::Value =
            toml::from_str(text).map_err(|e| GpuPolicyError::Toml(e.to_string()))?;
        let gpu = value
            .get("gpu")
            .cloned()
            .ok_or(GpuPolicyError::NoGpuTable)?;
        if !gpu.is_table() {
            return Err(GpuPolicyError::NoGpuTable);
        }
        let policy: GpuPolicy = gpu
            .try_into()
            .map_err(|e: toml::de::Error| GpuPolicyError::Invalid(e.to_string()))?;
        for pin in &policy.rims {
            let ok = hex::decode(&pin.sha256)
                .map(|v| v.len() == 32)
                .unwrap_or(false);
            if !ok {
                return Err(GpuPolicyError::Invalid(format!(
                    "rims: sha256 {:?} of {} is not 64 hex digits",
                    pin.sha256,
                    pin.path.display()
                )));
            }
        }
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_defaults_fail_closed() {
        let p = GpuPolicy::from_policy_toml("[gpu]\n").unwrap();
        assert_eq!(p, GpuPolicy::default());
        assert!(p.require_cc_mode && p.forbid_dev_tools && !p.allow_missing_ocsp);
        assert!(p.allowed_driver_versions.is_empty());
    }

    #[test]
    fn policy_reads_only_the_gpu_table_and_refuses_unknown_keys() {
        let text = r#"
[tdx]
anything = "owned by another module"
[gpu]
allowed_driver_versions = ["550.90.07"]
nonce_binding = "caller"
[[gpu.rims]]
path = "vbios.swidtag"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
"#;
        let p = GpuPolicy::from_policy_toml(text).unwrap();
        assert_eq!(p.allowed_driver_versions, ["550.90.07"]);
        assert_eq!(p.nonce_binding, NonceBinding::Caller);
        assert_eq!(p.rims.len(), 1);
        let e = GpuPolicy::from_policy_toml("[gpu]\nallow_everything = true\n").unwrap_err();
        assert!(matches!(e, GpuPolicyError::Invalid(_)), "{e}");
        let e = GpuPolicy::from_policy_toml("[tdx]\n").unwrap_err();
        assert_eq!(e, GpuPolicyError::NoGpuTable);
        let e = GpuPolicy::from_policy_toml("[gpu]\n[[gpu.rims]]\npath='x'\nsha256='ab'\n");
        assert!(e.is_err());
    }

    #[test]
    fn nonce_binding_is_domain_separated() {
        let n = nonce_for_tls_spki(b"spki");
        assert_ne!(n, <[u8; 32]>::from(sha2::Sha256::digest(b"spki")));
        assert_eq!(n, nonce_for_tls_spki(b"spki"));
    }

    #[test]
    fn pinned_roots_parse() {
        for pem in [NVIDIA_DEVICE_ROOT_PEM, NVIDIA_RIM_ROOT_PEM] {
            assert_eq!(certs::parse_chain(pem.as_bytes()).unwrap().len(), 1);
        }
    }
}
