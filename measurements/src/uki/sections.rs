//! Which sections systemd-stub 257 finds, and in which order it measures them.
#![deny(clippy::arithmetic_side_effects)]

use crate::pe::{PeImage, SectionHeader};

use super::UkiError;

/// systemd 257 src/fundamental/uki.h `UnifiedSection`: "the canonical order in which we
/// measure the sections into TPM PCR 11. PLEASE DO NOT REORDER!"
pub const UNIFIED_SECTIONS: [&str; 14] = [
    ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat",
    ".pcrsig", ".pcrpkey", ".profile", ".dtbauto", ".hwids",
];

/// A UKI section the stub found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UkiSection {
    /// One of [`UNIFIED_SECTIONS`].
    pub name: &'static str,
    pub header: SectionHeader,
    /// Measured into PCR 11 (all but `.pcrsig`: uki.h `unified_section_measure`, since
    /// the signature covers the measurement's expected result).
    pub measured: bool,
}

impl UkiSection {
    /// Bytes the stub sees (and measures): VirtualSize (stub.c uses `memory_size`).
    pub fn memory_len(&self) -> u64 {
        u64::from(self.header.virtual_size)
    }

    /// File offset of the section data.
    pub fn file_offset(&self) -> u64 {
        u64::from(self.header.pointer_to_raw_data)
    }

    /// Bytes of it that come from the file; the rest (up to VirtualSize) is zeros.
    pub fn file_len(&self) -> u64 {
        u64::from(self.header.file_backed_len())
    }

    /// Zero bytes the loader appends past the file-backed part.
    pub fn zero_len(&self) -> u64 {
        self.memory_len().saturating_sub(self.file_len())
    }
}

/// stub.c `find_sections` with the default profile (0, as QEMU passes no LoadOptions):
/// the base sections are those before the first `.profile`; then the sections of
/// profile 0 (from the first `.profile` up to the next one) override them. Within a
/// range the first section with a matching name wins, and one with VirtualSize 0
/// counts as absent (pe.h `PE_SECTION_VECTOR_IS_SET`).
pub fn locate(pe: &PeImage) -> Result<Vec<UkiSection>, UkiError> {
    let table = &pe.sections;
    let profiles: Vec<usize> = table
        .iter()
        .filter(|s| s.name_is(".profile"))
        .map(|s| s.index)
        .collect();
    let base_end = profiles.first().copied().unwrap_or(table.len());
    let base = table.get(..base_end).unwrap_or(&[]);
    let profile0 = match profiles.as_slice() {
        [] => &[][..],
        [first] => table.get(*first..).unwrap_or(&[]),
        [first, second, ..] => table.get(*first..*second).unwrap_or(&[]),
    };

    let mut found: Vec<(&'static str, Option<&SectionHeader>)> =
        UNIFIED_SECTIONS.iter().map(|&n| (n, None)).collect();
    for range in [base, profile0] {
        for (name, slot) in found.iter_mut() {
            if let Some(s) = range.iter().find(|s| s.name_is(name)) {
                *slot = Some(s);
            }
        }
    }

    let mut out = Vec::new();
    for (name, slot) in found {
        let Some(h) = slot else { continue };
        if h.virtual_size == 0 {
            continue;
        }
        if name == ".dtbauto" {
            // pe.c picks a .dtbauto by matching the firmware's devicetree or the SMBIOS
            // hardware IDs (.hwids) of the machine: not predictable from the image.
            return Err(UkiError::UnsupportedSection {
                name: name.to_string(),
                header_offset: h.header_offset,
                why: "the stub selects a .dtbauto by the machine's hardware IDs",
            });
        }
        out.push(UkiSection {
            name,
            header: h.clone(),
            measured: name != ".pcrsig",
        });
    }
    Ok(out)
}
