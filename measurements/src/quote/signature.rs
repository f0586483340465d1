//! Signature data of a v4/v5 quote (Intel TDX DCAP Quoting Library API, "ECDSA
//! Quote Signature Data Structure"): the ECDSA signature over header and body, the
//! attestation key, and certification data of type 6 holding the QE report, its
//! signature (by the PCK key), the QE authentication data and the PCK chain.
#![deny(clippy::arithmetic_side_effects)]

use serde::Serialize;

use super::{
    ser_hex, QuoteError, CERT_TYPE_PCK_CHAIN, CERT_TYPE_QE_REPORT, ENCLAVE_REPORT_LEN,
    MAX_QE_AUTH_DATA, MAX_QUOTE_BYTES,
};
use crate::codec::{ParseError, Reader};

/// The quoting enclave's own SGX report, signed by the PCK key; its REPORTDATA
/// binds the attestation key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QeReport {
    #[serde(serialize_with = "ser_hex")]
    pub cpu_svn: [u8; 16],
    pub misc_select: u32,
    #[serde(serialize_with = "ser_hex")]
    pub attributes: [u8; 16],
    #[serde(serialize_with = "ser_hex")]
    pub mr_enclave: [u8; 32],
    #[serde(serialize_with = "ser_hex")]
    pub mr_signer: [u8; 32],
    pub isv_prod_id: u16,
    pub isv_svn: u16,
    #[serde(serialize_with = "ser_hex")]
    pub report_data: [u8; 64],
}

/// Signature data: everything after the signed header and body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureData {
    /// Value of the signature-data length field.
    pub len: u32,
    /// ECDSA P-256 signature (r || s) over header and body, by the attestation key.
    #[serde(serialize_with = "ser_hex")]
    pub signature: [u8; 64],
    /// Attestation public key (x || y).
    #[serde(serialize_with = "ser_hex")]
    pub attestation_key: [u8; 64],
    /// Outer certification data type (6 = QE report certification data).
    pub certification_data_type: u16,
    pub qe_report: QeReport,
    #[serde(serialize_with = "ser_hex")]
    pub qe_report_signature: [u8; 64],
    #[serde(serialize_with = "ser_hex")]
    pub qe_auth_data: Vec<u8>,
    /// Inner certification data type (5 = PCK certificate chain).
    pub pck_cert_data_type: u16,
    /// Inner certification data (the PEM chain for type 5).
    #[serde(skip)]
    pub pck_cert_data: Vec<u8>,
    /// Byte offset of the inner certification data in the quote.
    pub pck_cert_data_offset: usize,
    /// Certificates in the PEM chain (type 5), counted by their BEGIN lines.
    pub pck_cert_count: usize,
}

fn parse_qe_report(r: &mut Reader<'_>) -> Result<QeReport, ParseError> {
    // SGX REPORT_BODY (Intel SDM vol. 3D, "EREPORT"): reserved gaps are skipped.
    let cpu_svn = r.array("qe_report.cpu_svn")?;
    let misc_select = r.u32_le("qe_report.misc_select")?;
    r.skip(28, "qe_report.reserved1")?;
    let attributes = r.array("qe_report.attributes")?;
    let mr_enclave = r.array("qe_report.mr_enclave")?;
    r.skip(32, "qe_report.reserved2")?;
    let mr_signer = r.array("qe_report.mr_signer")?;
    r.skip(96, "qe_report.reserved3")?;
    let isv_prod_id = r.u16_le("qe_report.isv_prod_id")?;
    let isv_svn = r.u16_le("qe_report.isv_svn")?;
    r.skip(60, "qe_report.reserved4")?;
    let report_data = r.array("qe_report.report_data")?;
    Ok(QeReport {
        cpu_svn,
        misc_select,
        attributes,
        mr_enclave,
        mr_signer,
        isv_prod_id,
        isv_svn,
        report_data,
    })
}

/// Fail when a length-delimited structure has bytes its fields did not account for:
/// such bytes are unsigned by the QE and have no meaning.
fn expect_consumed(r: &Reader<'_>, field: &str) -> Result<(), ParseError> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(ParseError::invalid(
            field,
            r.offset(),
            format!("{} unparsed bytes at the end", r.remaining()),
        ))
    }
}

pub(super) fn parse(r: &mut Reader<'_>) -> Result<SignatureData, QuoteError> {
    let len_at = r.offset();
    let len = r.u32_le("quote.signature_data_len")?;
    let n = crate::codec::check_len(
        "quote.signature_data_len",
        len_at,
        u64::from(len),
        MAX_QUOTE_BYTES,
    )?;
    let mut s = r.sub(n, "quote.signature_data")?;
    let signature = s.array("signature_data.signature")?;
    let attestation_key = s.array("signature_data.attestation_key")?;

    let type_at = s.offset();
    let certification_data_type = s.u16_le("signature_data.certification_data.type")?;
    if certification_data_type != CERT_TYPE_QE_REPORT {
        return Err(ParseError::invalid(
            "signature_data.certification_data.type",
            type_at,
            format!("type {certification_data_type}, expected 6 (QE report certification data)"),
        )
        .into());
    }
    let outer_len = s.len_u32_le("signature_data.certification_data.size", MAX_QUOTE_BYTES)?;
    let mut c = s.sub(outer_len, "signature_data.certification_data")?;
    expect_consumed(&s, "quote.signature_data")?;

    let qe_report = parse_qe_report(&mut c.sub(ENCLAVE_REPORT_LEN, "qe_report")?)?;
    let qe_report_signature = c.array("qe_report_signature")?;
    let auth_len = c.len_u16_le("qe_auth_data.size", MAX_QE_AUTH_DATA)?;
    let qe_auth_data = c.take(auth_len, "qe_auth_data")?.to_vec();
    let pck_cert_data_type = c.u16_le("pck_cert_data.type")?;
    let pck_len = c.len_u32_le("pck_cert_data.size", MAX_QUOTE_BYTES)?;
    let pck_cert_data_offset = c.offset();
    let pck_cert_data = c.take(pck_len, "pck_cert_data")?.to_vec();
    expect_consumed(&c, "signature_data.certification_data")?;

    let pck_cert_count = if pck_cert_data_type == CERT_TYPE_PCK_CHAIN {
        count_pem_certs(&pck_cert_data)
    } else {
        0
    };
    Ok(SignatureData {
        len,
        signature,
        attestation_key,
        certification_data_type,
        qe_report,
        qe_report_signature,
        qe_auth_data,
        pck_cert_data_type,
        pck_cert_data,
        pck_cert_data_offset,
        pck_cert_count,
    })
}

fn count_pem_certs(data: &[u8]) -> usize {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    data.windows(BEGIN.len()).filter(|w| *w == BEGIN).count()
}
