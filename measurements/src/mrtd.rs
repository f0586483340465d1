//! MRTD: the TDX module's build-time measurement of the TD's initial memory.
//! TODO (mrtd owner): implementation. The signatures below are a contract other
//! modules already call; keep them (extend the report struct freely).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::Digest48;

/// In which order the VMM adds and measures firmware pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PageOrder {
    /// Current QEMU: for each page in metadata order, TDH.MEM.PAGE.ADD then the
    /// TDH.MR.EXTENDs of that page when the section asks for MR.EXTEND.
    #[default]
    PageByPage,
    /// Older QEMU: every TDH.MEM.PAGE.ADD first, then all TDH.MR.EXTENDs.
    AllPagesFirst,
}

/// MRTD and what it was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MrtdReport {
    pub mrtd: Digest48,
    /// SHA-256 of the firmware file (hex).
    pub firmware_sha256: String,
    pub page_order: PageOrder,
}

#[derive(Debug, thiserror::Error)]
pub enum MrtdError {
    #[error("reading firmware {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("MRTD computation is not implemented yet")]
    NotImplemented,
}

/// Compute MRTD from a firmware file.
pub fn mrtd_from_file(_path: &Path, _order: PageOrder) -> Result<MrtdReport, MrtdError> {
    Err(MrtdError::NotImplemented)
}
