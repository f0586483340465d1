//! `[tee]`: which TEE backend quotes and measures.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// `[tee]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeeConfig {
    /// `tdx` (real Intel TDX guest) or `sim` (simulated TEE for machines without TDX; quotes verify only against the sim root).
    pub kind: TeeKind,
    /// Settings of the simulated TEE; required when `kind = "sim"`.
    #[serde(default)]
    pub sim: Option<SimTeeConfig>,
    /// Kernel interface paths of the TDX backend (defaults are the Linux paths; tests point them at fixtures).
    #[serde(default)]
    pub tdx: TdxTeeConfig,
}

/// The TEE backend: the same kind the certificate and `/attestation` carry.
pub use cocoon_measurements::ratls::TeeKind;

/// `[tee.sim]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimTeeConfig {
    /// Directory of the simulated PKI (written by `cocoon-measure sim-pki`).
    pub pki_dir: PathBuf,
    /// JSON file with the simulated MRTD (and optional RTMR0-2 used when no TPM log exists).
    pub registers_file: PathBuf,
    /// TPM event log whose TD view gives RTMR0-2 when the file exists.
    #[serde(default = "default_tpm_log")]
    pub tpm_event_log: PathBuf,
}

/// `[tee.tdx]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdxTeeConfig {
    /// configfs-tsm report directory (Linux 6.7+).
    #[serde(default = "default_tsm_dir")]
    pub configfs_tsm_dir: PathBuf,
    /// TDX guest device used when configfs-tsm is missing (TDX_CMD_GET_QUOTE ioctl).
    #[serde(default = "default_tdx_device")]
    pub device: PathBuf,
    /// sysfs directory with the RTMR files (`rtmr3:sha384`, Linux 6.16+).
    #[serde(default = "default_measurements_dir")]
    pub measurements_dir: PathBuf,
    /// ACPI tables directory holding `CCEL` and `data/CCEL` (the TD event log).
    #[serde(default = "default_acpi_dir")]
    pub acpi_tables_dir: PathBuf,
}

impl Default for TdxTeeConfig {
    fn default() -> Self {
        TdxTeeConfig {
            configfs_tsm_dir: default_tsm_dir(),
            device: default_tdx_device(),
            measurements_dir: default_measurements_dir(),
            acpi_tables_dir: default_acpi_dir(),
        }
    }
}

fn default_tpm_log() -> PathBuf {
    PathBuf::from("/sys/kernel/security/tpm0/binary_bios_measurements")
}
fn default_tsm_dir() -> PathBuf {
    PathBuf::from("/sys/kernel/config/tsm/report")
}
fn default_tdx_device() -> PathBuf {
    PathBuf::from("/dev/tdx_guest")
}
fn default_measurements_dir() -> PathBuf {
    PathBuf::from("/sys/class/misc/tdx_guest/measurements")
}
fn default_acpi_dir() -> PathBuf {
    PathBuf::from("/sys/firmware/acpi/tables")
}

impl TeeConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match (self.kind, &self.sim) {
            (TeeKind::Sim, None) => Err(ConfigError::invalid(
                "tee.sim",
                "required when tee.kind = \"sim\"",
            )),
            // A sim section beside a real TDX backend means someone edited the wrong
            // file; refusing is cheaper than guessing which one they meant.
            (TeeKind::Tdx, Some(_)) => Err(ConfigError::invalid(
                "tee.sim",
                "not allowed when tee.kind = \"tdx\"",
            )),
            _ => Ok(()),
        }
    }
}
