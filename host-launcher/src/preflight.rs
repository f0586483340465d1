//! `cocoon-host preflight`: is this host ready to run a TDX worker with its GPUs?
//!
//! One [`Check`] per line: an id, pass/fail/unknown, what was found and the fix. All
//! checks run (a host owner wants the whole list, not the first problem). Every
//! `/sys`, `/proc`, `/dev` and `/boot` lookup goes through a [`SysRoot`], so fixture
//! trees exercise each failure.

mod gpu;
mod host;
mod kernel;
mod qemu;

use std::path::PathBuf;

use serde::Serialize;

use crate::bdf::Bdf;
use crate::config::WorkerConfig;
use crate::sysroot::SysRoot;

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// Could not be determined (a tool is missing); does not fail preflight.
    Unknown,
}

/// One line of the preflight report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier (`kernel.version`, `gpu.driver`, ...), for scripts and tests.
    pub id: &'static str,
    /// The GPU a per-GPU check is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub status: CheckStatus,
    /// What was found.
    pub detail: String,
    /// What to do; empty on pass.
    pub fix: String,
}

impl Check {
    pub fn pass(id: &'static str, detail: impl Into<String>) -> Self {
        Self {
            id,
            subject: None,
            status: CheckStatus::Pass,
            detail: detail.into(),
            fix: String::new(),
        }
    }

    pub fn fail(id: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            id,
            subject: None,
            status: CheckStatus::Fail,
            detail: detail.into(),
            fix: fix.into(),
        }
    }

    pub fn unknown(id: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: CheckStatus::Unknown,
            ..Self::fail(id, detail, fix)
        }
    }

    fn about(mut self, bdf: &Bdf) -> Self {
        self.subject = Some(bdf.to_string());
        self
    }

    /// `fail  gpu.driver [0000:17:00.0]: bound to nvidia -> fix: ...`
    pub fn render(&self) -> String {
        let status = match self.status {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Unknown => "unknown",
        };
        let subject = self
            .subject
            .as_ref()
            .map(|s| format!(" [{s}]"))
            .unwrap_or_default();
        let fix = if self.fix.is_empty() {
            String::new()
        } else {
            format!("\n        fix: {}", self.fix)
        };
        format!("{status:<7} {}{subject}: {}{fix}", self.id, self.detail)
    }
}

/// What preflight checks against, taken from the worker config (or defaults).
#[derive(Debug, Clone)]
pub struct PreflightInput {
    pub root: SysRoot,
    pub qemu: PathBuf,
    pub gpus: Vec<Bdf>,
    pub memory_mib: Option<u64>,
    pub hugepages: bool,
    /// (firmware, measurements.json) when a config names an image.
    pub firmware: Option<(PathBuf, PathBuf)>,
    pub gpu_admin_tools: Option<PathBuf>,
}

impl PreflightInput {
    pub fn from_config(root: SysRoot, cfg: &WorkerConfig) -> Self {
        Self {
            root,
            qemu: cfg.qemu.clone(),
            gpus: cfg.gpus.clone(),
            memory_mib: Some(cfg.memory_mib),
            hugepages: cfg.hugepages,
            firmware: Some((cfg.firmware_path(), cfg.measurements_path())),
            gpu_admin_tools: cfg.gpu_admin_tools.clone(),
        }
    }

    /// Host-only checks, for `preflight` without a config.
    pub fn host_only(root: SysRoot) -> Self {
        Self {
            root,
            qemu: PathBuf::from("/usr/bin/qemu-system-x86_64"),
            gpus: Vec::new(),
            memory_mib: None,
            hugepages: false,
            firmware: None,
            gpu_admin_tools: None,
        }
    }
}

/// The minimum host kernel: KVM TDX host support was merged in Linux 6.16.
pub const MIN_KERNEL: (u32, u32) = (6, 16);
/// The minimum QEMU: the `tdx-guest` object was merged in QEMU 10.1.
pub const MIN_QEMU: (u32, u32) = (10, 1);

/// Run every check, in report order.
pub fn run(input: &PreflightInput) -> Vec<Check> {
    let root = &input.root;
    let mut checks = vec![
        kernel::version(root),
        kernel::config(root),
        kernel::kvm_tdx(root),
    ];
    checks.extend(qemu::checks(&input.qemu));
    checks.push(host::iommu_enabled(root));
    checks.push(host::iommufd(root));
    for bdf in &input.gpus {
        checks.extend(
            gpu::checks(root, bdf, input.gpu_admin_tools.as_deref())
                .into_iter()
                .map(|c| c.about(bdf)),
        );
    }
    if let Some(mib) = input.memory_mib {
        checks.push(if input.hugepages {
            host::hugepages(root, mib)
        } else {
            host::memory(root, mib)
        });
    }
    if let Some((fw, measurements)) = &input.firmware {
        checks.push(host::firmware(fw, measurements));
    }
    checks
}

/// True when nothing failed (unknowns do not fail preflight).
pub fn all_passed(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.status != CheckStatus::Fail)
}

/// Parse the leading `major.minor` of a version string (`6.16.3-1-amd64`, `10.1.0`).
pub(crate) fn major_minor(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(major_minor("6.16.3-1-amd64"), Some((6, 16)));
        assert_eq!(major_minor("6.1.0-41-cloud-amd64"), Some((6, 1)));
        assert_eq!(major_minor("10.0.2"), Some((10, 0)));
        assert_eq!(major_minor("x"), None);
        assert!((6, 1) < MIN_KERNEL && (6, 16) >= MIN_KERNEL && (7, 0) >= MIN_KERNEL);
    }
}
