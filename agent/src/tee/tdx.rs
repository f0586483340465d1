//! Real Intel TDX guest: quotes through configfs-tsm (or the legacy guest-device
//! ioctl), RTMR3 through sysfs, the boot log from ACPI CCEL.

mod configfs;
mod ioctl;

pub use configfs::{request_quote, RealFs, TsmFs, TSM_PROVIDER};
pub use ioctl::{build_quote_request, parse_quote_response};

use std::io::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};

use cocoon_measurements::Digest48;

use super::{BootEventLog, BootLogFormat, TeeBackend, TeeError, TeeKind};
use crate::config::TdxTeeConfig;

/// File under `measurements_dir` that extends RTMR3 when written (Linux 6.16+,
/// Documentation/ABI/testing/sysfs-devices-virtual-misc-tdx_guest).
pub const RTMR3_FILE: &str = "rtmr3:sha384";

/// The TDX backend; paths come from `[tee.tdx]` so tests can use fixture trees.
pub struct TdxBackend {
    paths: TdxTeeConfig,
    /// Distinguishes our configfs entries from concurrent quotes in this process.
    counter: AtomicU64,
}

impl TdxBackend {
    pub fn new(paths: TdxTeeConfig) -> Self {
        TdxBackend {
            paths,
            counter: AtomicU64::new(0),
        }
    }
}

impl TeeBackend for TdxBackend {
    fn kind(&self) -> TeeKind {
        TeeKind::Tdx
    }

    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, TeeError> {
        let tsm = &self.paths.configfs_tsm_dir;
        if tsm.is_dir() {
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            let name = format!("cocoon-agent-{}-{n}", std::process::id());
            return request_quote(&RealFs, tsm, &name, report_data);
        }
        let device = &self.paths.device;
        if device.exists() {
            return ioctl::get_quote(device, report_data);
        }
        Err(TeeError::Unavailable {
            tsm: tsm.clone(),
            device: device.clone(),
        })
    }

    fn extend_rtmr3(&self, digest: &Digest48) -> Result<bool, TeeError> {
        let path = self.paths.measurements_dir.join(RTMR3_FILE);
        // The ABI takes the raw 48-byte digest and extends RTMR3 with it; opening
        // without create keeps a missing interface from turning into a stray file.
        let file = std::fs::OpenOptions::new().write(true).open(&path);
        match file {
            Ok(mut f) => {
                use std::io::Write as _;
                f.write_all(digest.as_bytes())
                    .map_err(|e| TeeError::io(&path, e))?;
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(TeeError::io(&path, e)),
        }
    }

    fn boot_event_log(&self) -> Option<BootEventLog> {
        // The CCEL ACPI table points at the log area; the kernel exposes that area as
        // `data/CCEL` (drivers/acpi/sysfs.c, "data" attributes for CCEL).
        let path = self.paths.acpi_tables_dir.join("data").join("CCEL");
        match std::fs::read(&path) {
            Ok(bytes) => Some(BootEventLog {
                bytes,
                format: BootLogFormat::Ccel,
            }),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "no CCEL boot event log");
                None
            }
        }
    }

    fn collateral(&self) -> Option<super::QuoteCollateralV3> {
        // Verifiers fetch Intel's collateral (PCCS) themselves; the TD has no network
        // path it could trust more than theirs.
        None
    }
}
