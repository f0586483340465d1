//! TDVF metadata of an OVMF/TDVF firmware image: which parts of the flash image the
//! VMM copies into TD memory before the TD starts, where, and which of them the TDX
//! module measures into MRTD.
//!
//! Format: Intel "TDX Virtual Firmware Design Guide", section 11 ("TDVF Metadata"):
//! the OVMF GUIDed table (see [`table`]) holds the TDX metadata offset block
//! (GUID e47a6535-984a-4798-865e-4685a7bf8ec2, a `u32` offset counted back from the
//! end of the file) that locates the `TDVF_DESCRIPTOR`:
//! `Signature "TDVF" | Length u32 | Version u32 (=1) | NumberOfSectionEntries u32`
//! followed by that many 32-byte `TDVF_SECTION`s:
//! `DataOffset u32 | RawDataSize u32 | MemoryAddress u64 | MemoryDataSize u64 |
//! Type u32 | Attributes u32`.
//! The producer is edk2 `OvmfPkg/ResetVector/X64/IntelTdxMetadata.asm`; the consumer
//! whose checks we mirror (and tighten) is QEMU `hw/i386/tdvf.c`
//! (`tdvf_parse_metadata`, `tdvf_parse_and_check_section_entry`).
#![deny(clippy::arithmetic_side_effects)]

mod error;
mod table;

#[cfg(test)]
pub(crate) mod synth;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::Reader;

pub use error::TdvfError;
pub use table::{parse_table, Guid, OvmfTableEntry};

/// TDX pages are 4 KiB; every section's GPA and size must be page aligned
/// (design guide table 11-2; QEMU `TDVF_ALIGNMENT`).
pub const PAGE_SIZE: u64 = 0x1000;
/// More sections than any TDVF uses (OVMF has 6); bounds the work a hostile
/// descriptor can ask for.
pub const MAX_SECTIONS: u32 = 64;
/// TDX guest physical addresses are at most 52 bits wide (GPAW).
pub const GPA_LIMIT: u64 = 1 << 52;
const DESCRIPTOR_LEN: usize = 16;
const SECTION_LEN: usize = 32;
const TDVF_SIGNATURE: [u8; 4] = *b"TDVF";

/// `TDVF_SECTION.Attributes` bit 0: extend the section's contents into MRTD with
/// TDH.MR.EXTEND (design guide table 11-4).
pub const ATTR_MR_EXTEND: u32 = 1 << 0;
/// Bit 1: the VMM adds the pages with TDH.MEM.PAGE.AUG after the TD is built, so
/// they are not part of MRTD (design guide table 11-4; PermMem only).
pub const ATTR_PAGE_AUG: u32 = 1 << 1;

/// `TDVF_SECTION.Type` (design guide table 11-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionType {
    /// Boot firmware volume: the firmware code, copied from the image.
    Bfv,
    /// Configuration firmware volume: UEFI variables, copied from the image.
    Cfv,
    /// TD HOB the VMM builds (memory map handed to the firmware).
    TdHob,
    /// Temporary memory the firmware uses before its memory map exists (zeroed).
    TempMem,
    /// Permanent memory, added later with PAGE.AUG.
    PermMem,
    /// A payload (e.g. a kernel) loaded into TD memory.
    Payload,
    /// Parameters for the payload (e.g. a command line).
    PayloadParam,
}

impl SectionType {
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Self::Bfv,
            1 => Self::Cfv,
            2 => Self::TdHob,
            3 => Self::TempMem,
            4 => Self::PermMem,
            5 => Self::Payload,
            6 => Self::PayloadParam,
            _ => return None,
        })
    }

    pub fn as_u32(self) -> u32 {
        match self {
            Self::Bfv => 0,
            Self::Cfv => 1,
            Self::TdHob => 2,
            Self::TempMem => 3,
            Self::PermMem => 4,
            Self::Payload => 5,
            Self::PayloadParam => 6,
        }
    }

    /// Name as the design guide writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bfv => "BFV",
            Self::Cfv => "CFV",
            Self::TdHob => "TD_HOB",
            Self::TempMem => "TempMem",
            Self::PermMem => "PermMem",
            Self::Payload => "Payload",
            Self::PayloadParam => "PayloadParam",
        }
    }
}

impl fmt::Display for SectionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One validated `TDVF_SECTION`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdvfSection {
    /// Position in the descriptor (metadata order is the order the VMM adds them).
    pub index: usize,
    /// Absolute file offset of this 32-byte entry.
    pub entry_offset: usize,
    pub data_offset: u32,
    pub raw_data_size: u32,
    pub memory_address: u64,
    pub memory_data_size: u64,
    #[serde(rename = "type")]
    pub section_type: SectionType,
    pub attributes: u32,
}

impl TdvfSection {
    pub fn mr_extend(&self) -> bool {
        self.attributes & ATTR_MR_EXTEND != 0
    }

    pub fn page_aug(&self) -> bool {
        self.attributes & ATTR_PAGE_AUG != 0
    }

    /// Number of 4 KiB pages the section covers.
    pub fn pages(&self) -> u64 {
        self.memory_data_size / PAGE_SIZE
    }

    /// Exclusive end GPA (validated not to overflow when parsed).
    pub fn memory_end(&self) -> u64 {
        self.memory_address.saturating_add(self.memory_data_size)
    }

    /// Absolute file offset of the field at `rel` bytes into the entry.
    fn field_offset(&self, rel: usize) -> usize {
        self.entry_offset.saturating_add(rel)
    }
}

/// Byte offsets of the section fields inside a `TDVF_SECTION`.
pub mod field {
    pub const DATA_OFFSET: usize = 0;
    pub const RAW_DATA_SIZE: usize = 4;
    pub const MEMORY_ADDRESS: usize = 8;
    pub const MEMORY_DATA_SIZE: usize = 16;
    pub const TYPE: usize = 24;
    pub const ATTRIBUTES: usize = 28;
}

/// The parsed TDVF metadata of a firmware image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdvfMetadata {
    /// Absolute file offset of the `TDVF_DESCRIPTOR`.
    pub descriptor_offset: usize,
    pub version: u32,
    pub sections: Vec<TdvfSection>,
}

impl TdvfMetadata {
    /// Bytes of TD memory added at build time (every section but PAGE.AUG ones).
    pub fn added_bytes(&self) -> u64 {
        self.sections
            .iter()
            .filter(|s| !s.page_aug())
            .fold(0u64, |acc, s| acc.saturating_add(s.memory_data_size))
    }

    /// Bytes of TD memory extended into MRTD with TDH.MR.EXTEND.
    pub fn extended_bytes(&self) -> u64 {
        self.sections
            .iter()
            .filter(|s| !s.page_aug() && s.mr_extend())
            .fold(0u64, |acc, s| acc.saturating_add(s.memory_data_size))
    }
}

/// Locate the TDVF descriptor through the OVMF GUIDed table. Returns its offset.
fn descriptor_offset(fw: &[u8]) -> Result<usize, TdvfError> {
    let entries = parse_table(fw)?;
    let mut found: Option<&OvmfTableEntry> = None;
    for (index, e) in entries.iter().enumerate() {
        if e.guid != Guid::TDX_METADATA_OFFSET {
            continue;
        }
        if found.is_some() {
            // QEMU takes the first one walking backwards; two would let a verifier and
            // a VMM read different metadata, so refuse.
            return Err(TdvfError::DuplicateTdxMetadata {
                index,
                offset: e.length_offset.saturating_add(2),
            });
        }
        found = Some(e);
    }
    let entry = found.ok_or(TdvfError::NoTdxMetadata {
        table_offset: entries
            .last()
            .map_or(fw.len().saturating_sub(0x32), |e| e.data_offset),
    })?;
    if entry.data_len != 4 {
        return Err(TdvfError::MetadataOffsetSize {
            offset: entry.data_offset,
            len: entry.data_len,
        });
    }
    let mut r = Reader::new(fw);
    r.skip(entry.data_offset, "tdx_metadata_offset")?;
    let value = r.u32_le("tdx_metadata_offset")?;
    let bad = TdvfError::MetadataOffset {
        offset: entry.data_offset,
        value,
        file_len: fw.len(),
    };
    let value_usize = usize::try_from(value).map_err(|_| bad.clone())?;
    // QEMU: `offset = size - value; if (offset + sizeof(*metadata) > size) fail`.
    match fw.len().checked_sub(value_usize) {
        Some(at) if value_usize >= DESCRIPTOR_LEN => Ok(at),
        _ => Err(bad),
    }
}

/// Parse and validate the TDVF metadata of a firmware image.
pub fn parse(fw: &[u8]) -> Result<TdvfMetadata, TdvfError> {
    let desc_at = descriptor_offset(fw)?;
    let mut r = Reader::new(fw);
    r.skip(desc_at, "tdvf")?;
    let sig: [u8; 4] = r.array("tdvf.signature")?;
    if sig != TDVF_SIGNATURE {
        return Err(TdvfError::Signature {
            offset: desc_at,
            found: sig,
        });
    }
    let length_at = r.offset();
    let length = r.u32_le("tdvf.length")?;
    let version_at = r.offset();
    let version = r.u32_le("tdvf.version")?;
    if version != 1 {
        return Err(TdvfError::Version {
            offset: version_at,
            version,
        });
    }
    let count_at = r.offset();
    let count = r.u32_le("tdvf.number_of_section_entries")?;
    if count == 0 || count > MAX_SECTIONS {
        return Err(TdvfError::SectionCount {
            offset: count_at,
            count,
            max: MAX_SECTIONS,
        });
    }
    // QEMU: Length must equal sizeof(TdvfMetadata) + n * sizeof(TdvfSectionEntry).
    let expected = u64::from(count)
        .saturating_mul(SECTION_LEN as u64)
        .saturating_add(DESCRIPTOR_LEN as u64);
    if u64::from(length) != expected {
        return Err(TdvfError::Length {
            offset: length_at,
            length,
            expected,
            count,
        });
    }

    let mut sections: Vec<TdvfSection> = Vec::new();
    for index in 0..count as usize {
        let name = format!("tdvf.sections[{index}]");
        let mut e = r.sub(SECTION_LEN, &name)?;
        let entry_offset = e.offset();
        let section = TdvfSection {
            index,
            entry_offset,
            data_offset: e.u32_le(&format!("{name}.data_offset"))?,
            raw_data_size: e.u32_le(&format!("{name}.raw_data_size"))?,
            memory_address: e.u64_le(&format!("{name}.memory_address"))?,
            memory_data_size: e.u64_le(&format!("{name}.memory_data_size"))?,
            section_type: {
                let at = e.offset();
                let value = e.u32_le(&format!("{name}.type"))?;
                SectionType::from_u32(value).ok_or(TdvfError::UnknownSectionType {
                    index,
                    offset: at,
                    value,
                })?
            },
            attributes: e.u32_le(&format!("{name}.attributes"))?,
        };
        check_section(&section, fw.len())?;
        if let Some(other) = sections.iter().find(|o| overlaps(o, &section)) {
            return Err(TdvfError::Overlap {
                index,
                other: other.index,
                offset: section.field_offset(field::MEMORY_ADDRESS),
                start: section.memory_address,
                end: section.memory_end(),
            });
        }
        sections.push(section);
    }
    if !sections.iter().any(|s| s.section_type == SectionType::Bfv) {
        return Err(TdvfError::NoBfv {
            offset: desc_at.saturating_add(DESCRIPTOR_LEN),
        });
    }
    Ok(TdvfMetadata {
        descriptor_offset: desc_at,
        version,
        sections,
    })
}

fn overlaps(a: &TdvfSection, b: &TdvfSection) -> bool {
    a.memory_data_size != 0
        && b.memory_data_size != 0
        && a.memory_address < b.memory_end()
        && b.memory_address < a.memory_end()
}

fn invalid(s: &TdvfSection, field: &'static str, rel: usize, why: impl Into<String>) -> TdvfError {
    TdvfError::InvalidSection {
        index: s.index,
        field,
        offset: s.field_offset(rel),
        why: why.into(),
    }
}

/// Checks of one section. QEMU's `tdvf_parse_and_check_section_entry` checks
/// alignment, RawDataSize <= MemoryDataSize and the per-type RawDataSize rules; the
/// rest comes from the design guide (tables 11-2 to 11-4) and from what KVM accepts
/// (`KVM_TDX_INIT_MEM_REGION` wants a page-aligned source, i.e. DataOffset).
fn check_section(s: &TdvfSection, file_len: usize) -> Result<(), TdvfError> {
    let unaligned = |field: &'static str, rel: usize, value: u64| TdvfError::Unaligned {
        index: s.index,
        field,
        offset: s.field_offset(rel),
        value,
    };
    if s.attributes & !(ATTR_MR_EXTEND | ATTR_PAGE_AUG) != 0 {
        return Err(invalid(
            s,
            "attributes",
            field::ATTRIBUTES,
            format!("{:#x} sets reserved bits", s.attributes),
        ));
    }
    if s.memory_address % PAGE_SIZE != 0 {
        return Err(unaligned(
            "memory_address",
            field::MEMORY_ADDRESS,
            s.memory_address,
        ));
    }
    if s.memory_data_size % PAGE_SIZE != 0 {
        return Err(unaligned(
            "memory_data_size",
            field::MEMORY_DATA_SIZE,
            s.memory_data_size,
        ));
    }
    match s.memory_address.checked_add(s.memory_data_size) {
        Some(end) if end <= GPA_LIMIT => {}
        _ => {
            return Err(invalid(
                s,
                "memory_data_size",
                field::MEMORY_DATA_SIZE,
                format!(
                    "{:#x} bytes at {:#x} run past the 52-bit guest physical address space",
                    s.memory_data_size, s.memory_address
                ),
            ))
        }
    }
    if u64::from(s.raw_data_size) > s.memory_data_size {
        return Err(invalid(
            s,
            "raw_data_size",
            field::RAW_DATA_SIZE,
            format!(
                "{:#x} exceeds memory_data_size {:#x}",
                s.raw_data_size, s.memory_data_size
            ),
        ));
    }
    if s.raw_data_size != 0 {
        let start = u64::from(s.data_offset);
        let end = start.saturating_add(u64::from(s.raw_data_size));
        if end > file_len as u64 {
            return Err(TdvfError::RawDataOutOfFile {
                index: s.index,
                offset: s.field_offset(field::DATA_OFFSET),
                start,
                end,
                file_len,
            });
        }
        if start % PAGE_SIZE != 0 {
            return Err(unaligned("data_offset", field::DATA_OFFSET, start));
        }
    }
    let ty = s.section_type;
    match ty {
        // Copied from the image: QEMU refuses RawDataSize == 0.
        SectionType::Bfv | SectionType::Cfv if s.raw_data_size == 0 => {
            return Err(invalid(
                s,
                "raw_data_size",
                field::RAW_DATA_SIZE,
                format!("{ty} section with no raw data"),
            ))
        }
        // Memory the VMM provides: nothing to copy from the image.
        SectionType::TdHob | SectionType::TempMem | SectionType::PermMem
            if s.raw_data_size != 0 =>
        {
            return Err(invalid(
                s,
                "raw_data_size",
                field::RAW_DATA_SIZE,
                format!("{ty} section with {:#x} bytes of raw data", s.raw_data_size),
            ))
        }
        _ => {}
    }
    if s.page_aug() && ty != SectionType::PermMem {
        return Err(invalid(
            s,
            "attributes",
            field::ATTRIBUTES,
            format!("PAGE.AUG is defined for PermMem only, not {ty}"),
        ));
    }
    if s.page_aug() && s.mr_extend() {
        return Err(invalid(
            s,
            "attributes",
            field::ATTRIBUTES,
            "PAGE.AUG pages are added after the TD is built and cannot be MR.EXTENDed",
        ));
    }
    // A BFV that is not extended leaves the firmware code out of MRTD: MRTD would
    // then pin nothing about the code that runs first.
    if ty == SectionType::Bfv && !s.mr_extend() {
        return Err(invalid(
            s,
            "attributes",
            field::ATTRIBUTES,
            "BFV without MR.EXTEND: the firmware code would not be measured into MRTD",
        ));
    }
    Ok(())
}
