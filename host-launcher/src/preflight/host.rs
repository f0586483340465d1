//! Host-wide checks: IOMMU, memory, firmware identity.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::Check;
use crate::sysroot::SysRoot;

/// Guest RAM plus what QEMU itself needs (device emulation, page tables).
const QEMU_OVERHEAD_MIB: u64 = 1024;

pub fn iommu_enabled(root: &SysRoot) -> Check {
    const ID: &str = "iommu.enabled";
    let units = root.list("/sys/class/iommu");
    if units.is_empty() {
        Check::fail(
            ID,
            "no IOMMU unit in /sys/class/iommu",
            "enable VT-d in the BIOS and boot with `intel_iommu=on iommu=pt`",
        )
    } else {
        Check::pass(ID, format!("IOMMU units: {}", units.join(", ")))
    }
}

pub fn iommufd(root: &SysRoot) -> Check {
    const ID: &str = "iommu.iommufd";
    if root.exists("/dev/iommu") {
        Check::pass(ID, "/dev/iommu present")
    } else {
        Check::fail(
            ID,
            "/dev/iommu missing: QEMU's vfio-pci cannot use iommufd",
            "use a kernel with CONFIG_IOMMUFD=y and CONFIG_VFIO_DEVICE_CDEV=y (`modprobe iommufd` if modular)",
        )
    }
}

fn meminfo_kib(root: &SysRoot, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(root.path("/proc/meminfo")).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

pub fn memory(root: &SysRoot, guest_mib: u64) -> Check {
    const ID: &str = "memory.available";
    let need = guest_mib.saturating_add(QEMU_OVERHEAD_MIB);
    match meminfo_kib(root, "MemAvailable") {
        None => Check::unknown(ID, "cannot read MemAvailable from /proc/meminfo", ""),
        Some(kib) if kib / 1024 >= need => Check::pass(
            ID,
            format!("{} MiB available, {need} MiB needed", kib / 1024),
        ),
        Some(kib) => Check::fail(
            ID,
            format!("{} MiB available, {need} MiB needed ({guest_mib} for the guest + {QEMU_OVERHEAD_MIB} for QEMU)", kib / 1024),
            "lower memory_mib in the worker config or free memory on the host",
        ),
    }
}

pub fn hugepages(root: &SysRoot, guest_mib: u64) -> Check {
    const ID: &str = "memory.hugepages";
    let (Some(free), Some(size_kib)) = (
        meminfo_kib(root, "HugePages_Free"),
        meminfo_kib(root, "Hugepagesize"),
    ) else {
        return Check::unknown(
            ID,
            "cannot read HugePages_Free/Hugepagesize from /proc/meminfo",
            "",
        );
    };
    let free_mib = free.saturating_mul(size_kib) / 1024;
    if free_mib >= guest_mib {
        Check::pass(
            ID,
            format!(
                "{free} free hugepages of {size_kib} KiB = {free_mib} MiB, {guest_mib} MiB needed"
            ),
        )
    } else {
        let pages = guest_mib.saturating_mul(1024).div_ceil(size_kib.max(1));
        Check::fail(
            ID,
            format!("{free} free hugepages of {size_kib} KiB = {free_mib} MiB, {guest_mib} MiB needed"),
            format!("reserve them: `echo {pages} > /proc/sys/vm/nr_hugepages` (or hugepages={pages} on the kernel command line), or set hugepages = false"),
        )
    }
}

/// The firmware QEMU will load must be the one the image's measurements were computed
/// from: MRTD is a hash of it, so any other firmware makes every quote fail the policy.
pub fn firmware(firmware: &Path, measurements: &Path) -> Check {
    const ID: &str = "firmware.sha256";
    let expected = match std::fs::read(measurements)
        .map_err(|e| e.to_string())
        .and_then(|b| {
            serde_json::from_slice::<cocoon_measurements::ExpectedMeasurements>(&b)
                .map_err(|e| e.to_string())
        }) {
        Ok(m) => m.inputs.firmware_sha256.to_ascii_lowercase(),
        Err(e) => {
            return Check::fail(
                ID,
                format!("cannot read {}: {e}", measurements.display()),
                "point image_dir at a built image (image/build writes measurements.json)",
            )
        }
    };
    let actual = match std::fs::read(firmware) {
        Ok(bytes) => hex::encode(Sha256::digest(&bytes)),
        Err(e) => {
            return Check::fail(
                ID,
                format!("cannot read firmware {}: {e}", firmware.display()),
                "use the OVMF.fd shipped with the image (or fix `firmware`)",
            )
        }
    };
    if actual == expected {
        Check::pass(
            ID,
            format!(
                "{} sha256 {actual} matches measurements.json",
                firmware.display()
            ),
        )
    } else {
        Check::fail(
            ID,
            format!("{} sha256 {actual}, measurements.json expects {expected}", firmware.display()),
            "boot the OVMF.fd that was measured with the image (remove the `firmware` override or rebuild)",
        )
    }
}
