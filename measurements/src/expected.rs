//! The expected measurements of a built image: what `cocoon-measure compute` prints
//! with `--json`, what the image build publishes as `measurements.json`, and what
//! `policy from-measurements` turns into a policy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest48, Register};
use crate::event::{replay_register, MeasuredEvent};

/// Format version of [`ExpectedMeasurements`]; bump on incompatible change.
pub const MEASUREMENTS_FORMAT: u32 = 1;

/// Expected register values of one image, with the events that produce them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedMeasurements {
    /// Format version ([`MEASUREMENTS_FORMAT`]).
    pub format: u32,
    /// MRTD computed from the firmware's TDVF metadata.
    pub mrtd: Digest48,
    /// RTMR0, when the ACPI tables and VM shape were given; `None` otherwise.
    pub rtmr0: Option<Digest48>,
    /// RTMR1 predicted from the UKI (OS loader path).
    pub rtmr1: Digest48,
    /// RTMR2 predicted from the UKI (systemd-stub and kernel events).
    pub rtmr2: Digest48,
    /// Why RTMR0 was not computed, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtmr0_note: Option<String>,
    /// The artefacts the values were computed from.
    pub inputs: Inputs,
    /// Every event of RTMR0 (when computed), RTMR1 and RTMR2, in log order.
    pub events: Vec<MeasuredEvent>,
}

/// The files the measurements were computed from, identified by SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Inputs {
    /// SHA-256 of the firmware image (hex).
    pub firmware_sha256: String,
    /// SHA-256 of the UKI (hex).
    pub uki_sha256: String,
    /// systemd-stub version read from the UKI's `.sdmagic` section, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stub_version: Option<String>,
    /// Kernel command line from the UKI's `.cmdline` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    /// SHA-256 of each ACPI blob used for RTMR0 (hex), in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acpi_sha256: Vec<String>,
}

impl ExpectedMeasurements {
    /// Events of one register, in order.
    pub fn events_of(&self, register: Register) -> impl Iterator<Item = &MeasuredEvent> {
        self.events.iter().filter(move |e| e.register == register)
    }

    /// True when each register value equals the replay of its events.
    pub fn is_consistent(&self) -> bool {
        let r1 = replay_register(&self.events, Register::Rtmr1) == self.rtmr1;
        let r2 = replay_register(&self.events, Register::Rtmr2) == self.rtmr2;
        let r0 = self
            .rtmr0
            .is_none_or(|v| replay_register(&self.events, Register::Rtmr0) == v);
        r0 && r1 && r2
    }
}

/// What an image build publishes beside the expected registers (`image/build` runs
/// `cocoon-measure compute --profile .. --artefact .. --tool ..`). Serialized as the
/// `image` key of `measurements.json`; readers that need only the registers deserialize
/// [`ExpectedMeasurements`], which ignores the key.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageBuild {
    /// Image profile (`dev`, `prod`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// dm-verity root hash of the root disk, as the UKI's command line carries it
    /// (`roothash=`, or `usrhash=`): RTMR2 covers it through the `.cmdline` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verity_root_hash: Option<String>,
    /// SHA-256 (hex) of each further artefact, by file name (e.g. `root.raw`).
    #[serde(default)]
    pub artefacts: BTreeMap<String, String>,
    /// Exact version of each tool that produced the artefacts (package versions).
    #[serde(default)]
    pub tools: BTreeMap<String, String>,
}

impl ImageBuild {
    /// The value of the last `roothash=` (else `usrhash=`) word of a kernel command line.
    pub fn verity_root_hash_from_cmdline(cmdline: &str) -> Option<String> {
        let last = |key: &str| {
            cmdline
                .split_ascii_whitespace()
                .filter_map(|w| w.strip_prefix(key))
                .next_back()
                .map(str::to_string)
        };
        last("roothash=").or_else(|| last("usrhash="))
    }
}

/// `measurements.json` of an image build: the expected measurements with the build's
/// [`ImageBuild`] record under `image`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMeasurements {
    /// The expected registers and their events (the keys of [`ExpectedMeasurements`]).
    #[serde(flatten)]
    pub measurements: ExpectedMeasurements,
    /// Root hash, artefact digests and tool versions.
    pub image: ImageBuild,
}
