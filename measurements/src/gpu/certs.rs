//! X.509 chains of NVIDIA's two PKIs (device identity, RIM signing): parsing,
//! path verification at an explicit time, and the DICE FWID extension.
//!
//! Every certificate in both chains is ECDSA P-384 signed with SHA-384
//! (`ecdsa-with-SHA384`, RFC 5758); anything else is refused rather than
//! "supported". The pinned root is the trust anchor: a self-signed certificate at
//! the end of a presented chain is dropped and the pinned root takes its place (as
//! NVIDIA's verifiers do), so what a chain claims about its own root never counts.
//!
//! Two CA certificates of NVIDIA's RIM chain encode pre-2050 validity dates as
//! GeneralizedTime, which RFC 5280 §4.1.2.5 reserves for 2050 and later. The `der`
//! crate reads either encoding as the instant it denotes (as OpenSSL does); the
//! certificate is signed over exactly those bytes, so accepting the encoding
//! changes no verified fact, and refusing it would reject every NVIDIA RIM.
#![deny(clippy::arithmetic_side_effects)]

use const_oid::ObjectIdentifier;
use der::{Decode, Encode, Tagged};
use p384::ecdsa::signature::Verifier;
use serde::Serialize;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::Certificate;

/// ecdsa-with-SHA384 (RFC 5758 §3.2).
pub const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
/// id-ecPublicKey (RFC 5480).
pub const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp384r1 (RFC 5480).
pub const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// tcg-dice-TcbInfo (TCG DICE Attestation Architecture §6.1.1).
pub const TCG_DICE_TCB_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.5.4.1");
/// id-sha384 (RFC 5758 / NIST).
pub const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");

const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
/// Critical extensions we understand. RFC 5280 §4.2: a certificate with an
/// unrecognized critical extension must be rejected.
const UNDERSTOOD_CRITICAL: [ObjectIdentifier; 2] = [BASIC_CONSTRAINTS, KEY_USAGE];

/// Most certificates a chain may hold (NVIDIA's are 4-5).
pub const MAX_CHAIN_CERTS: usize = 8;
/// Largest chain file we read.
pub const MAX_CHAIN_BYTES: usize = 256 * 1024;

/// A certificate that could not be read at all (malformed input, not a verdict).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("certificate {index}: not DER X.509: {why}")]
    Der { index: usize, why: String },
    #[error("certificate chain is empty")]
    Empty,
    #[error("certificate chain has {count} certificates, over the limit of {max}")]
    TooMany { count: usize, max: usize },
    #[error("certificate chain is {len} bytes, over the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("PEM block {index}: {why}")]
    Pem { index: usize, why: String },
}

/// A parsed certificate with the exact DER it came from.
#[derive(Debug, Clone)]
pub struct Cert {
    pub der: Vec<u8>,
    pub cert: Certificate,
}

impl Cert {
    pub fn from_der(der: &[u8], index: usize) -> Result<Self, CertError> {
        let cert = Certificate::from_der(der).map_err(|e| CertError::Der {
            index,
            why: e.to_string(),
        })?;
        Ok(Self {
            der: der.to_vec(),
            cert,
        })
    }

    /// Subject as an RFC 4514 string, for messages.
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    fn is_self_issued(&self) -> bool {
        self.cert.tbs_certificate.subject == self.cert.tbs_certificate.issuer
    }

    /// The P-384 public key of this certificate.
    pub fn p384_key(&self) -> Result<p384::ecdsa::VerifyingKey, String> {
        let spki = &self.cert.tbs_certificate.subject_public_key_info;
        if spki.algorithm.oid != ID_EC_PUBLIC_KEY {
            return Err(format!(
                "public key algorithm {} is not EC",
                spki.algorithm.oid
            ));
        }
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        if curve != Some(SECP384R1) {
            return Err("public key curve is not secp384r1".into());
        }
        p384::ecdsa::VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
            .map_err(|_| "public key is not a valid P-384 point".to_string())
    }

    fn extension<'a, T: Decode<'a>>(&'a self, oid: ObjectIdentifier) -> Option<Result<T, ()>> {
        let exts = self.cert.tbs_certificate.extensions.as_ref()?;
        let ext = exts.iter().find(|e| e.extn_id == oid)?;
        Some(T::from_der(ext.extn_value.as_bytes()).map_err(|_| ()))
    }

    /// The sha384 FWID of the TCG DICE TcbInfo extension (2.23.133.5.4.1).
    ///
    /// The TCG form is `DiceTcbInfo ::= SEQUENCE { ..., fwids [6] IMPLICIT
    /// SEQUENCE OF FWID, ... }` with `FWID ::= SEQUENCE { hashAlg OID, digest
    /// OCTET STRING }`. Hopper leaves encode the FWID as a plain `FWID` element of
    /// the outer SEQUENCE (next to a version INTEGER and the key's SPKI), which
    /// NVIDIA's verifier reads as "the last 48 bytes". We accept an FWID in either
    /// position, found by structure (hash OID + 48-byte digest), never by offset.
    pub fn fwid_sha384(&self) -> Result<Option<Vec<u8>>, String> {
        let Some(exts) = self.cert.tbs_certificate.extensions.as_ref() else {
            return Ok(None);
        };
        let Some(ext) = exts.iter().find(|e| e.extn_id == TCG_DICE_TCB_INFO) else {
            return Ok(None);
        };
        let outer = der::asn1::AnyRef::from_der(ext.extn_value.as_bytes())
            .map_err(|e| format!("TcbInfo extension is not DER: {e}"))?;
        if outer.tag() != der::Tag::Sequence {
            return Err("TcbInfo extension is not a SEQUENCE".into());
        }
        let mut found: Vec<Vec<u8>> = Vec::new();
        for element in der_elements(outer.value())? {
            if element.tag() == der::Tag::Sequence {
                if let Some(d) = fwid_entry(&element) {
                    found.push(d);
                }
            } else if element.tag()
                == (der::Tag::ContextSpecific {
                    constructed: true,
                    number: der::TagNumber::N6,
                })
            {
                for fwid in der_elements(element.value())? {
                    if let Some(d) = fwid_entry(&fwid) {
                        found.push(d);
                    }
                }
            }
        }
        found.dedup();
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            n => Err(format!("TcbInfo extension has {n} different sha384 FWIDs")),
        }
    }
}

fn der_elements(bytes: &[u8]) -> Result<Vec<der::asn1::AnyRef<'_>>, String> {
    use der::Reader as _;
    let mut reader = der::SliceReader::new(bytes).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while !reader.is_finished() {
        out.push(
            reader
                .decode::<der::asn1::AnyRef<'_>>()
                .map_err(|e| format!("TcbInfo element: {e}"))?,
        );
        if out.len() > 64 {
            return Err("TcbInfo has too many elements".into());
        }
    }
    Ok(out)
}

/// `FWID ::= SEQUENCE { hashAlg OID, digest OCTET STRING }` with hashAlg sha384.
fn fwid_entry(seq: &der::asn1::AnyRef<'_>) -> Option<Vec<u8>> {
    let parts = der_elements(seq.value()).ok()?;
    let [alg, digest] = parts.as_slice() else {
        return None;
    };
    let oid: ObjectIdentifier = alg.decode_as().ok()?;
    let digest: der::asn1::OctetStringRef<'_> = digest.decode_as().ok()?;
    (oid == ID_SHA384 && digest.as_bytes().len() == 48).then(|| digest.as_bytes().to_vec())
}

/// Split a chain file: PEM certificates, or concatenated DER.
pub fn parse_chain(bytes: &[u8]) -> Result<Vec<Cert>, CertError> {
    if bytes.len() > MAX_CHAIN_BYTES {
        return Err(CertError::TooLarge {
            len: bytes.len(),
            max: MAX_CHAIN_BYTES,
        });
    }
    let ders = if contains(bytes, b"-----BEGIN") {
        pem_blocks(bytes)?
    } else {
        der_blocks(bytes)?
    };
    if ders.is_empty() {
        return Err(CertError::Empty);
    }
    if ders.len() > MAX_CHAIN_CERTS {
        return Err(CertError::TooMany {
            count: ders.len(),
            max: MAX_CHAIN_CERTS,
        });
    }
    ders.iter()
        .enumerate()
        .map(|(i, d)| Cert::from_der(d, i))
        .collect()
}

fn contains(h: &[u8], n: &[u8]) -> bool {
    h.windows(n.len()).any(|w| w == n)
}

fn pem_blocks(bytes: &[u8]) -> Result<Vec<Vec<u8>>, CertError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CertError::Pem {
        index: 0,
        why: "PEM text is not UTF-8".into(),
    })?;
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let index = out.len();
        let tail = rest.get(start..).unwrap_or("");
        let end_marker = "-----END CERTIFICATE-----";
        let Some(end) = tail.find(end_marker) else {
            return Err(CertError::Pem {
                index,
                why: "no END CERTIFICATE line".into(),
            });
        };
        let block_end = end.saturating_add(end_marker.len());
        let block = tail.get(..block_end).unwrap_or("");
        let (label, der) =
            pem_rfc7468::decode_vec(block.as_bytes()).map_err(|e| CertError::Pem {
                index,
                why: e.to_string(),
            })?;
        if label != "CERTIFICATE" {
            return Err(CertError::Pem {
                index,
                why: format!("label {label:?}"),
            });
        }
        out.push(der);
        if out.len() > MAX_CHAIN_CERTS {
            return Err(CertError::TooMany {
                count: out.len(),
                max: MAX_CHAIN_CERTS,
            });
        }
        rest = tail.get(block_end..).unwrap_or("");
    }
    Ok(out)
}

fn der_blocks(bytes: &[u8]) -> Result<Vec<Vec<u8>>, CertError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let index = out.len();
        let any = der::asn1::AnyRef::from_der_partial(rest).map_err(|e| CertError::Der {
            index,
            why: e.to_string(),
        })?;
        let len = any.0.encoded_len().map_err(|e| CertError::Der {
            index,
            why: e.to_string(),
        })?;
        let len = usize::try_from(u32::from(len)).unwrap_or(usize::MAX);
        let (head, tail) = rest.split_at_checked(len).ok_or(CertError::Der {
            index,
            why: "length beyond the input".into(),
        })?;
        out.push(head.to_vec());
        rest = tail;
        if out.len() > MAX_CHAIN_CERTS {
            return Err(CertError::TooMany {
                count: out.len(),
                max: MAX_CHAIN_CERTS,
            });
        }
    }
    Ok(out)
}

trait PartialDecode<'a>: Sized {
    fn from_der_partial(bytes: &'a [u8]) -> der::Result<(Self, &'a [u8])>;
}

impl<'a> PartialDecode<'a> for der::asn1::AnyRef<'a> {
    fn from_der_partial(bytes: &'a [u8]) -> der::Result<(Self, &'a [u8])> {
        use der::Reader as _;
        let mut r = der::SliceReader::new(bytes)?;
        let any = r.decode::<der::asn1::AnyRef<'a>>()?;
        let pos = usize::try_from(u32::from(r.position())).unwrap_or(usize::MAX);
        let rest = bytes.get(pos..).ok_or(der::ErrorKind::Failed)?;
        Ok((any, rest))
    }
}

/// One problem found on a chain. `position` is 0 for the leaf; the pinned root is
/// position `chain.len()` after a presented self-signed root was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainIssue {
    /// Stable suffix of the reason code (`expired`, `signature_invalid`, ...).
    pub kind: ChainIssueKind,
    /// Index of the certificate in the verified path (0 = leaf).
    pub position: usize,
    /// Subject of that certificate.
    pub subject: String,
    pub detail: String,
}

/// What is wrong with one certificate of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainIssueKind {
    /// Not yet valid at the verification time.
    NotYetValid,
    /// Expired at the verification time.
    Expired,
    /// The issuer's signature does not verify.
    SignatureInvalid,
    /// Issuer name does not match the next certificate's subject.
    IssuerMismatch,
    /// Signature or key algorithm other than ECDSA P-384 / SHA-384.
    AlgorithmUnsupported,
    /// An issuing certificate is not a CA (basicConstraints / keyUsage).
    NotCa,
    /// pathLenConstraint exceeded.
    PathTooLong,
    /// The leaf may not sign (keyUsage lacks digitalSignature).
    LeafKeyUsage,
    /// A critical extension we do not understand (RFC 5280 §4.2).
    UnknownCriticalExtension,
    /// The chain has no certificate besides the root.
    Empty,
}

impl ChainIssueKind {
    pub fn code(self) -> &'static str {
        match self {
            Self::NotYetValid => "not_yet_valid",
            Self::Expired => "expired",
            Self::SignatureInvalid => "signature_invalid",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::AlgorithmUnsupported => "algorithm_unsupported",
            Self::NotCa => "not_ca",
            Self::PathTooLong => "path_too_long",
            Self::LeafKeyUsage => "leaf_key_usage",
            Self::UnknownCriticalExtension => "unknown_critical_extension",
            Self::Empty => "empty",
        }
    }
}

/// The path actually verified: presented certificates (minus a trailing
/// self-signed one) followed by the pinned root.
pub fn anchored_path(chain: &[Cert], root: &Cert) -> Vec<Cert> {
    let mut path: Vec<Cert> = chain.to_vec();
    if path.last().is_some_and(Cert::is_self_issued) {
        path.pop();
    }
    path.push(root.clone());
    path
}

/// Verify `chain` (leaf first) up to the pinned `root` at `at` (Unix seconds).
/// Returns every problem found; an empty list means the path is valid.
pub fn verify_chain(chain: &[Cert], root: &Cert, at: u64) -> Vec<ChainIssue> {
    let path = anchored_path(chain, root);
    let mut issues = Vec::new();
    let issue = |kind, position: usize, cert: &Cert, detail: String| ChainIssue {
        kind,
        position,
        subject: cert.subject(),
        detail,
    };
    if path.len() < 2 {
        issues.push(issue(
            ChainIssueKind::Empty,
            0,
            root,
            "no certificate below the root".into(),
        ));
        return issues;
    }
    for (i, cert) in path.iter().enumerate() {
        let tbs = &cert.cert.tbs_certificate;
        let nb = tbs.validity.not_before.to_unix_duration().as_secs();
        let na = tbs.validity.not_after.to_unix_duration().as_secs();
        if at < nb {
            issues.push(issue(
                ChainIssueKind::NotYetValid,
                i,
                cert,
                format!(
                    "valid from {} (Unix {nb}), checked at Unix {at}",
                    tbs.validity.not_before
                ),
            ));
        }
        if at > na {
            issues.push(issue(
                ChainIssueKind::Expired,
                i,
                cert,
                format!(
                    "valid until {} (Unix {na}), checked at Unix {at}",
                    tbs.validity.not_after
                ),
            ));
        }
        if let Some(exts) = tbs.extensions.as_ref() {
            for ext in exts.iter().filter(|e| e.critical) {
                if !UNDERSTOOD_CRITICAL.contains(&ext.extn_id) {
                    issues.push(issue(
                        ChainIssueKind::UnknownCriticalExtension,
                        i,
                        cert,
                        format!("critical extension {}", ext.extn_id),
                    ));
                }
            }
        }
        if i == 0 {
            if let Some(ku) = cert.extension::<KeyUsage>(KEY_USAGE) {
                if !ku.map(|k| k.digital_signature()).unwrap_or(false) {
                    issues.push(issue(
                        ChainIssueKind::LeafKeyUsage,
                        i,
                        cert,
                        "keyUsage lacks digitalSignature".into(),
                    ));
                }
            }
        } else {
            check_ca(cert, i, &mut issues);
        }
        let Some(issuer) = path.get(i.saturating_add(1)).or_else(|| {
            // The root verifies itself only as a well-formedness check.
            path.last()
        }) else {
            continue;
        };
        if tbs.issuer != issuer.cert.tbs_certificate.subject {
            issues.push(issue(
                ChainIssueKind::IssuerMismatch,
                i,
                cert,
                format!("issuer {} is not {}", tbs.issuer, issuer.subject()),
            ));
        }
        if let Err(why) = verify_signed_by(cert, issuer) {
            let kind = if why.starts_with("algorithm") {
                ChainIssueKind::AlgorithmUnsupported
            } else {
                ChainIssueKind::SignatureInvalid
            };
            issues.push(issue(kind, i, cert, why));
        }
    }
    issues
}

fn check_ca(cert: &Cert, position: usize, issues: &mut Vec<ChainIssue>) {
    let mk = |kind, detail: String| ChainIssue {
        kind,
        position,
        subject: cert.subject(),
        detail,
    };
    match cert.extension::<BasicConstraints>(BASIC_CONSTRAINTS) {
        Some(Ok(bc)) if bc.ca => {
            // pathLenConstraint counts the non-self-issued intermediates below.
            let below = position.saturating_sub(1);
            if let Some(max) = bc.path_len_constraint {
                if below > usize::from(max) {
                    issues.push(mk(
                        ChainIssueKind::PathTooLong,
                        format!("pathLenConstraint {max}, {below} CA certificates below"),
                    ));
                }
            }
        }
        Some(Ok(_)) => issues.push(mk(
            ChainIssueKind::NotCa,
            "basicConstraints cA is false".into(),
        )),
        Some(Err(())) => issues.push(mk(
            ChainIssueKind::NotCa,
            "basicConstraints is not DER".into(),
        )),
        None => issues.push(mk(
            ChainIssueKind::NotCa,
            "no basicConstraints extension".into(),
        )),
    }
    if let Some(ku) = cert.extension::<KeyUsage>(KEY_USAGE) {
        if !ku.map(|k| k.key_cert_sign()).unwrap_or(false) {
            issues.push(mk(
                ChainIssueKind::NotCa,
                "keyUsage lacks keyCertSign".into(),
            ));
        }
    }
}

/// Check that `issuer` signed `cert` with ECDSA P-384 / SHA-384.
pub fn verify_signed_by(cert: &Cert, issuer: &Cert) -> Result<(), String> {
    let c = &cert.cert;
    if c.signature_algorithm.oid != ECDSA_WITH_SHA384
        || c.tbs_certificate.signature.oid != ECDSA_WITH_SHA384
    {
        return Err(format!(
            "algorithm {} is not ecdsa-with-SHA384",
            c.signature_algorithm.oid
        ));
    }
    if c.signature_algorithm.parameters.is_some() {
        return Err("algorithm ecdsa-with-SHA384 must have absent parameters".into());
    }
    let key = issuer
        .p384_key()
        .map_err(|e| format!("algorithm: issuer key: {e}"))?;
    let tbs = tbs_bytes(&cert.der).ok_or("TBSCertificate cannot be located")?;
    let sig = c
        .signature
        .as_bytes()
        .and_then(|b| p384::ecdsa::Signature::from_der(b).ok())
        .ok_or("signature is not a DER ECDSA-Sig-Value")?;
    key.verify(tbs, &sig)
        .map_err(|_| format!("signature by {} does not verify", issuer.subject()))
}

/// The exact TBSCertificate bytes as they were signed (not a re-encoding).
fn tbs_bytes(der_bytes: &[u8]) -> Option<&[u8]> {
    let (outer, _) = der::asn1::AnyRef::from_der_partial(der_bytes).ok()?;
    let (tbs, _) = der::asn1::AnyRef::from_der_partial(outer.value()).ok()?;
    let len = usize::try_from(u32::from(tbs.encoded_len().ok()?)).ok()?;
    outer.value().get(..len)
}

/// Re-encode check used by tests: a parsed certificate round-trips.
#[allow(dead_code)]
fn roundtrips(cert: &Cert) -> bool {
    cert.cert.to_der().map(|d| d == cert.der).unwrap_or(false)
}
