//! Intel TDX quotes, versions 4 and 5: a typed parser of our own.
//!
//! Layouts follow the Intel TDX DCAP Quoting Library API, appendix "Quote Format"
//! (v4: header, TD report 1.0, signature data; v5: header, body descriptor
//! `type u16, size u32`, TD report 1.0 (type 2) or 1.5 (type 3), signature data),
//! and Intel's `sgx_quote_4.h` / `sgx_quote_5.h`. All integers are little-endian.
//!
//! This parser decides nothing about trust: it names fields for `inspect`, for the
//! policy and for error messages. Signatures, certificates and TCB levels are checked
//! by [`crate::verify`] (dcap-qvl) over the same bytes.
#![deny(clippy::arithmetic_side_effects)]

mod attributes;
mod signature;
mod text;

use serde::{Serialize, Serializer};

use crate::codec::{ParseError, ParseErrorKind, Reader};
use crate::digest::Digest48;

pub use attributes::{TdAttributes, Xfam, TD_ATTRIBUTES_RESERVED_MASK, TD_ATTRIBUTES_TUD_MASK};
pub use signature::{QeReport, SignatureData};
pub use text::{looks_like_hex, quote_bytes};

/// Largest quote we read. Real TDX quotes are about 5 KiB, nearly all of it the PCK
/// certificate chain; 128 KiB leaves room for longer chains and nothing for abuse.
pub const MAX_QUOTE_BYTES: usize = 128 * 1024;
/// QE authentication data is 32 bytes in every quote Intel's QE produces.
const MAX_QE_AUTH_DATA: usize = 4096;

pub const HEADER_LEN: usize = 48;
/// v5 body descriptor: type (u16) and size (u32).
pub const BODY_DESCRIPTOR_LEN: usize = 6;
pub const TD_REPORT10_LEN: usize = 584;
pub const TD_REPORT15_LEN: usize = 648;
/// SGX report body (the QE's own report inside the signature data).
pub const ENCLAVE_REPORT_LEN: usize = 384;

/// `tee_type` of a TDX quote (an SGX quote has 0).
pub const TEE_TYPE_TDX: u32 = 0x81;
/// Attestation key type 2: ECDSA-256 with P-256, the only one Intel's TD QE uses.
pub const ATTESTATION_KEY_ECDSA_P256: u16 = 2;
/// QE vendor id of Intel's quoting enclave.
pub const INTEL_QE_VENDOR_ID: [u8; 16] = [
    0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
];
/// Certification data type 5: PCK leaf, PCK CA and root certificates, PEM.
pub const CERT_TYPE_PCK_CHAIN: u16 = 5;
/// Certification data type 6: QE report certification data (QE report, its
/// signature, QE authentication data and a nested certification data).
pub const CERT_TYPE_QE_REPORT: u16 = 6;

/// Why a quote could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    /// A field is truncated, oversized or holds a value the format does not allow.
    #[error("quote: {0}")]
    Malformed(ParseError),
    /// Header version other than 4 or 5 (version 3 is SGX-only).
    #[error("quote: quote.header.version at byte offset 0: unsupported quote version {0} (expected 4 or 5)")]
    UnsupportedVersion(u16),
    /// The quote is not from a TDX TD (e.g. an SGX enclave quote).
    #[error("quote: quote.header.tee_type at byte offset 4: TEE type {0:#x} is not TDX (0x81)")]
    NotTdx(u32),
    /// A v5 body type other than TD report 1.0 (2) or 1.5 (3).
    #[error("quote: quote.body.type at byte offset 48: unsupported body type {0} (expected 2 = TD report 1.0 or 3 = TD report 1.5)")]
    UnsupportedBodyType(u16),
    /// Hex text that does not decode.
    #[error("quote hex text at byte offset {offset}: {reason}")]
    Hex { offset: usize, reason: String },
    /// More bytes than [`MAX_QUOTE_BYTES`].
    #[error("quote: {len} bytes exceed the limit of {max}")]
    TooLarge { len: usize, max: usize },
}

impl QuoteError {
    /// Byte offset the error points at (in the hex text for [`QuoteError::Hex`]).
    pub fn offset(&self) -> usize {
        match self {
            QuoteError::Malformed(e) => e.offset,
            QuoteError::UnsupportedVersion(_) => 0,
            QuoteError::NotTdx(_) => 4,
            QuoteError::UnsupportedBodyType(_) => HEADER_LEN,
            QuoteError::Hex { offset, .. } => *offset,
            QuoteError::TooLarge { max, .. } => *max,
        }
    }
}

impl From<ParseError> for QuoteError {
    fn from(e: ParseError) -> Self {
        QuoteError::Malformed(e)
    }
}

pub(crate) fn ser_hex<S: Serializer, T: AsRef<[u8]>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v.as_ref()))
}

/// Quote header (48 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    pub version: u16,
    /// 2 = ECDSA-256-with-P-256 (the only supported value).
    pub attestation_key_type: u16,
    /// 0x81 = TDX.
    pub tee_type: u32,
    /// Bytes 8..12: reserved in v4/v5 (QE SVN and PCE SVN in the SGX v3 header).
    #[serde(serialize_with = "ser_hex")]
    pub reserved: [u8; 4],
    #[serde(serialize_with = "ser_hex")]
    pub qe_vendor_id: [u8; 16],
    /// Set by the QE; its first 16 bytes are the platform's QE id.
    #[serde(serialize_with = "ser_hex")]
    pub user_data: [u8; 20],
}

impl Header {
    pub fn is_intel_qe(&self) -> bool {
        self.qe_vendor_id == INTEL_QE_VENDOR_ID
    }
}

/// Which TD report the quote carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BodyKind {
    /// TD report 1.0 (quote v4, or v5 body type 2), 584 bytes.
    #[serde(rename = "td_report_1.0")]
    TdReport10,
    /// TD report 1.5 (quote v5 body type 3), 648 bytes.
    #[serde(rename = "td_report_1.5")]
    TdReport15,
}

/// The TD report: what the TDX module attests about the TD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdReport {
    /// TCB SVN of the TDX module and platform at TD launch.
    #[serde(serialize_with = "ser_hex")]
    pub tee_tcb_svn: [u8; 16],
    /// Measurement of the TDX module.
    pub mr_seam: Digest48,
    /// Signer of the TDX module (zero for Intel's).
    pub mr_signer_seam: Digest48,
    pub seam_attributes: u64,
    pub td_attributes: TdAttributes,
    pub xfam: Xfam,
    /// Build-time measurement of the TD's initial memory (firmware).
    pub mrtd: Digest48,
    pub mr_config_id: Digest48,
    pub mr_owner: Digest48,
    pub mr_owner_config: Digest48,
    pub rtmr0: Digest48,
    pub rtmr1: Digest48,
    pub rtmr2: Digest48,
    pub rtmr3: Digest48,
    /// 64 bytes the TD chose; for COCOON, the SHA-512 of the claims (see `claims`).
    #[serde(serialize_with = "ser_hex")]
    pub report_data: [u8; 64],
    /// TD report 1.5 only: the current TCB SVN (after a TD-preserving update).
    #[serde(
        serialize_with = "ser_opt_hex",
        skip_serializing_if = "Option::is_none"
    )]
    pub tee_tcb_svn2: Option<[u8; 16]>,
    /// TD report 1.5 only: hash of the service TDs bound to this TD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mr_service_td: Option<Digest48>,
}

fn ser_opt_hex<S: Serializer>(v: &Option<[u8; 16]>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&hex::encode(b)),
        None => s.serialize_none(),
    }
}

impl TdReport {
    /// RTMR `i` (0..=3).
    pub fn rtmr(&self, i: usize) -> Option<&Digest48> {
        match i {
            0 => Some(&self.rtmr0),
            1 => Some(&self.rtmr1),
            2 => Some(&self.rtmr2),
            3 => Some(&self.rtmr3),
            _ => None,
        }
    }
}

/// A parsed TDX quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    pub header: Header,
    pub body_kind: BodyKind,
    /// v5 body type (2 or 3); `None` for v4, whose body type is implied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_type: Option<u16>,
    /// Byte offset of the TD report in the quote.
    pub body_offset: usize,
    pub td_report: TdReport,
    /// Bytes covered by the quote signature: header, v5 descriptor, body.
    pub signed_len: usize,
    pub signature_data: SignatureData,
    /// Zero bytes after the signature data (some drivers pad their buffers).
    pub trailing_zero_bytes: usize,
}

impl Quote {
    /// Parse a quote from its raw bytes.
    pub fn parse(bytes: &[u8]) -> Result<Quote, QuoteError> {
        if bytes.len() > MAX_QUOTE_BYTES {
            return Err(QuoteError::TooLarge {
                len: bytes.len(),
                max: MAX_QUOTE_BYTES,
            });
        }
        let mut r = Reader::new(bytes);
        let header = parse_header(&mut r)?;

        let (body_kind, body_type) = if header.version == 5 {
            let t = r.u16_le("quote.body.type")?;
            let kind = match t {
                2 => BodyKind::TdReport10,
                3 => BodyKind::TdReport15,
                other => return Err(QuoteError::UnsupportedBodyType(other)),
            };
            let size_at = r.offset();
            let size = r.u32_le("quote.body.size")?;
            let expected = match kind {
                BodyKind::TdReport10 => TD_REPORT10_LEN,
                BodyKind::TdReport15 => TD_REPORT15_LEN,
            };
            if usize::try_from(size).ok() != Some(expected) {
                return Err(ParseError::invalid(
                    "quote.body.size",
                    size_at,
                    format!("body type {t} is {expected} bytes, the descriptor says {size}"),
                )
                .into());
            }
            (kind, Some(t))
        } else {
            (BodyKind::TdReport10, None)
        };

        let body_offset = r.offset();
        let td_report = parse_td_report(&mut r, body_kind)?;
        let signed_len = r.offset();

        let signature_data = signature::parse(&mut r)?;

        let tail_at = r.offset();
        let tail = r.rest();
        if let Some(pos) = tail.iter().position(|&b| b != 0) {
            return Err(ParseError::invalid(
                "quote.trailing",
                tail_at.saturating_add(pos),
                format!(
                    "{} bytes follow the signature data and are not zero padding",
                    tail.len()
                ),
            )
            .into());
        }

        Ok(Quote {
            header,
            body_kind,
            body_type,
            body_offset,
            td_report,
            signed_len,
            signature_data,
            trailing_zero_bytes: tail.len(),
        })
    }

    /// Parse the content of a quote file: raw bytes or hex text (detected).
    /// Returns the raw quote bytes with the parsed quote.
    pub fn parse_file_content(content: &[u8]) -> Result<(Vec<u8>, Quote), QuoteError> {
        let raw = quote_bytes(content)?.into_owned();
        let q = Quote::parse(&raw)?;
        Ok((raw, q))
    }

    /// The PEM PCK certificate chain, when the quote carries one (type 5).
    pub fn pck_chain_pem(&self) -> Option<&str> {
        if self.signature_data.pck_cert_data_type != CERT_TYPE_PCK_CHAIN {
            return None;
        }
        std::str::from_utf8(&self.signature_data.pck_cert_data).ok()
    }
}

fn parse_header(r: &mut Reader<'_>) -> Result<Header, QuoteError> {
    let version = r.u16_le("quote.header.version")?;
    if version != 4 && version != 5 {
        return Err(QuoteError::UnsupportedVersion(version));
    }
    let key_at = r.offset();
    let attestation_key_type = r.u16_le("quote.header.attestation_key_type")?;
    let tee_type = r.u32_le("quote.header.tee_type")?;
    if tee_type != TEE_TYPE_TDX {
        return Err(QuoteError::NotTdx(tee_type));
    }
    if attestation_key_type != ATTESTATION_KEY_ECDSA_P256 {
        return Err(ParseError::invalid(
            "quote.header.attestation_key_type",
            key_at,
            format!("attestation key type {attestation_key_type} is not 2 (ECDSA-256 with P-256)"),
        )
        .into());
    }
    Ok(Header {
        version,
        attestation_key_type,
        tee_type,
        reserved: r.array("quote.header.reserved")?,
        qe_vendor_id: r.array("quote.header.qe_vendor_id")?,
        user_data: r.array("quote.header.user_data")?,
    })
}

fn d48(r: &mut Reader<'_>, field: &str) -> Result<Digest48, ParseError> {
    Ok(Digest48(r.array(field)?))
}

fn parse_td_report(r: &mut Reader<'_>, kind: BodyKind) -> Result<TdReport, QuoteError> {
    let tee_tcb_svn = r.array("td_report.tee_tcb_svn")?;
    let mr_seam = d48(r, "td_report.mr_seam")?;
    let mr_signer_seam = d48(r, "td_report.mr_signer_seam")?;
    let seam_attributes = r.u64_le("td_report.seam_attributes")?;
    let td_attributes = TdAttributes(r.u64_le("td_report.td_attributes")?);
    let xfam = Xfam(r.u64_le("td_report.xfam")?);
    let mrtd = d48(r, "td_report.mrtd")?;
    let mr_config_id = d48(r, "td_report.mr_config_id")?;
    let mr_owner = d48(r, "td_report.mr_owner")?;
    let mr_owner_config = d48(r, "td_report.mr_owner_config")?;
    let rtmr0 = d48(r, "td_report.rtmr0")?;
    let rtmr1 = d48(r, "td_report.rtmr1")?;
    let rtmr2 = d48(r, "td_report.rtmr2")?;
    let rtmr3 = d48(r, "td_report.rtmr3")?;
    let report_data = r.array("td_report.report_data")?;
    let (tee_tcb_svn2, mr_service_td) = match kind {
        BodyKind::TdReport10 => (None, None),
        BodyKind::TdReport15 => (
            Some(r.array("td_report.tee_tcb_svn2")?),
            Some(d48(r, "td_report.mr_service_td")?),
        ),
    };
    Ok(TdReport {
        tee_tcb_svn,
        mr_seam,
        mr_signer_seam,
        seam_attributes,
        td_attributes,
        xfam,
        mrtd,
        mr_config_id,
        mr_owner,
        mr_owner_config,
        rtmr0,
        rtmr1,
        rtmr2,
        rtmr3,
        report_data,
        tee_tcb_svn2,
        mr_service_td,
    })
}

/// True when `e` says the input ended early (for callers that distinguish a
/// truncated download from a corrupt one).
pub fn is_truncation(e: &QuoteError) -> bool {
    matches!(
        e,
        QuoteError::Malformed(ParseError {
            kind: ParseErrorKind::Truncated { .. },
            ..
        })
    )
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
pub(crate) mod tests {
    use super::*;

    /// A minimal v4 quote: header, zero TD report, signature data with an empty
    /// QE auth data and an empty PCK chain.
    pub(crate) fn synthetic_v4() -> Vec<u8> {
        let mut q = Vec::new();
        q.extend_from_slice(&4u16.to_le_bytes());
        q.extend_from_slice(&2u16.to_le_bytes());
        q.extend_from_slice(&0x81u32.to_le_bytes());
        q.extend_from_slice(&[0; 4]);
        q.extend_from_slice(&INTEL_QE_VENDOR_ID);
        q.extend_from_slice(&[0; 20]);
        let mut report = vec![0u8; TD_REPORT10_LEN];
        report[120] = 0x01; // DEBUG
        report[136] = 0xAA; // first MRTD byte
        q.extend_from_slice(&report);
        let mut cert = Vec::new();
        cert.extend_from_slice(&[0; ENCLAVE_REPORT_LEN]);
        cert.extend_from_slice(&[0; 64]);
        cert.extend_from_slice(&0u16.to_le_bytes());
        cert.extend_from_slice(&5u16.to_le_bytes());
        cert.extend_from_slice(&0u32.to_le_bytes());
        let mut sig = Vec::new();
        sig.extend_from_slice(&[0; 128]);
        sig.extend_from_slice(&6u16.to_le_bytes());
        sig.extend_from_slice(&(cert.len() as u32).to_le_bytes());
        sig.extend_from_slice(&cert);
        q.extend_from_slice(&(sig.len() as u32).to_le_bytes());
        q.extend_from_slice(&sig);
        q
    }

    #[test]
    fn parses_synthetic_quote() {
        let q = Quote::parse(&synthetic_v4()).unwrap();
        assert_eq!(q.header.version, 4);
        assert!(q.td_report.td_attributes.debug());
        assert_eq!(q.td_report.mrtd.0[0], 0xAA);
        assert_eq!(q.signed_len, HEADER_LEN + TD_REPORT10_LEN);
        assert_eq!(q.body_offset, HEADER_LEN);
    }

    #[test]
    fn every_truncation_is_an_error_with_offset() {
        let full = synthetic_v4();
        for cut in 0..full.len() {
            let e = Quote::parse(&full[..cut]).unwrap_err();
            assert!(e.offset() <= cut, "cut {cut}: {e}");
        }
    }

    #[test]
    fn trailing_bytes() {
        let mut q = synthetic_v4();
        q.extend_from_slice(&[0; 16]);
        assert_eq!(Quote::parse(&q).unwrap().trailing_zero_bytes, 16);
        let at = q.len();
        q.push(1);
        let e = Quote::parse(&q).unwrap_err();
        assert_eq!(e.offset(), at);
    }

    #[test]
    fn header_checks() {
        let mut q = synthetic_v4();
        q[0] = 3;
        assert_eq!(
            Quote::parse(&q).unwrap_err(),
            QuoteError::UnsupportedVersion(3)
        );
        let mut q = synthetic_v4();
        q[4] = 0;
        assert_eq!(Quote::parse(&q).unwrap_err(), QuoteError::NotTdx(0));
        let mut q = synthetic_v4();
        q[2] = 3;
        assert_eq!(Quote::parse(&q).unwrap_err().offset(), 2);
    }
}
