//! The boot events OVMF and systemd-stub measure, predicted from the artefacts.
//! TODO (uki owner): implementation. `compute` is a contract other modules call.

use std::path::PathBuf;

use crate::expected::ExpectedMeasurements;
use crate::mrtd::PageOrder;

/// What `compute` needs.
#[derive(Debug, Clone)]
pub struct ComputeInputs {
    /// OVMF/TDVF firmware image.
    pub firmware: PathBuf,
    /// The unified kernel image QEMU boots with `-kernel`.
    pub uki: PathBuf,
    /// ACPI blobs for RTMR0, when known; empty means RTMR0 is not computed.
    pub acpi: Vec<PathBuf>,
    /// Page order for MRTD.
    pub page_order: PageOrder,
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("compute is not implemented yet")]
    NotImplemented,
}

/// Compute MRTD, RTMR1, RTMR2 (and RTMR0 when possible) with every event.
pub fn compute(_inputs: &ComputeInputs) -> Result<ExpectedMeasurements, BootError> {
    Err(BootError::NotImplemented)
}
