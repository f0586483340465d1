//! The OVMF GUIDed table at the end of the flash image.
//!
//! Layout (edk2 `OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm`, the table QEMU walks in
//! `hw/i386/pc_sysfw_ovmf.c`): the last 0x20 bytes of the image hold the reset vector;
//! just before them sits the footer `u16 total_length || GUID 96b582de-…`, and before the
//! footer the entries, each `data || u16 length || GUID`, where `length` counts the data,
//! itself and the GUID. `total_length` counts every entry plus the footer's 18 bytes.
//! Entries are found by walking backwards from the footer.
#![deny(clippy::arithmetic_side_effects)]

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::TdvfError;
use crate::codec::{slice_at, Reader};

/// Bytes after the table footer: the reset vector area (`ResetVectorVtf0.asm`).
pub const BYTES_AFTER_FOOTER: usize = 0x20;
/// `u16 length || GUID`, both in the footer and at the end of every entry.
const ENTRY_TRAILER: usize = 18;

/// An EFI GUID in its on-disk (mixed-endian) byte order.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// `96b582de-1fb2-45f7-baea-a366c55a082d`: OVMF table footer.
    pub const OVMF_TABLE_FOOTER: Guid = Guid([
        0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08,
        0x2d,
    ]);
    /// `e47a6535-984a-4798-865e-4685a7bf8ec2`: TDX metadata offset block (TDVF design
    /// guide section 11.1; edk2 `OvmfPkg/ResetVector/X64/IntelTdxMetadata.asm`).
    pub const TDX_METADATA_OFFSET: Guid = Guid([
        0x35, 0x65, 0x7a, 0xe4, 0x4a, 0x98, 0x98, 0x47, 0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e,
        0xc2,
    ]);
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a0, a1, a2, a3, b0, b1, c0, c1, d0, d1, e0, e1, e2, e3, e4, e5] = self.0;
        let d1_ = u32::from_le_bytes([a0, a1, a2, a3]);
        let d2_ = u16::from_le_bytes([b0, b1]);
        let d3_ = u16::from_le_bytes([c0, c1]);
        write!(
            f,
            "{d1_:08x}-{d2_:04x}-{d3_:04x}-{d0:02x}{d1:02x}-{e0:02x}{e1:02x}{e2:02x}{e3:02x}{e4:02x}{e5:02x}"
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

impl Serialize for Guid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Guid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let hex: String = s.chars().filter(|c| *c != '-').collect();
        let raw = hex::decode(&hex).map_err(serde::de::Error::custom)?;
        let raw: [u8; 16] = raw
            .try_into()
            .map_err(|_| serde::de::Error::custom(format!("GUID {s:?} is not 16 bytes")))?;
        // Canonical text is big-endian per field; the first three fields are stored
        // little-endian.
        let [a0, a1, a2, a3, b0, b1, c0, c1, d0, d1, e0, e1, e2, e3, e4, e5] = raw;
        let out = [
            a3, a2, a1, a0, b1, b0, c1, c0, d0, d1, e0, e1, e2, e3, e4, e5,
        ];
        Ok(Guid(out))
    }
}

/// One entry of the OVMF GUIDed table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvmfTableEntry {
    pub guid: Guid,
    /// Absolute file offset of the entry's data.
    pub data_offset: usize,
    pub data_len: usize,
    /// Absolute file offset of the entry's `u16 length` field.
    pub length_offset: usize,
}

fn overflow(field: &str, offset: usize) -> TdvfError {
    TdvfError::Parse(crate::codec::ParseError::invalid(
        field,
        offset,
        "offset arithmetic overflows",
    ))
}

/// Parse the whole GUIDed table. Entries come back in the order QEMU visits them
/// (last in the file first).
pub fn parse_table(fw: &[u8]) -> Result<Vec<OvmfTableEntry>, TdvfError> {
    // Footer: u16 length at end-0x32, GUID at end-0x30 .. end-0x20.
    let footer_end = fw
        .len()
        .checked_sub(BYTES_AFTER_FOOTER)
        .and_then(|e| e.checked_sub(ENTRY_TRAILER))
        .ok_or_else(|| {
            TdvfError::Parse(crate::codec::ParseError {
                field: "ovmf_table.footer".into(),
                offset: 0,
                kind: crate::codec::ParseErrorKind::Truncated {
                    needed: BYTES_AFTER_FOOTER.saturating_add(ENTRY_TRAILER),
                    available: fw.len(),
                },
            })
        })?;
    let len_at = footer_end;
    let guid_at = footer_end.saturating_add(2);
    let mut r = Reader::with_base(
        slice_at(fw, len_at, ENTRY_TRAILER, "ovmf_table.footer")?,
        len_at,
    );
    let total = r.u16_le("ovmf_table.length")?;
    let guid = Guid(r.array("ovmf_table.footer_guid")?);
    if guid != Guid::OVMF_TABLE_FOOTER {
        return Err(TdvfError::NoFooter {
            offset: guid_at,
            found: guid,
        });
    }
    let total = usize::from(total);
    let body_len = total
        .checked_sub(ENTRY_TRAILER)
        .ok_or(TdvfError::TableLength {
            offset: len_at,
            length: total,
            why: "shorter than the 18-byte footer it includes",
        })?;
    let start = len_at.checked_sub(body_len).ok_or(TdvfError::TableLength {
        offset: len_at,
        length: total,
        why: "extends before the start of the file",
    })?;

    let mut entries = Vec::new();
    let mut pos = len_at; // exclusive end of the next entry to read
    while pos > start {
        let index = entries.len();
        let left = pos.saturating_sub(start);
        let trailer_at = pos
            .checked_sub(ENTRY_TRAILER)
            .filter(|_| left >= ENTRY_TRAILER)
            .ok_or(TdvfError::EntryLength {
                index,
                offset: start,
                length: left,
                why: "bytes left over at the start of the table, fewer than an entry trailer",
            })?;
        let mut r = Reader::with_base(
            slice_at(
                fw,
                trailer_at,
                ENTRY_TRAILER,
                &format!("ovmf_table.entries[{index}]"),
            )?,
            trailer_at,
        );
        let length = usize::from(r.u16_le(&format!("ovmf_table.entries[{index}].length"))?);
        let guid = Guid(r.array(&format!("ovmf_table.entries[{index}].guid"))?);
        if length < ENTRY_TRAILER {
            return Err(TdvfError::EntryLength {
                index,
                offset: trailer_at,
                length,
                why: "shorter than its own 18-byte length and GUID",
            });
        }
        if length > left {
            return Err(TdvfError::EntryLength {
                index,
                offset: trailer_at,
                length,
                why: "extends before the start of the table",
            });
        }
        let data_offset = pos
            .checked_sub(length)
            .ok_or_else(|| overflow("ovmf_table.entries", trailer_at))?;
        entries.push(OvmfTableEntry {
            guid,
            data_offset,
            data_len: length.saturating_sub(ENTRY_TRAILER),
            length_offset: trailer_at,
        });
        pos = data_offset;
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_text_round_trip() {
        let g = Guid::TDX_METADATA_OFFSET;
        assert_eq!(g.to_string(), "e47a6535-984a-4798-865e-4685a7bf8ec2");
        let json = serde_json::to_string(&g).unwrap();
        let back: Guid = serde_json::from_str(&json).unwrap();
        assert_eq!(back, g);
        assert_eq!(
            Guid::OVMF_TABLE_FOOTER.to_string(),
            "96b582de-1fb2-45f7-baea-a366c55a082d"
        );
    }
}
