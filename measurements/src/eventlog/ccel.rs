//! The CCEL ACPI table (ACPI 6.5 §5.2.34, "Confidential Computing Event Log"): where
//! a TD's firmware left its event log. Linux exposes the table at
//! `/sys/firmware/acpi/tables/CCEL` and the log area it points to at
//! `/sys/firmware/acpi/tables/data/CCEL`.
#![deny(clippy::arithmetic_side_effects)]

use serde::Serialize;

use crate::codec::{ParseError, Reader};

/// Length of the table: ACPI header (36) + CC type, subtype, reserved (4) + LAML, LASA.
pub const CCEL_TABLE_LEN: usize = 56;

/// The fields of a CCEL table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CcelTable {
    pub revision: u8,
    pub oem_id: String,
    /// 1 = AMD SEV, 2 = Intel TDX (UEFI 2.10 EFI_CC_TYPE).
    pub cc_type: u8,
    pub cc_subtype: u8,
    /// Log Area Minimum Length: the size of the log area in bytes.
    pub laml: u64,
    /// Log Area Start Address (guest physical); shown, not used.
    pub lasa: u64,
}

impl CcelTable {
    /// True when `bytes` starts like a CCEL table rather than an event log.
    pub fn looks_like(bytes: &[u8]) -> bool {
        bytes.starts_with(b"CCEL")
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let sig_at = r.offset();
        let signature = r.take(4, "ccel.signature")?;
        if signature != b"CCEL" {
            return Err(ParseError::invalid(
                "ccel.signature",
                sig_at,
                format!(
                    "{:?}: not a CCEL ACPI table",
                    String::from_utf8_lossy(signature)
                ),
            ));
        }
        let len_at = r.offset();
        let length = r.u32_le("ccel.length")?;
        if usize::try_from(length).ok() != Some(CCEL_TABLE_LEN) || bytes.len() < CCEL_TABLE_LEN {
            return Err(ParseError::invalid(
                "ccel.length",
                len_at,
                format!(
                    "table length {length} with {} bytes given; a CCEL table is {CCEL_TABLE_LEN} \
                     bytes",
                    bytes.len()
                ),
            ));
        }
        let revision = r.u8("ccel.revision")?;
        let sum_at = r.offset();
        r.skip(1, "ccel.checksum")?;
        // ACPI §5.2.6: every byte of the table sums to zero mod 256.
        let sum = bytes
            .iter()
            .take(CCEL_TABLE_LEN)
            .fold(0u8, |acc, &b| acc.wrapping_add(b));
        if sum != 0 {
            return Err(ParseError::invalid(
                "ccel.checksum",
                sum_at,
                format!("the table's bytes sum to 0x{sum:02x}, not 0"),
            ));
        }
        let oem_id = String::from_utf8_lossy(r.take(6, "ccel.oem_id")?)
            .trim_end()
            .to_string();
        r.skip(8 + 4 + 4 + 4, "ccel.oem_table_id..creator_revision")?;
        let cc_type = r.u8("ccel.cc_type")?;
        let cc_subtype = r.u8("ccel.cc_subtype")?;
        r.skip(2, "ccel.reserved")?;
        let laml = r.u64_le("ccel.laml")?;
        let lasa = r.u64_le("ccel.lasa")?;
        Ok(Self {
            revision,
            oem_id,
            cc_type,
            cc_subtype,
            laml,
            lasa,
        })
    }
}
