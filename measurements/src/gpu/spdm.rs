//! SPDM 1.1 `GET_MEASUREMENTS` request + `MEASUREMENTS` response, as NVML returns
//! them for an NVIDIA Hopper GPU (the "attestation report").
//!
//! Layout (DMTF DSP0274 1.1.0, §10.11 GET_MEASUREMENTS / MEASUREMENTS):
//! request `SPDMVersion | 0xE0 | Param1 | Param2 | Nonce[32] | SlotIDParam` (37 bytes
//! when a signature is requested), then the response `SPDMVersion | 0x60 | Param1 |
//! Param2 | NumberOfBlocks | MeasurementRecordLength (u24 LE) | MeasurementRecord |
//! Nonce[32] | OpaqueLength (u16 LE) | OpaqueData | Signature`. The signature
//! (ECDSA P-384, raw r||s) covers request || response-without-signature (L1 of §10.11
//! for a single exchange). NVIDIA's opaque data is a list of `type u16 LE | length
//! u16 LE | value` records (nvtrust `OpaqueData`).
#![deny(clippy::arithmetic_side_effects)]

use crate::codec::{check_len, ParseError, Reader};
use serde::Serialize;

/// SPDM request code GET_MEASUREMENTS.
pub const GET_MEASUREMENTS: u8 = 0xE0;
/// SPDM response code MEASUREMENTS.
pub const MEASUREMENTS: u8 = 0x60;
/// Raw ECDSA P-384 signature: r || s.
pub const SIGNATURE_LEN: usize = 96;
/// Request length with a nonce and SlotIDParam (SPDM 1.1+).
pub const REQUEST_LEN: usize = 37;
/// Largest report we parse: 255 blocks of 64 KiB is far beyond any real GPU, and
/// NVIDIA's reports are ~4-8 KiB.
pub const MAX_REPORT_BYTES: usize = 1 << 20;
/// Cap on MeasurementRecordLength.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;
/// Cap on OpaqueLength. DSP0274 1.1 limits opaque data to 1024 bytes; NVIDIA's newer
/// firmware is allowed some headroom, but nothing unbounded.
pub const MAX_OPAQUE_BYTES: usize = 8192;

/// Opaque-data record types NVIDIA defines (nvtrust `OPAQUE_DATA_TYPES`).
pub mod opaque_type {
    pub const DRIVER_VERSION: u16 = 3;
    pub const VBIOS_VERSION: u16 = 6;
    pub const MSRSCNT: u16 = 12;
    pub const CHIP_SKU: u16 = 15;
    pub const PROJECT: u16 = 17;
    pub const PROJECT_SKU: u16 = 18;
    pub const FWID: u16 = 20;
    pub const FEATURE_FLAG: u16 = 36;
}

/// Errors from [`AttestationReport::parse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpdmError {
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// The GET_MEASUREMENTS request the verifier side (NVML) sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasurementRequest {
    /// SPDM version byte (0x11 = 1.1).
    pub version: u8,
    /// Param1: bit 0 set = signature requested.
    pub param1: u8,
    /// Param2: measurement operation (0xFF = all blocks).
    pub param2: u8,
    /// The requester's 32-byte nonce: what binds the report to a session.
    #[serde(with = "hex_bytes")]
    pub nonce: [u8; 32],
    /// SlotIDParam: which certificate slot signs.
    pub slot_id: u8,
}

/// One measurement block (DSP0274 1.1 Table 45 + DMTF measurement Table 46).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasurementBlock {
    /// Block index, 1-based in NVIDIA reports.
    pub index: u8,
    /// DMTFSpecMeasurementValueType (bit 7: raw bit stream instead of a digest).
    pub value_type: u8,
    /// The measurement (a SHA-384 digest on Hopper).
    #[serde(with = "hex_vec")]
    pub value: Vec<u8>,
}

/// One NVIDIA opaque-data record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpaqueField {
    /// Record type (see [`opaque_type`]).
    pub kind: u16,
    /// Raw value.
    #[serde(with = "hex_vec")]
    pub value: Vec<u8>,
}

/// A parsed report: request, response fields, and where the signed part ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationReport {
    pub request: MeasurementRequest,
    /// Response SPDM version byte.
    pub response_version: u8,
    /// Response Param2 (SlotIDParam in 1.1).
    pub response_param2: u8,
    pub blocks: Vec<MeasurementBlock>,
    /// The responder's nonce (not the binding one: that is the request's).
    pub response_nonce: [u8; 32],
    pub opaque: Vec<OpaqueField>,
    /// ECDSA P-384 r || s.
    pub signature: [u8; SIGNATURE_LEN],
    raw: Vec<u8>,
    signed_len: usize,
}

impl AttestationReport {
    /// Parse request || response. Rejects trailing bytes, unknown codes, non-DMTF
    /// blocks, duplicate indices and inconsistent lengths.
    pub fn parse(bytes: &[u8]) -> Result<Self, SpdmError> {
        check_len("report", 0, bytes.len() as u64, MAX_REPORT_BYTES)?;
        let mut r = Reader::new(bytes);
        let request = parse_request(&mut r)?;

        let at = r.offset();
        let response_version = r.u8("response.spdm_version")?;
        if response_version != request.version {
            return Err(ParseError::invalid(
                "response.spdm_version",
                at,
                format!(
                    "0x{response_version:02x} differs from the request's 0x{:02x}",
                    request.version
                ),
            )
            .into());
        }
        expect_byte(&mut r, "response.request_response_code", MEASUREMENTS)?;
        let _param1 = r.u8("response.param1")?;
        let at = r.offset();
        let response_param2 = r.u8("response.param2")?;
        if response_param2 & 0x0f != request.slot_id & 0x0f {
            return Err(ParseError::invalid(
                "response.param2",
                at,
                format!(
                    "slot id {} differs from the requested slot {}",
                    response_param2 & 0x0f,
                    request.slot_id & 0x0f
                ),
            )
            .into());
        }
        let number_of_blocks = r.u8("response.number_of_blocks")?;
        let at = r.offset();
        let len_bytes: [u8; 3] = r.array("response.measurement_record_length")?;
        let record_len = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], 0]);
        let record_len = check_len(
            "response.measurement_record_length",
            at,
            u64::from(record_len),
            MAX_RECORD_BYTES,
        )?;
        let mut record = r.sub(record_len, "response.measurement_record")?;
        let blocks = parse_blocks(&mut record, number_of_blocks)?;

        let response_nonce: [u8; 32] = r.array("response.nonce")?;
        let opaque_len = r.len_u16_le("response.opaque_length", MAX_OPAQUE_BYTES)?;
        let mut opaque_reader = r.sub(opaque_len, "response.opaque_data")?;
        let opaque = parse_opaque(&mut opaque_reader)?;

        let signed_len = r.position();
        let signature: [u8; SIGNATURE_LEN] = r.array("response.signature")?;
        if !r.is_empty() {
            return Err(ParseError::invalid(
                "response.signature",
                r.offset(),
                format!("{} trailing bytes after the signature", r.remaining()),
            )
            .into());
        }
        Ok(Self {
            request,
            response_version,
            response_param2,
            blocks,
            response_nonce,
            opaque,
            signature,
            raw: bytes.to_vec(),
            signed_len,
        })
    }

    /// The bytes the signature covers: request || response minus the signature.
    pub fn signed_bytes(&self) -> &[u8] {
        self.raw.get(..self.signed_len).unwrap_or(&[])
    }

    /// The whole report as parsed.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Verify the report signature with the device's leaf key.
    pub fn verify_signature(&self, key: &p384::ecdsa::VerifyingKey) -> bool {
        use p384::ecdsa::signature::Verifier;
        match p384::ecdsa::Signature::from_slice(&self.signature) {
            Ok(sig) => key.verify(self.signed_bytes(), &sig).is_ok(),
            Err(_) => false,
        }
    }

    /// The measurement block with SPDM index `index`.
    pub fn block(&self, index: u8) -> Option<&MeasurementBlock> {
        self.blocks.iter().find(|b| b.index == index)
    }

    /// The first opaque record of the given type.
    pub fn opaque_field(&self, kind: u16) -> Option<&[u8]> {
        self.opaque
            .iter()
            .find(|f| f.kind == kind)
            .map(|f| f.value.as_slice())
    }

    /// Driver version (opaque type 3), e.g. "550.90.07".
    pub fn driver_version(&self) -> Option<String> {
        self.opaque_field(opaque_type::DRIVER_VERSION).map(ascii)
    }

    /// VBIOS version (opaque type 6) in NVIDIA's "96.00.9F.00.01" notation.
    pub fn vbios_version(&self) -> Option<String> {
        self.opaque_field(opaque_type::VBIOS_VERSION)
            .and_then(format_vbios_version)
    }

    /// Project (opaque type 17), e.g. "1010".
    pub fn project(&self) -> Option<String> {
        self.opaque_field(opaque_type::PROJECT).map(ascii)
    }

    /// Project SKU (opaque type 18), e.g. "0200".
    pub fn project_sku(&self) -> Option<String> {
        self.opaque_field(opaque_type::PROJECT_SKU).map(ascii)
    }

    /// Chip SKU (opaque type 15), e.g. "882".
    pub fn chip_sku(&self) -> Option<String> {
        self.opaque_field(opaque_type::CHIP_SKU).map(ascii)
    }

    /// The firmware ID (opaque type 20): must equal the leaf certificate's FWID.
    pub fn fwid(&self) -> Option<&[u8]> {
        self.opaque_field(opaque_type::FWID)
    }
}

fn parse_request(r: &mut Reader<'_>) -> Result<MeasurementRequest, SpdmError> {
    let at = r.offset();
    let version = r.u8("request.spdm_version")?;
    if version < 0x11 {
        return Err(ParseError::invalid(
            "request.spdm_version",
            at,
            format!("0x{version:02x}: SPDM 1.1 or later required (nonce + slot id)"),
        )
        .into());
    }
    expect_byte(r, "request.request_response_code", GET_MEASUREMENTS)?;
    let at = r.offset();
    let param1 = r.u8("request.param1")?;
    if param1 & 0x01 == 0 {
        // Without the signature bit there is no nonce and nothing is signed.
        return Err(ParseError::invalid(
            "request.param1",
            at,
            "signature not requested (bit 0 clear): the report would be unsigned",
        )
        .into());
    }
    let param2 = r.u8("request.param2")?;
    let nonce = r.array("request.nonce")?;
    let slot_id = r.u8("request.slot_id")?;
    Ok(MeasurementRequest {
        version,
        param1,
        param2,
        nonce,
        slot_id,
    })
}

fn expect_byte(r: &mut Reader<'_>, field: &str, want: u8) -> Result<(), SpdmError> {
    let at = r.offset();
    let got = r.u8(field)?;
    if got != want {
        return Err(
            ParseError::invalid(field, at, format!("0x{got:02x}, expected 0x{want:02x}")).into(),
        );
    }
    Ok(())
}

fn parse_blocks(r: &mut Reader<'_>, count: u8) -> Result<Vec<MeasurementBlock>, SpdmError> {
    let mut blocks: Vec<MeasurementBlock> = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let at = r.offset();
        let index = r.u8("measurement_block.index")?;
        if blocks.iter().any(|b| b.index == index) {
            return Err(ParseError::invalid(
                "measurement_block.index",
                at,
                format!("duplicate index {index}"),
            )
            .into());
        }
        let spec_at = r.offset();
        let spec = r.u8("measurement_block.measurement_specification")?;
        if spec != 0x01 {
            return Err(ParseError::invalid(
                "measurement_block.measurement_specification",
                spec_at,
                format!("0x{spec:02x}: only DMTF (0x01) measurements are defined"),
            )
            .into());
        }
        let size = r.len_u16_le("measurement_block.measurement_size", usize::from(u16::MAX))?;
        let mut m = r.sub(size, "measurement_block.measurement")?;
        let value_type = m.u8("measurement_block.dmtf_value_type")?;
        let value_size =
            m.len_u16_le("measurement_block.dmtf_value_size", usize::from(u16::MAX))?;
        let value = m.take(value_size, "measurement_block.dmtf_value")?.to_vec();
        if !m.is_empty() {
            return Err(ParseError::invalid(
                "measurement_block.measurement_size",
                m.offset(),
                format!(
                    "{} bytes left over after the DMTF value in block {index}",
                    m.remaining()
                ),
            )
            .into());
        }
        blocks.push(MeasurementBlock {
            index,
            value_type,
            value,
        });
    }
    if !r.is_empty() {
        return Err(ParseError::invalid(
            "response.measurement_record",
            r.offset(),
            format!(
                "{} bytes left over after {count} blocks (record length disagrees)",
                r.remaining()
            ),
        )
        .into());
    }
    Ok(blocks)
}

fn parse_opaque(r: &mut Reader<'_>) -> Result<Vec<OpaqueField>, SpdmError> {
    let mut fields = Vec::new();
    while !r.is_empty() {
        let kind = r.u16_le("opaque_data.type")?;
        let len = r.len_u16_le("opaque_data.length", MAX_OPAQUE_BYTES)?;
        let value = r.take(len, "opaque_data.value")?.to_vec();
        fields.push(OpaqueField { kind, value });
    }
    Ok(fields)
}

/// ASCII value without the C string terminator NVIDIA includes.
fn ascii(v: &[u8]) -> String {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(v.get(..end).unwrap_or(&[])).into_owned()
}

/// NVIDIA prints the 8-byte little-endian VBIOS version as bytes 3.2.1.0.4
/// (nvtrust `format_vbios_version`: reverse, swap the halves, dot-join five bytes).
pub fn format_vbios_version(v: &[u8]) -> Option<String> {
    let b: [u8; 8] = v.try_into().ok()?;
    let [b0, b1, b2, b3, b4, ..] = b;
    Some(format!("{b3:02X}.{b2:02X}.{b1:02X}.{b0:02X}.{b4:02X}"))
}

pub(crate) mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}

pub(crate) mod hex_vec {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn minimal(blocks: &[(u8, &[u8])], opaque: &[u8]) -> Vec<u8> {
        let mut v = vec![0x11, 0xE0, 0x01, 0xFF];
        v.extend([7u8; 32]);
        v.push(0);
        let mut rec = Vec::new();
        for (i, val) in blocks {
            rec.push(*i);
            rec.push(1);
            rec.extend(((val.len() + 3) as u16).to_le_bytes());
            rec.push(1);
            rec.extend((val.len() as u16).to_le_bytes());
            rec.extend(*val);
        }
        v.extend([0x11, 0x60, 0, 0, blocks.len() as u8]);
        v.extend(&(rec.len() as u32).to_le_bytes()[..3]);
        v.extend(rec);
        v.extend([9u8; 32]);
        v.extend((opaque.len() as u16).to_le_bytes());
        v.extend(opaque);
        v.extend([0u8; 96]);
        v
    }

    #[test]
    fn parses_a_minimal_report() {
        let opaque = [3, 0, 4, 0, b'1', b'.', b'2', 0];
        let r = AttestationReport::parse(&minimal(&[(1, &[0xaa; 48])], &opaque)).unwrap();
        assert_eq!(r.request.nonce, [7; 32]);
        assert_eq!(r.blocks.len(), 1);
        assert_eq!(r.driver_version().as_deref(), Some("1.2"));
        assert_eq!(r.signed_bytes().len(), r.raw().len() - 96);
    }

    #[test]
    fn errors_name_field_and_offset() {
        let mut bytes = minimal(&[(1, &[0xaa; 48])], &[]);
        bytes[38] = 0x61; // response code
        let SpdmError::Parse(e) = AttestationReport::parse(&bytes).unwrap_err();
        assert_eq!(e.field, "response.request_response_code");
        assert_eq!(e.offset, 38);

        let bytes = minimal(&[(1, &[0xaa; 48]), (1, &[0xbb; 48])], &[]);
        let SpdmError::Parse(e) = AttestationReport::parse(&bytes).unwrap_err();
        assert_eq!(e.field, "measurement_block.index");
        assert_eq!(e.offset, 37 + 8 + 55);

        let mut bytes = minimal(&[(1, &[0xaa; 48])], &[]);
        bytes.push(0);
        let SpdmError::Parse(e) = AttestationReport::parse(&bytes).unwrap_err();
        assert!(e.to_string().contains("trailing"), "{e}");

        let bytes = minimal(&[(1, &[0xaa; 48])], &[3, 0, 9, 0, 1]);
        let SpdmError::Parse(e) = AttestationReport::parse(&bytes).unwrap_err();
        assert_eq!(e.field, "opaque_data.value");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = minimal(&[(1, &[0xaa; 48]), (2, &[0xbb; 48])], &[3, 0, 1, 0, b'x']);
        for n in 0..bytes.len() {
            assert!(AttestationReport::parse(&bytes[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn vbios_version_matches_nvidia_notation() {
        // 96.00.9F.00.01 as it appears in the real Hopper report.
        let v = [0x00, 0x9f, 0x00, 0x96, 0x01, 0x00, 0x00, 0x00];
        assert_eq!(format_vbios_version(&v).unwrap(), "96.00.9F.00.01");
        assert!(format_vbios_version(&v[..7]).is_none());
    }
}
