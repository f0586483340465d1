//! The boot events OVMF, systemd-stub 257 and the Linux EFI stub measure when QEMU
//! boots a UKI with `-kernel`, predicted from the artefacts: RTMR1 and RTMR2 from the
//! UKI ([`compute_uki`]), MRTD from the firmware (`crate::mrtd`), and everything
//! together ([`compute`]). measurements/README.md (boot events) lists every event with its source.
//!
//! What the prediction assumes about the launch (each changes RTMR1/RTMR2 if broken):
//! - QEMU `-kernel uki.efi` without `-append` and `-initrd` (a passed command line is
//!   measured into PCR 12 / RTMR2 and, without Secure Boot, replaces `.cmdline`);
//! - no option ROMs (`-net none` or NICs with `romfile=`): each would add an
//!   EV_EFI_BOOT_SERVICES_DRIVER event to RTMR1;
//! - no systemd-stub add-ons, credentials or sysexts (QEMU's `-kernel` file system has
//!   none) and no SMBIOS `io.systemd.stub.kernel-cmdline-extra` (the stub ignores it in
//!   a confidential VM anyway);
//! - a kernel whose EFI stub measures LoadOptions and the initrd (Linux 6.1+), through
//!   the CC measurement protocol in a TD (Linux 6.9+; older kernels leave RTMR2 without
//!   those two events).
#![deny(clippy::arithmetic_side_effects)]

mod events;
mod plan;

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::digest::{Digest48, Register};
use crate::event::{replay_register, MeasuredEvent};
use crate::expected::{ExpectedMeasurements, Inputs, MEASUREMENTS_FORMAT};
use crate::hashplan::{HashPlanError, RunOptions};
use crate::mrtd::{MrtdError, PageOrder};
use crate::uki::{Uki, UkiError};

pub use events::LogFlavor;

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
    /// Which log to predict: a TD's (the default, what a quote carries) or a TPM's
    /// (test boots under swtpm, which log five RTMR1 separators instead of one).
    pub flavor: LogFlavor,
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    // Inner errors are part of the message, not `source()`: the CLI prints the chain, and
    // a source would repeat it.
    #[error("reading {path}: {error}")]
    Io { path: String, error: std::io::Error },
    /// The UKI is malformed or uses something the prediction does not model.
    #[error("{path}: {error}")]
    Uki { path: String, error: UkiError },
    #[error(transparent)]
    Hash(#[from] HashPlanError),
    #[error("MRTD: {0}")]
    Mrtd(MrtdError),
    /// A section wrapped in a cpio archive does not fit cpio's 32-bit size field.
    #[error("UKI section {section} is too large for the stub's cpio archive")]
    CpioTooLarge { section: &'static str },
}

impl From<MrtdError> for BootError {
    fn from(e: MrtdError) -> Self {
        BootError::Mrtd(e)
    }
}

impl From<crate::pe::PeError> for BootError {
    fn from(e: crate::pe::PeError) -> Self {
        BootError::Uki {
            path: String::new(),
            error: UkiError::Pe(e),
        }
    }
}

/// RTMR1 and RTMR2 predicted from a UKI, with every event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rtmr12Prediction {
    /// Which firmware log the events follow.
    pub flavor: LogFlavor,
    pub rtmr1: Digest48,
    pub rtmr2: Digest48,
    /// SHA-256 of the UKI file (hex).
    pub uki_sha256: String,
    pub uki_size: u64,
    /// systemd-stub version from `.sdmagic`.
    pub stub_version: String,
    /// Kernel release from `.uname`, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_release: Option<String>,
    /// The command line the kernel receives (`.cmdline` after the stub's clean-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    /// Every RTMR1 and RTMR2 event, in log order.
    pub events: Vec<MeasuredEvent>,
}

impl Rtmr12Prediction {
    /// Events extending `register`, in order.
    pub fn events_of(&self, register: Register) -> impl Iterator<Item = &MeasuredEvent> {
        self.events.iter().filter(move |e| e.register == register)
    }
}

/// How to run [`compute_uki_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct UkiOptions<'a> {
    pub flavor: LogFlavor,
    /// Threads, chunk size and progress of the hashing pass.
    pub run: RunOptions<'a>,
}

/// Predict RTMR1 and RTMR2 of a TD booting `uki_path` (TDX log flavour).
pub fn compute_uki(uki_path: &Path) -> Result<Rtmr12Prediction, BootError> {
    compute_uki_with(uki_path, &UkiOptions::default())
}

/// Predict RTMR1 and RTMR2 from a UKI: parse the headers, then hash the file in one
/// streaming pass (`crate::hashplan`).
pub fn compute_uki_with(
    uki_path: &Path,
    opts: &UkiOptions<'_>,
) -> Result<Rtmr12Prediction, BootError> {
    let path = uki_path.display().to_string();
    let file = File::open(uki_path).map_err(|error| BootError::Io {
        path: path.clone(),
        error,
    })?;
    let uki = Uki::read(&file, &path).map_err(|error| BootError::Uki {
        path: path.clone(),
        error,
    })?;
    let (plan, ids) = plan::build(&uki).map_err(|e| with_path(e, &path))?;
    let out = plan.run(&file, &path, &opts.run)?;

    let missing = |what: &str| HashPlanError::LaneIncomplete {
        lane: what.to_string(),
    };
    let sha384 = |id, what: &str| out.sha384(id).ok_or_else(|| missing(what));
    let mut sections = Vec::with_capacity(ids.sections.len());
    for (name, id) in &ids.sections {
        sections.push((*name, sha384(*id, name)?));
    }
    let cmdline = uki.cmdline();
    let initrd = match ids.initrd {
        Some((id, len)) => Some((sha384(id, "combined initrd")?, len)),
        None => None,
    };
    let digests = events::Digests {
        uki_authenticode: sha384(ids.uki_authenticode, "UKI Authenticode")?,
        sections,
        kernel_authenticode: sha384(ids.kernel_authenticode, "kernel Authenticode")?,
        load_options: cmdline.as_ref().map(|(_, b)| b.as_slice()),
        initrd,
    };
    let events = events::sequence(&digests, opts.flavor);
    let uki_sha256 = out
        .sha256(ids.uki_sha256)
        .map(hex::encode)
        .ok_or_else(|| missing("UKI SHA-256"))?;
    Ok(Rtmr12Prediction {
        flavor: opts.flavor,
        rtmr1: replay_register(&events, Register::Rtmr1),
        rtmr2: replay_register(&events, Register::Rtmr2),
        uki_sha256,
        uki_size: uki.pe.image_len,
        stub_version: uki.stub.text.clone(),
        kernel_release: uki.uname(),
        cmdline: cmdline.map(|(t, _)| t),
        events,
    })
}

fn with_path(e: BootError, path: &str) -> BootError {
    match e {
        BootError::Uki { path: p, error } if p.is_empty() => BootError::Uki {
            path: path.to_string(),
            error,
        },
        other => other,
    }
}

/// Why RTMR0 is left out when no ACPI tables are given.
pub const RTMR0_NOTE_NO_ACPI: &str = "RTMR0 not computed: it measures the TD HOB, QEMU's ACPI tables (which depend on the VM shape: memory size, CPU count, devices) and the Secure Boot variables; pass the ACPI tables QEMU generates (--acpi) to have it computed";
/// Why RTMR0 is left out even with ACPI tables.
pub const RTMR0_NOTE_NOT_IMPLEMENTED: &str = "RTMR0 not computed: the ACPI tables were recorded (inputs.acpi_sha256) but the TD HOB and the remaining RTMR0 events are not modelled yet";

fn sha256_file(path: &Path) -> Result<String, BootError> {
    let mut f = File::open(path).map_err(|error| BootError::Io {
        path: path.display().to_string(),
        error,
    })?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|error| BootError::Io {
        path: path.display().to_string(),
        error,
    })?;
    Ok(hex::encode(h.finalize()))
}

/// Compute MRTD, RTMR1, RTMR2 (and RTMR0 when possible) with every event: the
/// `measurements.json` of an image. MRTD and the UKI are hashed concurrently.
pub fn compute(inputs: &ComputeInputs) -> Result<ExpectedMeasurements, BootError> {
    let (mrtd, uki) = std::thread::scope(|s| {
        let mrtd = s.spawn(|| crate::mrtd::mrtd_from_file(&inputs.firmware, inputs.page_order));
        let uki = compute_uki_with(
            &inputs.uki,
            &UkiOptions {
                flavor: inputs.flavor,
                ..Default::default()
            },
        );
        (mrtd.join(), uki)
    });
    // A bad UKI is reported before any MRTD problem: it names a field and offset.
    let uki = uki?;
    let mrtd = mrtd.map_err(|_| BootError::Hash(HashPlanError::WorkerPanicked))??;

    let mut acpi_sha256 = Vec::with_capacity(inputs.acpi.len());
    for p in &inputs.acpi {
        acpi_sha256.push(sha256_file(p)?);
    }
    let rtmr0_note = Some(if inputs.acpi.is_empty() {
        RTMR0_NOTE_NO_ACPI.to_string()
    } else {
        RTMR0_NOTE_NOT_IMPLEMENTED.to_string()
    });
    Ok(ExpectedMeasurements {
        format: MEASUREMENTS_FORMAT,
        mrtd: mrtd.mrtd,
        rtmr0: None,
        rtmr1: uki.rtmr1,
        rtmr2: uki.rtmr2,
        rtmr0_note,
        inputs: Inputs {
            firmware_sha256: mrtd.firmware_sha256,
            uki_sha256: uki.uki_sha256,
            stub_version: Some(uki.stub_version),
            cmdline: uki.cmdline,
            acpi_sha256,
        },
        events: uki.events,
    })
}
