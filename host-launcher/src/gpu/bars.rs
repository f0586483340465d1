//! The GPU's BARs, read from sysfs, to size the guest's 64-bit PCI MMIO window.
//!
//! A Hopper GPU's BAR1 (its memory aperture) is 64-256 GiB, far beyond OVMF's
//! default 64-bit window (32 GiB); if the window is too small, OVMF leaves the BAR
//! unassigned and the guest driver cannot use the GPU.

use crate::bdf::Bdf;
use crate::sysroot::SysRoot;

/// `IORESOURCE_MEM_64` from `include/linux/ioport.h`: the BAR is a 64-bit memory BAR.
const IORESOURCE_MEM_64: u64 = 0x0010_0000;

/// Per-GPU BAR space assumed when the BARs cannot be read (dry-run on another
/// machine): 256 GiB covers the BAR1 of an H100 (128 GiB) and of an H200 (256 GiB).
pub const FALLBACK_MIB_PER_GPU: u64 = 256 * 1024;

/// Bytes of all 64-bit memory BARs of a device, from `/sys/bus/pci/devices/BDF/resource`
/// (one `start end flags` line per resource, hex). `None` when unreadable.
pub fn bar64_bytes(root: &SysRoot, bdf: &Bdf) -> Option<u64> {
    let text = root.read_trimmed(format!("/sys/bus/pci/devices/{bdf}/resource"))?;
    let mut total: u64 = 0;
    // Lines 0-5 are the BARs; 6 is the expansion ROM (32-bit); later ones are SR-IOV.
    for line in text.lines().take(6) {
        let mut f = line
            .split_whitespace()
            .map(|t| u64::from_str_radix(t.trim_start_matches("0x"), 16));
        let (Some(Ok(start)), Some(Ok(end)), Some(Ok(flags))) = (f.next(), f.next(), f.next())
        else {
            return None;
        };
        if flags & IORESOURCE_MEM_64 != 0 && end > start {
            let size = end.checked_sub(start)?.checked_add(1)?;
            total = total.checked_add(size.checked_next_power_of_two()?)?;
        }
    }
    Some(total)
}

/// The 64-bit MMIO window (MiB) for these GPUs: the BARs (each rounded up to a power
/// of two, as PCI requires) of all GPUs, plus half again for alignment gaps and the
/// other devices, rounded up to a power of two (OVMF aligns the window to its size), at
/// least OVMF's default 32 GiB. `None` when there is no GPU: the default then suffices.
pub fn mmio64_window_mib(root: &SysRoot, gpus: &[Bdf]) -> Option<u64> {
    if gpus.is_empty() {
        return None;
    }
    let mut total_mib: u64 = 0;
    for bdf in gpus {
        let mib = bar64_bytes(root, bdf)
            .filter(|b| *b > 0)
            .map(|b| b.div_ceil(1 << 20))
            .unwrap_or(FALLBACK_MIB_PER_GPU);
        total_mib = total_mib.saturating_add(mib);
    }
    Some(
        total_mib
            .saturating_add(total_mib / 2)
            .checked_next_power_of_two()
            .unwrap_or(u64::MAX)
            .max(32 * 1024),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(resource: &str) -> (tempfile::TempDir, SysRoot, Bdf) {
        let dir = tempfile::tempdir().unwrap();
        let bdf: Bdf = "0000:17:00.0".parse().unwrap();
        let dev = dir.path().join(format!("sys/bus/pci/devices/{bdf}"));
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(dev.join("resource"), resource).unwrap();
        let root = SysRoot::new(dir.path());
        (dir, root, bdf)
    }

    // An H100 PCIe's resource file: BAR0 16 MiB (32-bit), BAR1 128 GiB and BAR3
    // 32 MiB (64-bit prefetchable), ROM 512 KiB.
    const H100: &str = "0x00000000d8000000 0x00000000d8ffffff 0x0000000000040200
0x0000202000000000 0x0000203fffffffff 0x000000000014220c
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000204000000000 0x0000204001ffffff 0x000000000014220c
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x00000000d9000000 0x00000000d907ffff 0x0000000000046200
";

    #[test]
    fn sizes_the_window_from_the_bars() {
        let (_d, root, bdf) = fixture(H100);
        assert_eq!(bar64_bytes(&root, &bdf), Some((128u64 << 30) + (32 << 20)));
        // 128 GiB + 32 MiB, plus half -> 192 GiB -> 256 GiB.
        assert_eq!(mmio64_window_mib(&root, &[bdf]), Some(256 * 1024));
        assert_eq!(mmio64_window_mib(&root, &[bdf, bdf]), Some(512 * 1024));
        assert_eq!(mmio64_window_mib(&root, &[]), None);
    }

    #[test]
    fn unreadable_bars_fall_back() {
        let (_d, root, _) = fixture(H100);
        let other: Bdf = "0000:18:00.0".parse().unwrap();
        // 256 GiB assumed, plus half -> 384 GiB -> 512 GiB.
        assert_eq!(mmio64_window_mib(&root, &[other]), Some(512 * 1024));
        let (_d, root, bdf) = fixture("garbage\n");
        assert_eq!(bar64_bytes(&root, &bdf), None);
    }
}
