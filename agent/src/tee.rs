//! TEE backends: who signs our quotes and holds RTMR3.
//!
//! One trait, two implementations: [`tdx::TdxBackend`] talks to a real TDX guest
//! kernel; [`sim::SimBackend`] produces structurally real quotes signed by a simulated
//! PKI for machines without TDX. Everything above this module (boot, certificate,
//! `/attestation`) is written against [`TeeBackend`] only, so the sim path exercises
//! the same code as production.

pub mod sim;
pub mod tdx;

use std::path::PathBuf;

use cocoon_measurements::Digest48;

pub use cocoon_measurements::ratls::{BootLogFormat, TeeKind};
pub use cocoon_measurements::sim::QuoteCollateralV3;

/// Raw boot event log of the TD, served base64 in `/attestation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootEventLog {
    pub bytes: Vec<u8>,
    pub format: BootLogFormat,
}

/// Why the TEE could not quote, extend or describe itself.
#[derive(Debug, thiserror::Error)]
pub enum TeeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// configfs-tsm answered outside its ABI (Documentation/ABI/testing/configfs-tsm).
    #[error("configfs-tsm {path}: {why}")]
    Tsm { path: PathBuf, why: String },
    /// The TDX guest device's GET_QUOTE path failed.
    #[error("TDX quote ioctl on {path}: {why}")]
    Ioctl { path: PathBuf, why: String },
    /// Neither configfs-tsm nor the guest device exists: not a TDX guest.
    #[error("no TDX quote interface: neither {tsm} nor {device} exists")]
    Unavailable { tsm: PathBuf, device: PathBuf },
    #[error("simulated TEE: {0}")]
    Sim(#[from] cocoon_measurements::sim::SimError),
    /// The sim register file or TPM log is unusable.
    #[error("{path}: {why}")]
    Registers { path: PathBuf, why: String },
}

impl TeeError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TeeError::Io {
            path: path.into(),
            source,
        }
    }
}

/// What the agent needs from a TEE.
///
/// Calls may block (file I/O on configfs, ECDSA signing, a host round trip for a
/// quote): async callers run them on `spawn_blocking`.
pub trait TeeBackend: Send + Sync + 'static {
    /// `tdx` or `sim`; served in the certificate and in `/attestation`.
    fn kind(&self) -> TeeKind;
    /// A fresh quote whose REPORTDATA is `report_data`.
    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, TeeError>;
    /// Extend RTMR3 with `digest`. `Ok(false)` means this platform cannot extend
    /// RTMR3 (a kernel without the sysfs interface): the event is then bound only
    /// through the REPORTDATA claims, and the evidence says so.
    fn extend_rtmr3(&self, digest: &Digest48) -> Result<bool, TeeError>;
    /// The boot event log, when the platform exposes one.
    fn boot_event_log(&self) -> Option<BootEventLog>;
    /// Quote collateral to hand to verifiers (certificate extension and `/attestation`).
    fn collateral(&self) -> Option<QuoteCollateralV3>;
}

/// Build the backend the config asks for.
pub fn from_config(tee: &crate::config::TeeConfig) -> Result<Box<dyn TeeBackend>, TeeError> {
    use crate::config::TeeKind as Kind;
    match (tee.kind, &tee.sim) {
        (Kind::Sim, Some(sim)) => Ok(Box::new(sim::SimBackend::load(sim)?)),
        (Kind::Sim, None) => Err(TeeError::Registers {
            path: PathBuf::from("<config>"),
            why: "tee.sim missing".to_string(),
        }),
        (Kind::Tdx, _) => Ok(Box::new(tdx::TdxBackend::new(tee.tdx.clone()))),
    }
}
