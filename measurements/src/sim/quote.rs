//! TDX quote v4 assembly (Intel TDX DCAP Quoting Library API, "Quote Format": header,
//! TD quote body, quote signature data; certification data type 6 = QE report
//! certification data, whose inner certification data is type 5 = PCK chain in PEM).
//! All integers are little-endian.

use sha2::{Digest as _, Sha256};

use super::der_util::{raw_public_key, sign_raw};
use super::{SimError, SimPki, TdFields, INTEL_QE_VENDOR_ID};

const QUOTE_VERSION: u16 = 4;
/// ECDSA-256-with-P-256 curve.
const ATTESTATION_KEY_TYPE: u16 = 2;
const TEE_TYPE_TDX: u32 = 0x81;
const CERT_DATA_PCK_CHAIN: u16 = 5;
const CERT_DATA_QE_REPORT: u16 = 6;

pub(super) fn build(pki: &SimPki, td: &TdFields) -> Result<Vec<u8>, SimError> {
    let mut quote = header(pki);
    quote.extend_from_slice(&td_report_body(td));
    // The attestation key signs header || body (dcap-qvl `Quote::signed_length`).
    let signature = sign_raw(&pki.attestation_key, &quote, "quote body")?;
    let ak_public = raw_public_key(&pki.attestation_key);

    let mut signature_data = Vec::with_capacity(4096);
    signature_data.extend_from_slice(&signature);
    signature_data.extend_from_slice(&ak_public);
    push_cert_data(
        &mut signature_data,
        CERT_DATA_QE_REPORT,
        &qe_report_certification_data(pki, &ak_public)?,
        "QE report certification data",
    )?;
    push_len_u32(&mut quote, signature_data.len(), "quote signature data")?;
    quote.extend_from_slice(&signature_data);
    Ok(quote)
}

/// 48-byte header. The two reserved u16 after the TEE type are zero in v4 quotes from
/// Intel's TD QE; user data is the QE ID followed by 4 zero bytes.
fn header(pki: &SimPki) -> Vec<u8> {
    let mut h = Vec::with_capacity(48);
    h.extend_from_slice(&QUOTE_VERSION.to_le_bytes());
    h.extend_from_slice(&ATTESTATION_KEY_TYPE.to_le_bytes());
    h.extend_from_slice(&TEE_TYPE_TDX.to_le_bytes());
    h.extend_from_slice(&[0u8; 4]);
    h.extend_from_slice(&INTEL_QE_VENDOR_ID);
    h.extend_from_slice(&pki.platform.qe_id);
    h.extend_from_slice(&[0u8; 4]);
    h
}

/// TD quote body for TDX 1.0 (584 bytes), the TDREPORT fields in their quote order.
fn td_report_body(td: &TdFields) -> Vec<u8> {
    let mut b = Vec::with_capacity(584);
    b.extend_from_slice(&td.tee_tcb_svn);
    b.extend_from_slice(td.mr_seam.as_bytes());
    b.extend_from_slice(td.mr_signer_seam.as_bytes());
    b.extend_from_slice(&td.seam_attributes.to_le_bytes());
    b.extend_from_slice(&td.td_attributes.to_le_bytes());
    b.extend_from_slice(&td.xfam.to_le_bytes());
    b.extend_from_slice(td.mr_td.as_bytes());
    b.extend_from_slice(td.mr_config_id.as_bytes());
    b.extend_from_slice(td.mr_owner.as_bytes());
    b.extend_from_slice(td.mr_owner_config.as_bytes());
    for rtmr in &td.rtmr {
        b.extend_from_slice(rtmr.as_bytes());
    }
    b.extend_from_slice(&td.report_data);
    b
}

/// QE report certification data: the QE's SGX report (binding the attestation key by
/// REPORTDATA = SHA-256(AK || QE auth data) || 32 zero bytes), its signature by the PCK
/// key, the QE auth data and the PEM PCK chain as type 5 certification data.
fn qe_report_certification_data(pki: &SimPki, ak_public: &[u8]) -> Result<Vec<u8>, SimError> {
    let qe = &pki.platform.qe;
    let binding: [u8; 32] = Sha256::new()
        .chain_update(ak_public)
        .chain_update(qe.auth_data)
        .finalize()
        .into();
    let report = qe_report(pki, &binding);
    let report_signature = sign_raw(&pki.pck_key, &report, "QE report")?;

    let mut d = Vec::with_capacity(pki.pck_chain_pem.len().saturating_add(512));
    d.extend_from_slice(&report);
    d.extend_from_slice(&report_signature);
    let auth_len = u16::try_from(qe.auth_data.len()).map_err(|_| SimError::TooLong {
        field: "QE auth data",
        len: qe.auth_data.len(),
    })?;
    d.extend_from_slice(&auth_len.to_le_bytes());
    d.extend_from_slice(&qe.auth_data);
    push_cert_data(
        &mut d,
        CERT_DATA_PCK_CHAIN,
        pki.pck_chain_pem.as_bytes(),
        "PCK certificate chain",
    )?;
    Ok(d)
}

/// SGX REPORTBODY (384 bytes; Intel SGX SDK `sgx_report_body_t`).
fn qe_report(pki: &SimPki, binding: &[u8; 32]) -> Vec<u8> {
    let qe = &pki.platform.qe;
    let mut r = Vec::with_capacity(384);
    r.extend_from_slice(&pki.platform.cpu_svn);
    r.extend_from_slice(&qe.miscselect.to_le_bytes());
    r.extend_from_slice(&[0u8; 28]);
    r.extend_from_slice(&qe.attributes);
    r.extend_from_slice(&qe.mrenclave);
    r.extend_from_slice(&[0u8; 32]);
    r.extend_from_slice(&qe.mrsigner);
    r.extend_from_slice(&[0u8; 96]);
    r.extend_from_slice(&qe.isvprodid.to_le_bytes());
    r.extend_from_slice(&qe.isvsvn.to_le_bytes());
    r.extend_from_slice(&[0u8; 60]);
    r.extend_from_slice(binding);
    r.extend_from_slice(&[0u8; 32]);
    r
}

fn push_len_u32(out: &mut Vec<u8>, len: usize, field: &'static str) -> Result<(), SimError> {
    let len = u32::try_from(len).map_err(|_| SimError::TooLong { field, len })?;
    out.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Certification data: type (u16), size (u32), body.
fn push_cert_data(
    out: &mut Vec<u8>,
    cert_type: u16,
    body: &[u8],
    field: &'static str,
) -> Result<(), SimError> {
    out.extend_from_slice(&cert_type.to_le_bytes());
    push_len_u32(out, body.len(), field)?;
    out.extend_from_slice(body);
    Ok(())
}
