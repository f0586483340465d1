//! Stapled OCSP responses (RFC 6960) for the device and RIM chains, checked
//! offline at the verification time.
//!
//! NVIDIA's verifiers query `ocsp.ndis.nvidia.com` live; a proxy that must decide
//! offline instead accepts DER `OCSPResponse`s fetched earlier (by the agent or an
//! operator) and checks them here: the response is signed by the certificate's
//! issuer or by a responder the issuer delegated to (id-kp-OCSPSigning, issued
//! directly by that CA, RFC 6960 §4.2.2.2), its CertID names the certificate
//! (issuer name/key hashes + serial), and `thisUpdate <= at <= nextUpdate`.
#![deny(clippy::arithmetic_side_effects)]

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use p384::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::Digest as _;
use x509_cert::ext::pkix::ExtendedKeyUsage;
use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus, ResponderId};

use super::certs::{self, Cert};

const ID_PKIX_OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
const ID_KP_OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// Largest OCSP response we read.
pub const MAX_OCSP_BYTES: usize = 64 * 1024;

/// A parsed, successful basic OCSP response and the exact bytes it signs.
#[derive(Debug, Clone)]
pub struct ParsedOcsp {
    basic: BasicOcspResponse,
    tbs: Vec<u8>,
}

/// Parse a DER `OCSPResponse`; anything but a successful basic response is an error.
pub fn parse(der_bytes: &[u8]) -> Result<ParsedOcsp, String> {
    if der_bytes.len() > MAX_OCSP_BYTES {
        return Err(format!(
            "{} bytes, over the limit of {MAX_OCSP_BYTES}",
            der_bytes.len()
        ));
    }
    let resp =
        OcspResponse::from_der(der_bytes).map_err(|e| format!("not a DER OCSPResponse: {e}"))?;
    if resp.response_status != OcspResponseStatus::Successful {
        return Err(format!("responseStatus {:?}", resp.response_status));
    }
    let bytes = resp
        .response_bytes
        .ok_or("successful response without responseBytes")?;
    if bytes.response_type != ID_PKIX_OCSP_BASIC {
        return Err(format!(
            "responseType {} is not id-pkix-ocsp-basic",
            bytes.response_type
        ));
    }
    let inner = bytes.response.as_bytes();
    let basic =
        BasicOcspResponse::from_der(inner).map_err(|e| format!("BasicOCSPResponse: {e}"))?;
    let tbs = first_element(inner).ok_or("tbsResponseData cannot be located")?;
    Ok(ParsedOcsp {
        basic,
        tbs: tbs.to_vec(),
    })
}

/// The first element inside a DER SEQUENCE, as its exact encoding.
fn first_element(seq: &[u8]) -> Option<&[u8]> {
    let outer = der::asn1::AnyRef::from_der(seq).ok()?;
    let value = outer.value();
    let mut reader = der::SliceReader::new(value).ok()?;
    let first: der::asn1::AnyRef<'_> = der::Reader::decode(&mut reader).ok()?;
    let len = usize::try_from(u32::from(first.encoded_len().ok()?)).ok()?;
    value.get(..len)
}

/// Which certificates of a path need a status.
pub struct OcspScope {
    /// "device" or "rim" (reason codes are prefixed with it).
    pub label: &'static str,
    /// Leaf first, pinned root last (the root itself needs no status).
    pub path: Vec<Cert>,
    /// Skip position 0.
    pub skip_leaf: bool,
}

/// The outcome for one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Good(String),
    Revoked(String, String),
    Invalid(String, String),
    Missing(String),
}

/// Check every certificate in scope against the responses.
pub fn check(scope: &OcspScope, responses: &[ParsedOcsp], at: u64) -> Vec<Finding> {
    let mut out = Vec::new();
    let first = usize::from(scope.skip_leaf);
    for (i, cert) in scope.path.iter().enumerate().skip(first) {
        let Some(issuer) = scope.path.get(i.saturating_add(1)) else {
            break; // the pinned root
        };
        out.push(status_of(cert, issuer, responses, at));
    }
    out
}

fn status_of(cert: &Cert, issuer: &Cert, responses: &[ParsedOcsp], at: u64) -> Finding {
    let subject = cert.subject();
    let mut invalid: Option<String> = None;
    for resp in responses {
        for single in &resp.basic.tbs_response_data.responses {
            if !cert_id_matches(&single.cert_id, cert, issuer) {
                continue;
            }
            if let Err(why) = verify_response_signature(resp, issuer, at) {
                invalid = Some(why);
                continue;
            }
            let this_update = single.this_update.0.to_unix_duration().as_secs();
            let Some(next) = single.next_update.as_ref() else {
                invalid = Some("response has no nextUpdate".into());
                continue;
            };
            let next_update = next.0.to_unix_duration().as_secs();
            if at < this_update || at > next_update {
                invalid = Some(format!(
                    "response valid {this_update}..{next_update} (Unix), checked at {at}"
                ));
                continue;
            }
            return match &single.cert_status {
                CertStatus::Good(_) => Finding::Good(subject),
                CertStatus::Revoked(info) => Finding::Revoked(
                    subject,
                    format!(
                        "at Unix {}, reason {:?}",
                        info.revocation_time.0.to_unix_duration().as_secs(),
                        info.revocation_reason
                    ),
                ),
                CertStatus::Unknown(_) => Finding::Invalid(subject, "status unknown".into()),
            };
        }
    }
    match invalid {
        Some(why) => Finding::Invalid(subject, why),
        None => Finding::Missing(subject),
    }
}

fn hash(alg: ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    Some(match alg {
        ID_SHA1 => sha1_digest(data),
        ID_SHA256 => sha2::Sha256::digest(data).to_vec(),
        ID_SHA384 => sha2::Sha384::digest(data).to_vec(),
        _ => return None,
    })
}

fn sha1_digest(data: &[u8]) -> Vec<u8> {
    use sha1::Digest as _;
    sha1::Sha1::digest(data).to_vec()
}

/// The subjectPublicKey BIT STRING contents, which OCSP's key hashes cover (RFC 6960 4.1.1).
fn public_key_bytes(cert: &Cert) -> &[u8] {
    cert.cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes()
}

fn cert_id_matches(id: &x509_ocsp::CertId, cert: &Cert, issuer: &Cert) -> bool {
    let alg = id.hash_algorithm.oid;
    let name = issuer.cert.tbs_certificate.subject.to_der().ok();
    let key = public_key_bytes(issuer);
    let (Some(name), Some(key_hash)) = (name, hash(alg, key)) else {
        return false;
    };
    id.serial_number == cert.cert.tbs_certificate.serial_number
        && hash(alg, &name).is_some_and(|h| h == id.issuer_name_hash.as_bytes())
        && key_hash == id.issuer_key_hash.as_bytes()
}

/// The response must be signed by the issuer, or by a delegated responder whose
/// certificate (carried in the response) the issuer signed for OCSP signing.
fn verify_response_signature(resp: &ParsedOcsp, issuer: &Cert, at: u64) -> Result<(), String> {
    let basic = &resp.basic;
    let responder_is_issuer = match &basic.tbs_response_data.responder_id {
        ResponderId::ByName(name) => *name == issuer.cert.tbs_certificate.subject,
        ResponderId::ByKey(kh) => sha1_digest(public_key_bytes(issuer)) == kh.as_bytes(),
    };
    let signer: Cert = if responder_is_issuer {
        issuer.clone()
    } else {
        let delegated = basic
            .certs
            .as_ref()
            .into_iter()
            .flatten()
            .find(|c| responder_matches(&basic.tbs_response_data.responder_id, c))
            .ok_or("responder certificate not included in the response")?;
        let der = delegated.to_der().map_err(|e| e.to_string())?;
        let delegated = Cert::from_der(&der, 0).map_err(|e| e.to_string())?;
        certs::verify_signed_by(&delegated, issuer)
            .map_err(|e| format!("delegated responder not issued by the CA: {e}"))?;
        let tbs = &delegated.cert.tbs_certificate;
        let nb = tbs.validity.not_before.to_unix_duration().as_secs();
        let na = tbs.validity.not_after.to_unix_duration().as_secs();
        if at < nb || at > na {
            return Err(
                "delegated responder certificate not valid at the verification time".into(),
            );
        }
        let eku_ok = tbs
            .extensions
            .as_ref()
            .and_then(|exts| exts.iter().find(|e| e.extn_id == EXT_KEY_USAGE))
            .and_then(|e| ExtendedKeyUsage::from_der(e.extn_value.as_bytes()).ok())
            .is_some_and(|eku| eku.0.contains(&ID_KP_OCSP_SIGNING));
        if !eku_ok {
            return Err("delegated responder lacks id-kp-OCSPSigning".into());
        }
        delegated
    };
    let key = signer.p384_key()?;
    let sig = basic
        .signature
        .as_bytes()
        .and_then(|b| p384::ecdsa::Signature::from_der(b).ok())
        .ok_or("response signature is not a DER ECDSA-Sig-Value")?;
    let digest = match basic.signature_algorithm.oid {
        certs::ECDSA_WITH_SHA384 => sha2::Sha384::digest(&resp.tbs).to_vec(),
        ECDSA_WITH_SHA256 => sha2::Sha256::digest(&resp.tbs).to_vec(),
        other => return Err(format!("response signature algorithm {other} unsupported")),
    };
    key.verify_prehash(&digest, &sig)
        .map_err(|_| format!("response signature by {} does not verify", signer.subject()))
}

fn responder_matches(id: &ResponderId, cert: &x509_cert::Certificate) -> bool {
    match id {
        ResponderId::ByName(name) => *name == cert.tbs_certificate.subject,
        ResponderId::ByKey(kh) => {
            sha1_digest(
                cert.tbs_certificate
                    .subject_public_key_info
                    .subject_public_key
                    .raw_bytes(),
            ) == kh.as_bytes()
        }
    }
}
