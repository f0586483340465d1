//! TCB info and QE identity collateral, signed like Intel's PCS signs them.
//!
//! Intel PCS API v4 ("Get TDX TCB Information", "Get TD QE Identity") returns
//! `{"tcbInfo": {...}, "signature": "<hex r||s>"}`; the signature is ECDSA-P256-SHA256
//! by the TCB signing key over the exact bytes of the inner object as served. The
//! collateral keeps those bytes verbatim (`tcb_info` / `qe_identity` strings), so we
//! serialise once and sign that string. The JSON is built from dcap-qvl's own serde
//! types, so its schema is by construction what the verifier parses.

use dcap_qvl::qe_identity::{QeIdentity, QeTcb, QeTcbLevel};
use dcap_qvl::tcb_info::{
    Tcb, TcbComponents, TcbInfo, TcbLevel, TcbStatus, TdxModule, TdxModuleIdentity, TdxModuleTcb,
    TdxModuleTcbLevel,
};
use dcap_qvl::QuoteCollateralV3;

use super::der_util::{rfc3339, sign_raw};
use super::x509::{Certs, Keys};
use super::{SimConfig, SimError};

/// Advisory named by the OutOfDate levels, recognisably not one of Intel's.
const SIM_ADVISORY: &str = "SIM-SA-00001";
/// One year: how far before `not_before` the OutOfDate levels are dated.
const OUT_OF_DATE_AGE_SECS: u64 = 365 * 24 * 3600;
const QE_ATTRIBUTES_MASK: [u8; 16] = [
    0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0,
];

pub(super) fn build(
    config: &SimConfig,
    keys: &Keys,
    certs: &Certs,
) -> Result<QuoteCollateralV3, SimError> {
    let tcb_info = to_json(&tcb_info(config)?, "TCB info")?;
    let qe_identity = to_json(&qe_identity(config)?, "QE identity")?;
    let tcb_info_signature = sign_raw(&keys.tcb_signer, tcb_info.as_bytes(), "TCB info")?;
    let qe_identity_signature = sign_raw(&keys.tcb_signer, qe_identity.as_bytes(), "QE identity")?;
    let tcb_chain = certs.tcb_chain_pem();
    Ok(QuoteCollateralV3 {
        pck_crl_issuer_chain: certs.pck_crl_chain_pem(),
        root_ca_crl: certs.root_ca_crl.clone(),
        pck_crl: certs.pck_crl.clone(),
        tcb_info_issuer_chain: tcb_chain.clone(),
        tcb_info,
        tcb_info_signature,
        qe_identity_issuer_chain: tcb_chain,
        qe_identity,
        qe_identity_signature,
        pck_certificate_chain: None,
    })
}

fn to_json<T: serde::Serialize>(value: &T, what: &'static str) -> Result<String, SimError> {
    serde_json::to_string(value).map_err(|source| SimError::Json { what, source })
}

fn components(svns: &[u8; 16]) -> Vec<TcbComponents> {
    svns.iter().map(|&svn| TcbComponents { svn }).collect()
}

/// TDX TCB info (version 3) with two levels: the platform's own TCB rated UpToDate, and an
/// all-zero level rated OutOfDate, so a quote below the platform's TEE_TCB_SVN still
/// matches a level and is reported OutOfDate rather than failing to match. When the
/// TDX module version (TEE_TCB_SVN[1]) is non-zero, a `TDX_<version>` module identity
/// rates module ISVSVN (TEE_TCB_SVN[0]) the same way, as dcap-qvl requires.
fn tcb_info(config: &SimConfig) -> Result<TcbInfo, SimError> {
    let p = &config.platform;
    let current = rfc3339(config.not_before)?;
    let old = rfc3339(config.not_before.saturating_sub(OUT_OF_DATE_AGE_SECS))?;
    let mrsigner = hex::encode_upper(p.tdx_module_mrsigner);
    let no_attributes = "0000000000000000".to_string();
    let full_mask = "FFFFFFFFFFFFFFFF".to_string();
    let module_version = p.tee_tcb_svn.get(1).copied().unwrap_or(0);
    let module_isvsvn = p.tee_tcb_svn.first().copied().unwrap_or(0);
    let tdx_module_identities = if module_version == 0 {
        Vec::new()
    } else {
        vec![TdxModuleIdentity {
            id: format!("TDX_{module_version:02X}"),
            mrsigner: mrsigner.clone(),
            attributes: no_attributes.clone(),
            attributes_mask: full_mask.clone(),
            tcb_levels: vec![
                TdxModuleTcbLevel {
                    tcb: TdxModuleTcb {
                        isvsvn: module_isvsvn,
                    },
                    tcb_date: current.clone(),
                    tcb_status: TcbStatus::UpToDate,
                    advisory_ids: Vec::new(),
                },
                TdxModuleTcbLevel {
                    tcb: TdxModuleTcb { isvsvn: 0 },
                    tcb_date: old.clone(),
                    tcb_status: TcbStatus::OutOfDate,
                    advisory_ids: vec![SIM_ADVISORY.to_string()],
                },
            ],
        }]
    };
    Ok(TcbInfo {
        id: "TDX".to_string(),
        version: 3,
        issue_date: rfc3339(config.not_before)?,
        next_update: rfc3339(config.not_after)?,
        fmspc: hex::encode_upper(p.fmspc),
        pce_id: hex::encode_upper(p.pce_id),
        tcb_type: 0,
        tcb_evaluation_data_number: config.tcb_evaluation_data_number,
        tcb_levels: vec![
            TcbLevel {
                tcb: Tcb {
                    sgx_components: components(&p.cpu_svn),
                    tdx_components: components(&p.tee_tcb_svn),
                    pce_svn: p.pce_svn,
                },
                tcb_date: current,
                tcb_status: TcbStatus::UpToDate,
                advisory_ids: Vec::new(),
            },
            TcbLevel {
                tcb: Tcb {
                    sgx_components: components(&[0; 16]),
                    tdx_components: components(&[0; 16]),
                    pce_svn: 0,
                },
                tcb_date: old,
                tcb_status: TcbStatus::OutOfDate,
                advisory_ids: vec![SIM_ADVISORY.to_string()],
            },
        ],
        tdx_module: Some(TdxModule {
            mrsigner,
            attributes: no_attributes,
            attributes_mask: full_mask,
        }),
        tdx_module_identities,
    })
}

/// TD_QE identity (version 2). dcap-qvl reads MISCSELECT as little-endian bytes; the
/// masks are Intel's: all of MISCSELECT, all attribute flags except PROVISIONKEY (bit 2,
/// which Intel's QE may or may not hold), none of XFRM.
fn qe_identity(config: &SimConfig) -> Result<QeIdentity, SimError> {
    let qe = &config.platform.qe;
    Ok(QeIdentity {
        id: "TD_QE".to_string(),
        version: 2,
        issue_date: rfc3339(config.not_before)?,
        next_update: rfc3339(config.not_after)?,
        tcb_evaluation_data_number: config.tcb_evaluation_data_number,
        miscselect: qe.miscselect.to_le_bytes(),
        miscselect_mask: [0xff; 4],
        attributes: qe.attributes,
        attributes_mask: QE_ATTRIBUTES_MASK,
        mrsigner: qe.mrsigner,
        isvprodid: qe.isvprodid,
        tcb_levels: vec![
            QeTcbLevel {
                tcb: QeTcb { isvsvn: qe.isvsvn },
                tcb_date: rfc3339(config.not_before)?,
                tcb_status: TcbStatus::UpToDate,
                advisory_ids: Vec::new(),
            },
            QeTcbLevel {
                tcb: QeTcb { isvsvn: 0 },
                tcb_date: rfc3339(config.not_before.saturating_sub(OUT_OF_DATE_AGE_SECS))?,
                tcb_status: TcbStatus::OutOfDate,
                advisory_ids: vec![SIM_ADVISORY.to_string()],
            },
        ],
    })
}
