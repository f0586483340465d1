//! The TCG2 crypto-agile log encoding, shared by a TPM's `binary_bios_measurements`
//! and a TD's CCEL log area (TCG PC Client Platform Firmware Profile 1.05 rev 23,
//! §10.2.1 TCG_PCR_EVENT, §10.2.2 TCG_PCR_EVENT2, §10.4.5.1 TCG_EfiSpecIDEventStruct;
//! UEFI 2.10 §38.4 for CC_EVENT, which has the same layout with MrIndex for PCRIndex).
//!
//! This layer knows nothing about registers: it turns bytes into events and stops at
//! the end of the input or at the padding that follows the last event of a
//! fixed-size log area.
#![deny(clippy::arithmetic_side_effects)]

use serde::Serialize;

use crate::codec::{ParseError, Reader};
use crate::event::event_type::EV_NO_ACTION;

/// Signature of the header event's Spec ID structure in a crypto-agile log (§10.4.5.1).
pub const SPEC_ID_SIGNATURE: &[u8; 16] = b"Spec ID Event03\0";
/// Signature of the SHA-1-only log format (TCG EFI Protocol 1.22), which has no
/// TCG_PCR_EVENT2 entries.
const SPEC_ID_SIGNATURE_SHA1: &[u8; 16] = b"Spec ID Event00\0";

/// Most digest algorithms a Spec ID event or an event may list. TPM 2.0 defines a
/// handful of banks; a larger count can only come from corrupt input.
pub const MAX_ALGORITHMS: usize = 16;
/// Largest digest size accepted for an algorithm the Spec ID event declares.
pub const MAX_DIGEST_SIZE: usize = 512;
/// Largest event data accepted (a dbx or db variable event is tens of KiB).
pub const MAX_EVENT_DATA: usize = 16 << 20;

/// TPM_ALG_ID values (TCG Algorithm Registry) with their digest sizes.
pub const TPM_ALG_SHA1: u16 = 0x0004;
pub const TPM_ALG_SHA256: u16 = 0x000B;
pub const TPM_ALG_SHA384: u16 = 0x000C;
pub const TPM_ALG_SHA512: u16 = 0x000D;

/// Name and digest size of the hash algorithms a log may carry, or `None`.
pub fn algorithm_info(id: u16) -> Option<(&'static str, usize)> {
    Some(match id {
        TPM_ALG_SHA1 => ("sha1", 20),
        TPM_ALG_SHA256 => ("sha256", 32),
        TPM_ALG_SHA384 => ("sha384", 48),
        TPM_ALG_SHA512 => ("sha512", 64),
        0x0012 => ("sm3_256", 32),
        0x0027 => ("sha3_256", 32),
        0x0028 => ("sha3_384", 48),
        0x0029 => ("sha3_512", 64),
        _ => return None,
    })
}

/// An algorithm name for display: the registry name or the id in hex.
pub fn algorithm_name(id: u16) -> String {
    algorithm_info(id).map_or_else(|| format!("0x{id:04x}"), |(n, _)| n.to_string())
}

/// One entry of the Spec ID event's digest-size table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AlgorithmSize {
    pub algorithm_id: u16,
    pub digest_size: u16,
}

/// The header event's TCG_EfiSpecIDEventStruct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecIdEvent {
    pub platform_class: u32,
    pub spec_version_major: u8,
    pub spec_version_minor: u8,
    pub spec_errata: u8,
    pub uintn_size: u8,
    /// Algorithms, in the order the log lists them, with the digest size every event
    /// uses for them: the only way to step over a digest of an unknown algorithm.
    pub algorithms: Vec<AlgorithmSize>,
    #[serde(with = "hex_bytes")]
    pub vendor_info: Vec<u8>,
}

impl SpecIdEvent {
    pub fn digest_size(&self, algorithm_id: u16) -> Option<usize> {
        self.algorithms
            .iter()
            .find(|a| a.algorithm_id == algorithm_id)
            .map(|a| usize::from(a.digest_size))
    }

    pub fn algorithm_names(&self) -> Vec<String> {
        self.algorithms
            .iter()
            .map(|a| algorithm_name(a.algorithm_id))
            .collect()
    }
}

/// One digest of an event's TPML_DIGEST_VALUES.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogDigest {
    pub algorithm_id: u16,
    #[serde(with = "hex_bytes")]
    pub digest: Vec<u8>,
}

/// One event as encoded, before any register mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// Absolute byte offset of the event's first field.
    pub offset: usize,
    /// PCRIndex (TPM log) or MrIndex (CC log), as written.
    pub index: u32,
    pub event_type: u32,
    pub digests: Vec<LogDigest>,
    pub data: Vec<u8>,
    /// Absolute byte offset of the event data.
    pub data_offset: usize,
}

/// What follows the last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Trailing {
    /// The input ends right after the last event (a TPM's binary_bios_measurements).
    None,
    /// An "event" whose PCRIndex and EventType are 0xFFFFFFFF: the unwritten part of
    /// a fixed-size log area, which firmware fills with 0xFF (edk2 TdTcg2Dxe, CCEL).
    OnesPadding { bytes: usize, all_ones: bool },
    /// The rest of the input is zero: an unused log area cleared to zero.
    ZeroPadding { bytes: usize },
}

/// A log as encoded: the header event, its Spec ID structure and the TCG_PCR_EVENT2s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLog {
    /// The TCG_PCR_EVENT header (SHA-1 format), with its 20-byte digest.
    pub header: RawEvent,
    pub spec_id: SpecIdEvent,
    pub events: Vec<RawEvent>,
    /// Bytes from the start of the input to the end of the last event.
    pub length: usize,
    pub trailing: Trailing,
}

/// Parse the whole log.
pub fn parse_raw(bytes: &[u8]) -> Result<RawLog, ParseError> {
    let mut r = Reader::new(bytes);
    let header = parse_header(&mut r)?;
    let spec_id = parse_spec_id(&mut Reader::with_base(&header.data, header.data_offset))?;

    let mut events = Vec::new();
    let trailing = loop {
        let rest = r.rest();
        if rest.is_empty() {
            break Trailing::None;
        }
        if let Some(t) = padding(rest) {
            break t;
        }
        let index = events.len().saturating_add(1);
        events.push(parse_event2(&mut r, index, &spec_id)?);
    };
    Ok(RawLog {
        header,
        spec_id,
        events,
        length: r.offset(),
        trailing,
    })
}

/// Padding starts where an event's PCRIndex and EventType would both be all-ones, or
/// where everything left is zero and at least as long as PCRIndex, EventType and a
/// digest count (a zero count is invalid, so no real event looks like that; a
/// shorter zero tail is a truncated event).
fn padding(rest: &[u8]) -> Option<Trailing> {
    let head = rest.get(..8).unwrap_or(rest);
    if head.iter().all(|&b| b == 0xFF) {
        return Some(Trailing::OnesPadding {
            bytes: rest.len(),
            all_ones: rest.iter().all(|&b| b == 0xFF),
        });
    }
    if rest.len() >= 12 && rest.iter().all(|&b| b == 0) {
        return Some(Trailing::ZeroPadding { bytes: rest.len() });
    }
    None
}

/// TCG_PCR_EVENT: the first event, in the SHA-1 format every log starts with so
/// that SHA-1-only parsers can read it (§10.2.1).
fn parse_header(r: &mut Reader<'_>) -> Result<RawEvent, ParseError> {
    let offset = r.offset();
    let index = r.u32_le("event[0].pcr_index")?;
    let type_at = r.offset();
    let event_type = r.u32_le("event[0].event_type")?;
    if event_type != EV_NO_ACTION {
        return Err(ParseError::invalid(
            "event[0].event_type",
            type_at,
            format!(
                "0x{event_type:08x}: a TCG2 log starts with an EV_NO_ACTION (0x3) Spec ID \
                 event; this is not a TCG2 event log"
            ),
        ));
    }
    let digest = r.take(20, "event[0].digest")?.to_vec();
    let size = r.len_u32_le("event[0].event_size", MAX_EVENT_DATA)?;
    let data_offset = r.offset();
    let data = r.take(size, "event[0].event")?.to_vec();
    Ok(RawEvent {
        offset,
        index,
        event_type,
        digests: vec![LogDigest {
            algorithm_id: TPM_ALG_SHA1,
            digest,
        }],
        data,
        data_offset,
    })
}

/// TCG_EfiSpecIDEventStruct (§10.4.5.1).
fn parse_spec_id(r: &mut Reader<'_>) -> Result<SpecIdEvent, ParseError> {
    let at = r.offset();
    let signature: [u8; 16] = r.array("spec_id.signature")?;
    if &signature == SPEC_ID_SIGNATURE_SHA1 {
        return Err(ParseError::invalid(
            "spec_id.signature",
            at,
            "\"Spec ID Event00\": a SHA-1-only log, which has no SHA-384 digests; need a \
             crypto-agile log (\"Spec ID Event03\")",
        ));
    }
    if &signature != SPEC_ID_SIGNATURE {
        return Err(ParseError::invalid(
            "spec_id.signature",
            at,
            format!(
                "{:?} is not \"Spec ID Event03\": not a TCG2 crypto-agile log",
                String::from_utf8_lossy(&signature)
            ),
        ));
    }
    let platform_class = r.u32_le("spec_id.platform_class")?;
    let spec_version_minor = r.u8("spec_id.spec_version_minor")?;
    let spec_version_major = r.u8("spec_id.spec_version_major")?;
    let spec_errata = r.u8("spec_id.spec_errata")?;
    let uintn_size = r.u8("spec_id.uintn_size")?;
    let count_at = r.offset();
    let count = r.len_u32_le("spec_id.number_of_algorithms", MAX_ALGORITHMS)?;
    if count == 0 {
        return Err(ParseError::invalid(
            "spec_id.number_of_algorithms",
            count_at,
            "0: a crypto-agile log lists at least one algorithm",
        ));
    }
    let mut algorithms: Vec<AlgorithmSize> = Vec::with_capacity(count);
    for i in 0..count {
        let id_at = r.offset();
        let algorithm_id = r.u16_le(&format!("spec_id.digest_sizes[{i}].algorithm_id"))?;
        let size_field = format!("spec_id.digest_sizes[{i}].digest_size");
        let size_at = r.offset();
        let digest_size = r.u16_le(&size_field)?;
        if algorithms.iter().any(|a| a.algorithm_id == algorithm_id) {
            return Err(ParseError::invalid(
                format!("spec_id.digest_sizes[{i}].algorithm_id"),
                id_at,
                format!("algorithm 0x{algorithm_id:04x} is listed twice"),
            ));
        }
        let size = usize::from(digest_size);
        match algorithm_info(algorithm_id) {
            Some((name, want)) if want != size => {
                return Err(ParseError::invalid(
                    size_field,
                    size_at,
                    format!("{size} for {name}, whose digests are {want} bytes"),
                ))
            }
            _ if size == 0 || size > MAX_DIGEST_SIZE => {
                return Err(ParseError::invalid(
                    size_field,
                    size_at,
                    format!("{size}: a digest size must be 1..={MAX_DIGEST_SIZE}"),
                ))
            }
            _ => {}
        }
        algorithms.push(AlgorithmSize {
            algorithm_id,
            digest_size,
        });
    }
    let vendor_size = usize::from(r.u8("spec_id.vendor_info_size")?);
    let vendor_info = r.take(vendor_size, "spec_id.vendor_info")?.to_vec();
    Ok(SpecIdEvent {
        platform_class,
        spec_version_major,
        spec_version_minor,
        spec_errata,
        uintn_size,
        algorithms,
        vendor_info,
    })
}

/// TCG_PCR_EVENT2 (§10.2.2) / CC_EVENT: index, type, TPML_DIGEST_VALUES, event data.
fn parse_event2(
    r: &mut Reader<'_>,
    index: usize,
    spec_id: &SpecIdEvent,
) -> Result<RawEvent, ParseError> {
    let offset = r.offset();
    let f = |name: &str| format!("event[{index}].{name}");
    let pcr = r.u32_le(&f("pcr_index"))?;
    let event_type = r.u32_le(&f("event_type"))?;
    let count_at = r.offset();
    let count = r.len_u32_le(&f("digests.count"), MAX_ALGORITHMS)?;
    if count == 0 {
        return Err(ParseError::invalid(
            f("digests.count"),
            count_at,
            "0: every event carries a digest for each algorithm of the Spec ID event",
        ));
    }
    let mut digests: Vec<LogDigest> = Vec::with_capacity(count);
    for i in 0..count {
        let id_field = f(&format!("digests[{i}].algorithm_id"));
        let id_at = r.offset();
        let algorithm_id = r.u16_le(&id_field)?;
        let Some(size) = spec_id.digest_size(algorithm_id) else {
            return Err(ParseError::invalid(
                id_field,
                id_at,
                format!(
                    "algorithm 0x{algorithm_id:04x} is not in the Spec ID event, so its \
                     digest size is unknown"
                ),
            ));
        };
        if digests.iter().any(|d| d.algorithm_id == algorithm_id) {
            return Err(ParseError::invalid(
                id_field,
                id_at,
                format!(
                    "{} digest given twice in one event",
                    algorithm_name(algorithm_id)
                ),
            ));
        }
        let digest = r.take(size, &f(&format!("digests[{i}].digest")))?.to_vec();
        digests.push(LogDigest {
            algorithm_id,
            digest,
        });
    }
    let size = r.len_u32_le(&f("event_size"), MAX_EVENT_DATA)?;
    let data_offset = r.offset();
    let data = r.take(size, &f("event"))?.to_vec();
    Ok(RawEvent {
        offset,
        index: pcr,
        event_type,
        digests,
        data,
        data_offset,
    })
}

/// Serialize bytes as lowercase hex.
pub(crate) mod hex_bytes {
    use serde::Serializer;

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }
}
