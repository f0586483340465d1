//! Host kernel: version, build options, KVM's TDX switch.

use super::{major_minor, Check, MIN_KERNEL};
use crate::sysroot::SysRoot;

/// The kernel to use when this one cannot host a TD.
pub const KERNEL_FIX: &str = "boot Linux 6.16 or newer built with CONFIG_INTEL_TDX_HOST=y, \
CONFIG_KVM_INTEL_TDX=y and CONFIG_IOMMUFD=y; Debian's stock kernels (bookworm 6.1, trixie 6.12) \
are built without INTEL_TDX_HOST and IOMMUFD: use Ubuntu 25.10's (or canonical/tdx's) kernel, or \
build upstream 6.16+ with those options (see qemu/README.md)";

/// Options a TDX + GPU-passthrough host kernel needs (`kernel.config`).
const NEEDED: &[&str] = &[
    "CONFIG_INTEL_TDX_HOST",
    "CONFIG_KVM_INTEL_TDX",
    "CONFIG_IOMMUFD",
    "CONFIG_VFIO_PCI",
];

pub fn version(root: &SysRoot) -> Check {
    const ID: &str = "kernel.version";
    let Some(release) = root.read_trimmed("/proc/sys/kernel/osrelease") else {
        return Check::unknown(ID, "cannot read /proc/sys/kernel/osrelease", KERNEL_FIX);
    };
    match major_minor(&release) {
        Some(v) if v >= MIN_KERNEL => Check::pass(ID, format!("Linux {release}")),
        Some(_) => Check::fail(
            ID,
            format!(
                "Linux {release} is older than {}.{}",
                MIN_KERNEL.0, MIN_KERNEL.1
            ),
            KERNEL_FIX,
        ),
        None => Check::unknown(
            ID,
            format!("cannot parse kernel release `{release}`"),
            KERNEL_FIX,
        ),
    }
}

/// `/boot/config-<release>` lists the build options; many hosts ship it.
pub fn config(root: &SysRoot) -> Check {
    const ID: &str = "kernel.config";
    let release = root
        .read_trimmed("/proc/sys/kernel/osrelease")
        .unwrap_or_default();
    let path = format!("/boot/config-{release}");
    let Ok(text) = std::fs::read_to_string(root.path(&path)) else {
        return Check::unknown(
            ID,
            format!("{path} not found; cannot read the kernel's build options"),
            format!("make sure the kernel has {}", NEEDED.join(", ")),
        );
    };
    let missing: Vec<&str> = NEEDED
        .iter()
        .copied()
        .filter(|opt| {
            !text.lines().any(|l| {
                l.strip_prefix(opt)
                    .and_then(|rest| rest.strip_prefix('='))
                    .is_some_and(|v| v == "y" || v == "m")
            })
        })
        .collect();
    if missing.is_empty() {
        Check::pass(ID, format!("{path} has {}", NEEDED.join(", ")))
    } else {
        Check::fail(
            ID,
            format!("{path} lacks {}", missing.join(", ")),
            KERNEL_FIX,
        )
    }
}

pub fn kvm_tdx(root: &SysRoot) -> Check {
    const ID: &str = "kvm.tdx";
    const PARAM: &str = "/sys/module/kvm_intel/parameters/tdx";
    match root.read_trimmed(PARAM).as_deref() {
        Some("Y") | Some("y") | Some("1") => Check::pass(ID, format!("{PARAM} = Y")),
        Some(v) => Check::fail(
            ID,
            format!("{PARAM} = {v}: KVM has TDX off"),
            "enable TDX in the BIOS (TME, TME-MT, SEAM loader, TDX), add `kvm_intel.tdx=1` to the \
kernel command line (or `options kvm_intel tdx=1` in /etc/modprobe.d/), reboot, and check \
`dmesg | grep -i tdx` for `module initialized`",
        ),
        None if root.exists("/sys/module/kvm_intel") => Check::fail(
            ID,
            format!("{PARAM} is missing: this kernel's KVM has no TDX support"),
            KERNEL_FIX,
        ),
        None => Check::fail(
            ID,
            "kvm_intel is not loaded (no /sys/module/kvm_intel)",
            "enable VT-x and TDX in the BIOS, then `modprobe kvm_intel tdx=1`",
        ),
    }
}
