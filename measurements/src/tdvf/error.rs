//! Errors of TDVF metadata parsing: one variant per failure, each naming the field
//! and the absolute byte offset.
#![deny(clippy::arithmetic_side_effects)]

use super::Guid;
use crate::codec::ParseError;

/// Why a firmware image's TDVF metadata was rejected. Every variant names the field
/// and the absolute byte offset it was read from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TdvfError {
    /// The bytes ended before a field did (or a read failed in the byte reader).
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(
        "ovmf_table.footer_guid at byte offset {offset}: found {found}, expected {}: \
         not an OVMF image (no GUIDed table)",
        Guid::OVMF_TABLE_FOOTER
    )]
    NoFooter { offset: usize, found: Guid },
    #[error("ovmf_table.length at byte offset {offset}: {length} bytes {why}")]
    TableLength {
        offset: usize,
        length: usize,
        why: &'static str,
    },
    #[error("ovmf_table.entries[{index}].length at byte offset {offset}: {length} bytes {why}")]
    EntryLength {
        index: usize,
        offset: usize,
        length: usize,
        why: &'static str,
    },
    #[error(
        "ovmf_table at byte offset {table_offset}: no TDX metadata offset entry ({}): \
         the firmware was built without TDX support",
        Guid::TDX_METADATA_OFFSET
    )]
    NoTdxMetadata { table_offset: usize },
    #[error(
        "ovmf_table.entries[{index}].guid at byte offset {offset}: a second TDX metadata \
         offset entry; refusing an image whose metadata is ambiguous"
    )]
    DuplicateTdxMetadata { index: usize, offset: usize },
    #[error("tdx_metadata_offset at byte offset {offset}: {len} data bytes, expected 4")]
    MetadataOffsetSize { offset: usize, len: usize },
    #[error(
        "tdx_metadata_offset at byte offset {offset}: {value:#x} bytes from the end does \
         not place a 16-byte TDVF descriptor inside the {file_len}-byte file"
    )]
    MetadataOffset {
        offset: usize,
        value: u32,
        file_len: usize,
    },
    #[error("tdvf.signature at byte offset {offset}: {found:02x?}, expected \"TDVF\"")]
    Signature { offset: usize, found: [u8; 4] },
    #[error("tdvf.version at byte offset {offset}: {version}, only version 1 is defined")]
    Version { offset: usize, version: u32 },
    #[error("tdvf.number_of_section_entries at byte offset {offset}: {count}, must be 1..={max}")]
    SectionCount { offset: usize, count: u32, max: u32 },
    #[error(
        "tdvf.length at byte offset {offset}: {length}, expected {expected} \
         (16 + 32 x {count} sections)"
    )]
    Length {
        offset: usize,
        length: u32,
        expected: u64,
        count: u32,
    },
    #[error("tdvf.sections[{index}].type at byte offset {offset}: unknown section type {value}")]
    UnknownSectionType {
        index: usize,
        offset: usize,
        value: u32,
    },
    #[error(
        "tdvf.sections[{index}].{field} at byte offset {offset}: {value:#x} is not \
         4 KiB aligned"
    )]
    Unaligned {
        index: usize,
        field: &'static str,
        offset: usize,
        value: u64,
    },
    #[error(
        "tdvf.sections[{index}].data_offset at byte offset {offset}: raw data \
         {start:#x}..{end:#x} lies outside the {file_len}-byte file"
    )]
    RawDataOutOfFile {
        index: usize,
        offset: usize,
        start: u64,
        end: u64,
        file_len: usize,
    },
    #[error(
        "tdvf.sections[{index}].memory_address at byte offset {offset}: GPA range \
         {start:#x}..{end:#x} overlaps sections[{other}]; the TDX module refuses to add \
         a page twice"
    )]
    Overlap {
        index: usize,
        other: usize,
        offset: usize,
        start: u64,
        end: u64,
    },
    #[error("tdvf.sections[{index}].{field} at byte offset {offset}: {why}")]
    InvalidSection {
        index: usize,
        field: &'static str,
        offset: usize,
        why: String,
    },
    #[error(
        "tdvf.sections at byte offset {offset}: no BFV section, so the firmware code \
         would not be in MRTD"
    )]
    NoBfv { offset: usize },
}

impl TdvfError {
    /// The absolute byte offset the error is about.
    pub fn offset(&self) -> usize {
        match self {
            Self::Parse(e) => e.offset,
            Self::NoFooter { offset, .. }
            | Self::TableLength { offset, .. }
            | Self::EntryLength { offset, .. }
            | Self::DuplicateTdxMetadata { offset, .. }
            | Self::MetadataOffsetSize { offset, .. }
            | Self::MetadataOffset { offset, .. }
            | Self::Signature { offset, .. }
            | Self::Version { offset, .. }
            | Self::SectionCount { offset, .. }
            | Self::Length { offset, .. }
            | Self::UnknownSectionType { offset, .. }
            | Self::Unaligned { offset, .. }
            | Self::RawDataOutOfFile { offset, .. }
            | Self::Overlap { offset, .. }
            | Self::InvalidSection { offset, .. }
            | Self::NoBfv { offset } => *offset,
            Self::NoTdxMetadata { table_offset } => *table_offset,
        }
    }
}
