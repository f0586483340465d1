//! The TOML policy a proxy pins, and the check of a verified quote against it.
//!
//! Fail closed: every table and entry that decides acceptance must be written out;
//! an omitted register is a load error, not "any". Registers that are not meant to
//! be pinned say so with the explicit word `"any"` (allowed for RTMR0 and RTMR3
//! only: MRTD, RTMR1 and RTMR2 identify the firmware, boot path and OS, so a
//! policy that leaves them open pins nothing). Unknown keys are errors everywhere
//! (`deny_unknown_fields`), so a typo cannot silently disable a rule.
//! The format is documented in `measurements/README.md (policy section)`.

mod allowed;
mod check;
mod reason;
mod render;

use serde::{Deserialize, Serialize};

use crate::digest::Digest48;
use crate::expected::ExpectedMeasurements;

pub use allowed::{Allowed, Hex64};
pub use check::{check, Evidence};
pub use reason::{Reason, ReasonCode};

/// Policy format version this crate reads and writes.
pub const POLICY_VERSION: u32 = 1;

/// TCB statuses dcap-qvl can report (Intel's names). `Revoked` is absent on
/// purpose: dcap-qvl rejects it before any policy runs.
pub const KNOWN_TCB_STATUSES: &[&str] = &[
    "UpToDate",
    "SWHardeningNeeded",
    "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded",
    "OutOfDate",
    "OutOfDateConfigurationNeeded",
    "TDRelaunchAdvised",
    "TDRelaunchAdvisedConfigurationNeeded",
];

/// A verification policy (the whole TOML file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Policy format version; must be 1.
    pub version: u32,
    /// Allowed values of the measurement registers.
    pub registers: RegisterPolicy,
    /// Rules on TD attributes and XFAM.
    pub td: TdPolicy,
    /// Rules on the platform's TCB and the collateral. Optional: when absent, only
    /// `UpToDate` with no advisories is accepted and collateral age is not limited
    /// beyond its own validity dates.
    #[serde(default)]
    pub tcb: TcbPolicy,
    /// How REPORTDATA must bind the worker's keys.
    pub report_data: ReportDataPolicy,
    /// NVIDIA GPU evidence rules; absent = GPU evidence not judged by this policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<crate::gpu::GpuPolicy>,
}

/// `[registers]`: for each register, the list of accepted values (hex, 96 digits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterPolicy {
    /// MRTD (firmware). Required, a non-empty list.
    pub mrtd: Allowed<Digest48>,
    /// RTMR0 (firmware configuration: ACPI tables, VM shape). Required: a list, or
    /// `"any"` when the VM shape is not fixed.
    pub rtmr0: Allowed<Digest48>,
    /// RTMR1 (OS loader / UKI). Required, a non-empty list.
    pub rtmr1: Allowed<Digest48>,
    /// RTMR2 (kernel command line, initrd). Required, a non-empty list.
    pub rtmr2: Allowed<Digest48>,
    /// RTMR3 (runtime events). Required: a list, or `"any"` (the runtime event log
    /// is then bound through REPORTDATA claims instead).
    pub rtmr3: Allowed<Digest48>,
}

/// `[td]`: TD attributes and extended features.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdPolicy {
    /// Accept a TD in debug mode (TDATTRIBUTES.DEBUG) or with host profiling
    /// (the other TUD bits). Default false: such a TD's memory is open to the host.
    #[serde(default)]
    pub allow_debug: bool,
    /// Accepted XFAM values ("0x..." hex), or `"any"`. Required.
    pub xfam: Allowed<Hex64>,
}

/// `[tcb]`: platform TCB and collateral freshness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcbPolicy {
    /// Accepted TCB statuses (Intel's names). Default `["UpToDate"]`.
    #[serde(default = "default_statuses")]
    pub accepted_statuses: Vec<String>,
    /// Advisory IDs (e.g. "INTEL-SA-00837") that may apply to an accepted platform.
    /// Any other advisory rejects. Default: none.
    #[serde(default)]
    pub tolerated_advisories: Vec<String>,
    /// Maximum age of the collateral in seconds: the verification time minus the TCB
    /// info `issueDate`. Absent = only the collateral's own `nextUpdate` applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_collateral_age_secs: Option<u64>,
}

impl Default for TcbPolicy {
    fn default() -> Self {
        Self {
            accepted_statuses: default_statuses(),
            tolerated_advisories: Vec::new(),
            max_collateral_age_secs: None,
        }
    }
}

fn default_statuses() -> Vec<String> {
    vec!["UpToDate".to_string()]
}

/// How REPORTDATA binds the worker's public keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Binding {
    /// REPORTDATA = SHA-512 of the claims encoding (`crate::claims`, v1): binds the
    /// TLS SPKI, the receipt key, GPU evidence, the runtime event log, the wallet
    /// and the nonce. The verifier must supply the claims it observed.
    ClaimsV1,
    /// REPORTDATA must equal `value` (64 bytes hex): for fixed test quotes.
    Exact,
    /// REPORTDATA is not checked. Only for inspection; a proxy must not use it.
    Any,
}

/// `[report_data]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportDataPolicy {
    /// `"claims_v1"`, `"exact"` or `"any"`. Required.
    pub binding: Binding,
    /// For `exact`: the 64-byte REPORTDATA, 128 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// For `claims_v1`: the claims must carry a nonce (freshness). Default false.
    #[serde(default)]
    pub require_nonce: bool,
    /// For `claims_v1`: the claims must carry a GPU evidence digest. Default false.
    #[serde(default)]
    pub require_gpu_evidence: bool,
}

/// A policy that does not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not TOML, an unknown key, a missing entry or a value of the wrong form
    /// (toml's message names the key and line).
    #[error("policy: {0}")]
    Syntax(String),
    #[error("policy: version {0} is not supported (expected {POLICY_VERSION})")]
    Version(u32),
    /// A register that must be pinned is `"any"` or an empty list.
    #[error(
        "policy: registers.{0} must be a non-empty list of values (\"any\" is not allowed for it)"
    )]
    Unpinned(&'static str),
    #[error("policy: tcb.accepted_statuses: unknown status {0:?} (known: {known})", known = KNOWN_TCB_STATUSES.join(", "))]
    UnknownStatus(String),
    #[error("policy: report_data: {0}")]
    ReportData(String),
    /// The policy cannot be written as TOML.
    #[error("policy: cannot write {0}")]
    Render(String),
}

impl Policy {
    /// Parse and validate a policy file.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let p: Policy = toml::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        p.validate()?;
        Ok(p)
    }

    /// The rules [`Policy::from_toml`] enforces beyond the TOML shape.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.version != POLICY_VERSION {
            return Err(PolicyError::Version(self.version));
        }
        let r = &self.registers;
        for (name, set) in [("mrtd", &r.mrtd), ("rtmr1", &r.rtmr1), ("rtmr2", &r.rtmr2)] {
            match set {
                Allowed::OneOf(v) if !v.is_empty() => {}
                _ => return Err(PolicyError::Unpinned(name)),
            }
        }
        for s in &self.tcb.accepted_statuses {
            if !KNOWN_TCB_STATUSES.contains(&s.as_str()) {
                return Err(PolicyError::UnknownStatus(s.clone()));
            }
        }
        let rd = &self.report_data;
        match (rd.binding, &rd.value) {
            (Binding::Exact, Some(v)) => {
                let ok = hex::decode(v.trim_start_matches("0x")).is_ok_and(|b| b.len() == 64);
                if !ok {
                    return Err(PolicyError::ReportData(
                        "value must be 128 hex digits (64 bytes)".into(),
                    ));
                }
            }
            (Binding::Exact, None) => {
                return Err(PolicyError::ReportData(
                    "binding \"exact\" needs a value".into(),
                ))
            }
            (_, Some(_)) => {
                return Err(PolicyError::ReportData(
                    "value is only meaningful with binding \"exact\"".into(),
                ))
            }
            (_, None) => {}
        }
        if rd.binding != Binding::ClaimsV1 && (rd.require_nonce || rd.require_gpu_evidence) {
            return Err(PolicyError::ReportData(
                "require_nonce / require_gpu_evidence need binding \"claims_v1\"".into(),
            ));
        }
        Ok(())
    }

    /// What `quote verify` applies without `--policy`: no register is pinned and
    /// REPORTDATA is not checked, but DEBUG and any TCB status other than UpToDate
    /// (or any advisory) still reject. Not loadable from TOML on purpose.
    pub fn default_unpinned() -> Policy {
        Policy {
            version: POLICY_VERSION,
            registers: RegisterPolicy {
                mrtd: Allowed::Any,
                rtmr0: Allowed::Any,
                rtmr1: Allowed::Any,
                rtmr2: Allowed::Any,
                rtmr3: Allowed::Any,
            },
            td: TdPolicy {
                allow_debug: false,
                xfam: Allowed::Any,
            },
            tcb: TcbPolicy::default(),
            report_data: ReportDataPolicy {
                binding: Binding::Any,
                value: None,
                require_nonce: false,
                require_gpu_evidence: false,
            },
            gpu: None,
        }
    }

    /// True when any register is pinned to a list.
    pub fn pins_registers(&self) -> bool {
        let r = &self.registers;
        [&r.mrtd, &r.rtmr0, &r.rtmr1, &r.rtmr2, &r.rtmr3]
            .iter()
            .any(|a| !a.is_any())
    }

    /// A policy pinning an image's expected measurements: MRTD, RTMR1, RTMR2, and
    /// RTMR0 when the build computed it (otherwise `"any"`); RTMR3 `"any"` (runtime);
    /// XFAM `"any"`; DEBUG forbidden; UpToDate only; REPORTDATA bound by claims v1.
    pub fn from_measurements(m: &ExpectedMeasurements) -> Policy {
        let one = |d: Digest48| Allowed::OneOf(vec![d]);
        let mut policy = Policy::default_unpinned();
        policy.registers = RegisterPolicy {
            mrtd: one(m.mrtd),
            rtmr0: m.rtmr0.map_or(Allowed::Any, one),
            rtmr1: one(m.rtmr1),
            rtmr2: one(m.rtmr2),
            rtmr3: Allowed::Any,
        };
        policy.report_data.binding = Binding::ClaimsV1;
        policy
    }

    /// The policy as commented TOML (what `policy from-measurements` writes).
    pub fn to_toml(&self, source: Option<&str>) -> Result<String, PolicyError> {
        render::render(self, source)
    }
}
