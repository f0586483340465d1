//! Small synthetic TDVF images for unit tests: raw data pages, a TDVF descriptor and
//! an OVMF GUIDed table laid out the way edk2's reset vector lays them out.
#![allow(clippy::arithmetic_side_effects)]

use super::{Guid, PAGE_SIZE};

/// One section to put into a synthetic image.
#[derive(Debug, Clone)]
pub struct SynthSection {
    pub section_type: u32,
    pub attributes: u32,
    pub memory_address: u64,
    pub memory_data_size: u64,
    /// Raw data stored in the image (page aligned there); its length is RawDataSize.
    pub raw: Vec<u8>,
}

impl SynthSection {
    pub fn new(section_type: u32, attributes: u32, addr: u64, size: u64, raw: Vec<u8>) -> Self {
        Self {
            section_type,
            attributes,
            memory_address: addr,
            memory_data_size: size,
            raw,
        }
    }
}

/// Deterministic non-trivial bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 8) as u8))
        .collect()
}

/// A built image and where its pieces are.
#[derive(Debug, Clone)]
pub struct SynthImage {
    pub bytes: Vec<u8>,
    pub descriptor_offset: usize,
    /// Offset of each section entry.
    pub entry_offsets: Vec<usize>,
    /// Offset of the metadata-offset entry's u32 data.
    pub metadata_offset_at: usize,
    /// Offset of the footer's u16 length.
    pub footer_length_at: usize,
}

/// Build an image: raw data at page-aligned offsets from 0, then a page holding the
/// descriptor, an extra dummy table entry, the TDX metadata offset entry, the footer
/// and 0x20 bytes of "reset vector".
pub fn build(sections: &[SynthSection]) -> SynthImage {
    let mut bytes = Vec::new();
    let mut data_offsets = Vec::new();
    for s in sections {
        if s.raw.is_empty() {
            data_offsets.push(0u32);
            continue;
        }
        data_offsets.push(bytes.len() as u32);
        bytes.extend_from_slice(&s.raw);
        let pad = (PAGE_SIZE as usize - bytes.len() % PAGE_SIZE as usize) % PAGE_SIZE as usize;
        bytes.resize(bytes.len() + pad, 0xcc);
    }
    let descriptor_offset = bytes.len();
    bytes.extend_from_slice(b"TDVF");
    bytes.extend_from_slice(&(16 + 32 * sections.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    let mut entry_offsets = Vec::new();
    for (s, off) in sections.iter().zip(&data_offsets) {
        entry_offsets.push(bytes.len());
        bytes.extend_from_slice(&off.to_le_bytes());
        bytes.extend_from_slice(&(s.raw.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&s.memory_address.to_le_bytes());
        bytes.extend_from_slice(&s.memory_data_size.to_le_bytes());
        bytes.extend_from_slice(&s.section_type.to_le_bytes());
        bytes.extend_from_slice(&s.attributes.to_le_bytes());
    }
    // GUIDed table: an unrelated entry first (as OVMF has SEV entries), then the
    // TDX metadata offset entry, then the footer.
    let table_start = bytes.len();
    let other = Guid([0x11; 16]);
    bytes.extend_from_slice(&[0xab; 6]);
    bytes.extend_from_slice(&(6u16 + 18).to_le_bytes());
    bytes.extend_from_slice(&other.0);
    let metadata_offset_at = bytes.len();
    // Placeholder: the offset from the end is known once the image is complete.
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&(4u16 + 18).to_le_bytes());
    bytes.extend_from_slice(&Guid::TDX_METADATA_OFFSET.0);
    let footer_length_at = bytes.len();
    let total = (bytes.len() - table_start + 18) as u16;
    bytes.extend_from_slice(&total.to_le_bytes());
    bytes.extend_from_slice(&Guid::OVMF_TABLE_FOOTER.0);
    bytes.extend_from_slice(&[0x90; 0x20]);
    let from_end = (bytes.len() - descriptor_offset) as u32;
    bytes[metadata_offset_at..metadata_offset_at + 4].copy_from_slice(&from_end.to_le_bytes());
    SynthImage {
        bytes,
        descriptor_offset,
        entry_offsets,
        metadata_offset_at,
        footer_length_at,
    }
}

/// A typical small TDVF: a 2-page extended BFV, a 1-page CFV, temp memory and a HOB.
pub fn typical() -> Vec<SynthSection> {
    vec![
        SynthSection::new(0, 1, 0xffff_e000, 0x2000, pattern(0x2000, 1)),
        SynthSection::new(1, 0, 0xffff_d000, 0x1000, pattern(0x1000, 2)),
        SynthSection::new(3, 0, 0x80_0000, 0x3000, Vec::new()),
        SynthSection::new(2, 0, 0x80_9000, 0x1000, Vec::new()),
    ]
}
