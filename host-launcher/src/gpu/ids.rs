//! PCI device IDs of NVIDIA GPUs with confidential-computing support: Hopper (GH100)
//! and Blackwell data-centre parts (GB100, GB102, GB110).
//!
//! Source: the PCI ID Repository, `pci.ids` version 2025.06.09 (Debian trixie package
//! `pci.ids` 0.0~2025.06.09-1), vendor `10de`. Names below are that file's. IDs inside
//! a chip's block that the file does not name yet are still accepted by chip range
//! (NVIDIA allocates device IDs per chip in contiguous blocks: GH100 0x2300-0x23ff,
//! GB100 0x2900-0x297f, GB102 0x2980-0x29ff), so a new SKU of a known chip passes;
//! an unknown chip fails until this table learns it. The NVSwitch (0x22a3) is not a GPU.

/// NVIDIA's PCI vendor ID.
pub const NVIDIA_VENDOR: u16 = 0x10de;

/// Named IDs: (device id, chip, marketing name) from pci.ids 2025.06.09.
pub const NAMED: &[(u16, &str, &str)] = &[
    (0x230e, "GH100", "H20 NVL16"),
    (0x2313, "GH100", "H100 CNX"),
    (0x2321, "GH100", "H100L 94GB"),
    (0x2322, "GH100", "H800 PCIe"),
    (0x2324, "GH100", "H800"),
    (0x2328, "GH100", "H20B"),
    (0x2329, "GH100", "H20"),
    (0x232c, "GH100", "H20 HBM3e"),
    (0x2330, "GH100", "H100 SXM5 80GB"),
    (0x2331, "GH100", "H100 PCIe"),
    (0x2335, "GH100", "H200 SXM 141GB"),
    (0x2336, "GH100", "H100"),
    (0x2337, "GH100", "H100 SXM5 64GB"),
    (0x2338, "GH100", "H100 SXM5 96GB"),
    (0x2339, "GH100", "H100 SXM5 94GB"),
    (0x233a, "GH100", "H800L 94GB"),
    (0x233b, "GH100", "H200 NVL"),
    (0x233d, "GH100", "H100 96GB"),
    (0x2342, "GH100", "GH200 120GB / 480GB"),
    (0x2348, "GH100", "GH200 144G HBM3e"),
    (0x2901, "GB100", "B200"),
    (0x2920, "GB100", "TS4 / B100"),
    (0x2941, "GB100", "HGX GB200"),
    (0x29bc, "GB102", "B100"),
    (0x31c0, "GB110", "GB110"),
];

/// Chip blocks: (first id, last id, chip).
pub const CHIP_RANGES: &[(u16, u16, &str)] = &[
    (0x2300, 0x23ff, "GH100"),
    (0x2900, 0x297f, "GB100"),
    (0x2980, 0x29ff, "GB102"),
];

/// What the table says about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuModel {
    /// A named CC-capable part.
    Named {
        chip: &'static str,
        name: &'static str,
    },
    /// Inside a CC-capable chip's ID block, not yet named by pci.ids.
    Chip { chip: &'static str },
    /// NVIDIA, but not a CC-capable data-centre chip (or unknown to this table).
    Unsupported,
    /// Not NVIDIA.
    NotNvidia,
}

/// Look up a vendor/device pair.
pub fn classify(vendor: u16, device: u16) -> GpuModel {
    if vendor != NVIDIA_VENDOR {
        return GpuModel::NotNvidia;
    }
    if let Some((_, chip, name)) = NAMED.iter().find(|(id, _, _)| *id == device) {
        return GpuModel::Named { chip, name };
    }
    match CHIP_RANGES
        .iter()
        .find(|(lo, hi, _)| (*lo..=*hi).contains(&device))
    {
        Some((_, _, chip)) => GpuModel::Chip { chip },
        None => GpuModel::Unsupported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_known_unknown_and_foreign_devices() {
        assert_eq!(
            classify(0x10de, 0x2331),
            GpuModel::Named {
                chip: "GH100",
                name: "H100 PCIe"
            }
        );
        assert_eq!(
            classify(0x10de, 0x2335),
            GpuModel::Named {
                chip: "GH100",
                name: "H200 SXM 141GB"
            }
        );
        assert_eq!(
            classify(0x10de, 0x2901),
            GpuModel::Named {
                chip: "GB100",
                name: "B200"
            }
        );
        assert_eq!(classify(0x10de, 0x23f0), GpuModel::Chip { chip: "GH100" });
        // A100 (GA100, 0x20b0) predates CC; an RTX 4090 (0x2684) is not a CC part.
        assert_eq!(classify(0x10de, 0x20b0), GpuModel::Unsupported);
        assert_eq!(classify(0x10de, 0x2684), GpuModel::Unsupported);
        assert_eq!(classify(0x1002, 0x2331), GpuModel::NotNvidia);
    }

    #[test]
    fn named_ids_are_unique_and_inside_a_known_chip() {
        for (i, (id, chip, _)) in NAMED.iter().enumerate() {
            assert!(
                !NAMED.iter().skip(i + 1).any(|(o, _, _)| o == id),
                "{id:#x} twice"
            );
            if *chip != "GB110" {
                assert!(
                    CHIP_RANGES
                        .iter()
                        .any(|(lo, hi, c)| (*lo..=*hi).contains(id) && c == chip),
                    "{id:#x}"
                );
            }
        }
    }
}
