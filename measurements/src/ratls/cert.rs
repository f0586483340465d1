//! The RA-TLS certificate extensions: encoding for the worker, parsing for clients.
//!
//! Each extension's `extnValue` (RFC 5280 section 4.1) holds the DER of an OCTET
//! STRING whose contents are the payload, the way the ACME `id-pe-acmeIdentifier`
//! extension (RFC 8737 section 3) wraps its digest. rcgen's
//! `CustomExtension::from_oid_content(oid, content)` takes exactly that DER as
//! `content` and adds the outer `extnValue` OCTET STRING itself.
#![deny(clippy::arithmetic_side_effects)]

use std::fmt;
use std::str::FromStr;

use der::{Decode as _, Encode as _};
use serde::{Deserialize, Serialize};

use super::oid;
use crate::claims::{Claims, ClaimsError};
use crate::quote::MAX_QUOTE_BYTES;

/// Largest certificate [`RaTlsEvidence::from_certificate_der`] reads. A quote is
/// 5-8 KiB, claims under 1 KiB, real collateral 16-19 KiB.
pub const MAX_CERT_BYTES: usize = 256 * 1024;
/// Largest claims extension (the claims' own caps keep real ones under 17 KiB).
pub const MAX_CLAIMS_BYTES: usize = 20 * 1024;
/// Largest collateral extension.
pub const MAX_COLLATERAL_EXT_BYTES: usize = 192 * 1024;
/// Largest TEE-kind extension.
pub const MAX_TEE_BYTES: usize = 16;

/// Which TEE produced the quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TeeKind {
    /// A real Intel TDX TD; the quote chains to Intel's root.
    Tdx,
    /// The simulated TEE (`crate::sim`); the quote chains to a test root only.
    Sim,
}

impl TeeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TeeKind::Tdx => "tdx",
            TeeKind::Sim => "sim",
        }
    }
}

impl fmt::Display for TeeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TeeKind {
    type Err = RaTlsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tdx" => Ok(TeeKind::Tdx),
            "sim" => Ok(TeeKind::Sim),
            other => Err(RaTlsError::TeeKind(other.chars().take(32).collect())),
        }
    }
}

/// Why a certificate does not carry readable RA-TLS evidence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaTlsError {
    #[error("certificate is {len} bytes, more than the limit of {max}")]
    CertificateTooLarge { len: usize, max: usize },
    /// Not a DER X.509 certificate (x509-cert's message names the field).
    #[error("certificate does not parse: {0}")]
    Certificate(String),
    #[error("certificate has no {0} extension (OID {oid})", oid = ext_oid(.0))]
    MissingExtension(&'static str),
    #[error("certificate has more than one {0} extension")]
    DuplicateExtension(&'static str),
    #[error("{name} extension is {len} bytes, more than the limit of {max}")]
    ExtensionTooLarge {
        name: &'static str,
        len: usize,
        max: usize,
    },
    /// The extension value is not a DER OCTET STRING (or has trailing bytes).
    #[error("{name} extension value is not a DER OCTET STRING: {why}")]
    ExtensionValue { name: &'static str, why: String },
    #[error("tee extension: unknown TEE kind {0:?} (expected \"tdx\" or \"sim\")")]
    TeeKind(String),
    #[error("collateral extension is not UTF-8: {0}")]
    CollateralUtf8(String),
    #[error("claims extension: {0}")]
    Claims(ClaimsError),
    /// The certificate's claims carry a nonce; a certificate is not an answer to
    /// a challenge, so the contract keeps its nonce absent.
    #[error("claims extension carries a nonce (certificate claims must not)")]
    ClaimsNonce,
    #[error("certificate's SubjectPublicKeyInfo cannot be re-encoded: {0}")]
    Spki(String),
}

fn ext_oid(name: &str) -> String {
    let arcs = match name {
        "quote" => oid::QUOTE,
        "claims" => oid::CLAIMS,
        "tee" => oid::TEE,
        "collateral" => oid::COLLATERAL,
        _ => oid::ARC,
    };
    oid::dotted(arcs)
}

/// The attestation a worker's certificate carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaTlsEvidence {
    pub tee: TeeKind,
    /// Raw TDX quote (v4); REPORTDATA = `claims.report_data()`.
    pub quote: Vec<u8>,
    /// The claims (no nonce); `claims.tls_spki_der` is the certificate's key.
    pub claims: Claims,
    /// dcap-qvl `QuoteCollateralV3` JSON for the quote, when the worker includes it.
    pub collateral_json: Option<String>,
}

/// DER OCTET STRING (X.690 8.7) with a definite-form length (8.1.3).
pub(crate) fn der_octet_string(content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let len_bytes = len.to_be_bytes();
    let mut out = Vec::with_capacity(content.len().saturating_add(10));
    out.push(0x04);
    if len < 0x80 {
        out.extend(len_bytes.last().copied());
    } else {
        let skip = len_bytes.iter().take_while(|b| **b == 0).count();
        let significant = len_bytes.get(skip..).unwrap_or(&[]);
        // At most 8 significant bytes: 0x80 | n never overflows.
        out.push(0x80 | u8::try_from(significant.len()).unwrap_or(8));
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

impl RaTlsEvidence {
    /// `(OID components, extension content)` pairs for rcgen, in OID order:
    ///
    /// ```ignore
    /// for (oid, content) in evidence.to_extensions() {
    ///     params.custom_extensions.push(rcgen::CustomExtension::from_oid_content(oid, content));
    /// }
    /// ```
    ///
    /// `from_oid_content` marks them non-critical, as the contract requires.
    pub fn to_extensions(&self) -> Vec<(&'static [u64], Vec<u8>)> {
        let mut out = vec![
            (oid::QUOTE, der_octet_string(&self.quote)),
            (oid::CLAIMS, der_octet_string(&self.claims.encode())),
            (oid::TEE, der_octet_string(self.tee.as_str().as_bytes())),
        ];
        if let Some(c) = &self.collateral_json {
            out.push((oid::COLLATERAL, der_octet_string(c.as_bytes())));
        }
        out
    }

    /// Read the evidence and the certificate's SubjectPublicKeyInfo (DER) from a
    /// DER certificate. Checks only the format; [`super::verify_certificate`]
    /// judges the contents.
    pub fn from_certificate_der(cert_der: &[u8]) -> Result<(RaTlsEvidence, Vec<u8>), RaTlsError> {
        if cert_der.len() > MAX_CERT_BYTES {
            return Err(RaTlsError::CertificateTooLarge {
                len: cert_der.len(),
                max: MAX_CERT_BYTES,
            });
        }
        let cert = x509_cert::Certificate::from_der(cert_der)
            .map_err(|e| RaTlsError::Certificate(e.to_string()))?;
        let tbs = &cert.tbs_certificate;
        let spki = tbs
            .subject_public_key_info
            .to_der()
            .map_err(|e| RaTlsError::Spki(e.to_string()))?;
        let extensions = tbs.extensions.as_deref().unwrap_or(&[]);
        let find =
            |name: &'static str, arcs: &[u64], max: usize| -> Result<Option<Vec<u8>>, RaTlsError> {
                let mut found = None;
                for ext in extensions {
                    if !ext.extn_id.arcs().map(u64::from).eq(arcs.iter().copied()) {
                        continue;
                    }
                    if found.is_some() {
                        return Err(RaTlsError::DuplicateExtension(name));
                    }
                    let value = der::asn1::OctetString::from_der(ext.extn_value.as_bytes())
                        .map_err(|e| RaTlsError::ExtensionValue {
                            name,
                            why: e.to_string(),
                        })?;
                    let bytes = value.into_bytes();
                    if bytes.len() > max {
                        return Err(RaTlsError::ExtensionTooLarge {
                            name,
                            len: bytes.len(),
                            max,
                        });
                    }
                    found = Some(bytes);
                }
                Ok(found)
            };
        let required = |name: &'static str, arcs: &[u64], max: usize| {
            find(name, arcs, max)?.ok_or(RaTlsError::MissingExtension(name))
        };
        let quote = required("quote", oid::QUOTE, MAX_QUOTE_BYTES)?;
        let claims_bytes = required("claims", oid::CLAIMS, MAX_CLAIMS_BYTES)?;
        let tee_bytes = required("tee", oid::TEE, MAX_TEE_BYTES)?;
        let collateral = find("collateral", oid::COLLATERAL, MAX_COLLATERAL_EXT_BYTES)?;

        let tee = std::str::from_utf8(&tee_bytes)
            .map_err(|_| RaTlsError::TeeKind(hex::encode(&tee_bytes)))?
            .parse()?;
        let claims = Claims::decode(&claims_bytes).map_err(RaTlsError::Claims)?;
        if claims.nonce.is_some() {
            return Err(RaTlsError::ClaimsNonce);
        }
        let collateral_json = collateral
            .map(|c| String::from_utf8(c).map_err(|e| RaTlsError::CollateralUtf8(e.to_string())))
            .transpose()?;
        Ok((
            RaTlsEvidence {
                tee,
                quote,
                claims,
                collateral_json,
            },
            spki,
        ))
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::claims::example_claims;

    fn evidence(spki: Vec<u8>) -> RaTlsEvidence {
        let mut claims = example_claims();
        claims.nonce = None;
        claims.tls_spki_der = spki;
        RaTlsEvidence {
            tee: TeeKind::Sim,
            quote: vec![0x5a; 5000],
            claims,
            collateral_json: Some("{\"x\":1}".into()),
        }
    }

    fn cert_with(evidence: &RaTlsEvidence, extra: &[(&[u64], Vec<u8>)]) -> (Vec<u8>, Vec<u8>) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        for (oid, content) in evidence.to_extensions() {
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(oid, content));
        }
        for (oid, content) in extra {
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    oid,
                    content.clone(),
                ));
        }
        let cert = params.self_signed(&key).unwrap();
        (
            cert.der().to_vec(),
            rcgen::PublicKeyData::subject_public_key_info(&key),
        )
    }

    #[test]
    fn octet_string_encoding_matches_der_crate() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536, 70000] {
            let content = vec![7u8; len];
            let ours = der_octet_string(&content);
            let theirs = der::asn1::OctetString::new(content.clone())
                .unwrap()
                .to_der()
                .unwrap();
            assert_eq!(ours, theirs, "length {len}");
        }
    }

    #[test]
    fn round_trip_through_rcgen_certificate() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let ev = evidence(rcgen::PublicKeyData::subject_public_key_info(&key));
        let (der, spki) = cert_with(&ev, &[]);
        let (parsed, parsed_spki) = RaTlsEvidence::from_certificate_der(&der).unwrap();
        assert_eq!(parsed_spki, spki);
        // The certificate's own key is another key than the claims' here.
        assert_ne!(parsed.claims.tls_spki_der, parsed_spki);
        assert_eq!(parsed, ev);
        let no_collateral = RaTlsEvidence {
            collateral_json: None,
            ..ev
        };
        let (der, _) = cert_with(&no_collateral, &[]);
        let (parsed, _) = RaTlsEvidence::from_certificate_der(&der).unwrap();
        assert_eq!(parsed, no_collateral);
        assert_eq!(no_collateral.to_extensions().len(), 3);
    }

    #[test]
    fn named_errors() {
        let ev = evidence(vec![1, 2, 3]);
        // Duplicate TEE extension.
        let (der, _) = cert_with(&ev, &[(oid::TEE, der_octet_string(b"tdx"))]);
        assert_eq!(
            RaTlsEvidence::from_certificate_der(&der).unwrap_err(),
            RaTlsError::DuplicateExtension("tee")
        );
        // Unknown TEE kind.
        let mut other = ev.clone();
        other.collateral_json = None;
        let mut exts = other.to_extensions();
        exts.retain(|(o, _)| *o != oid::TEE);
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let build = |exts: &[(&'static [u64], Vec<u8>)]| {
            let mut p = rcgen::CertificateParams::new(vec!["x".into()]).unwrap();
            for (o, c) in exts {
                p.custom_extensions
                    .push(rcgen::CustomExtension::from_oid_content(o, c.clone()));
            }
            p.self_signed(&key).unwrap().der().to_vec()
        };
        let mut bad_tee = exts.clone();
        bad_tee.push((oid::TEE, der_octet_string(b"sev")));
        assert_eq!(
            RaTlsEvidence::from_certificate_der(&build(&bad_tee)).unwrap_err(),
            RaTlsError::TeeKind("sev".into())
        );
        // Missing TEE extension names its OID.
        let e = RaTlsEvidence::from_certificate_der(&build(&exts)).unwrap_err();
        assert_eq!(e, RaTlsError::MissingExtension("tee"));
        assert!(e.to_string().contains(&oid::dotted(oid::TEE)));
        // Value that is not an OCTET STRING (a raw UTF8String).
        let mut not_octets = exts.clone();
        not_octets.push((oid::TEE, vec![0x0c, 3, b't', b'd', b'x']));
        assert!(matches!(
            RaTlsEvidence::from_certificate_der(&build(&not_octets)).unwrap_err(),
            RaTlsError::ExtensionValue { name: "tee", .. }
        ));
        // Trailing bytes after the OCTET STRING.
        let mut trailing = exts.clone();
        let mut v = der_octet_string(b"sim");
        v.push(0);
        trailing.push((oid::TEE, v));
        assert!(matches!(
            RaTlsEvidence::from_certificate_der(&build(&trailing)).unwrap_err(),
            RaTlsError::ExtensionValue { name: "tee", .. }
        ));
        // Claims with a nonce.
        let mut nonce = ev.clone();
        nonce.claims.nonce = Some(vec![1; 8]);
        nonce.collateral_json = None;
        assert_eq!(
            RaTlsEvidence::from_certificate_der(&build(&nonce.to_extensions())).unwrap_err(),
            RaTlsError::ClaimsNonce
        );
        // Claims that do not decode.
        let mut bad_claims = exts.clone();
        bad_claims.retain(|(o, _)| *o != oid::CLAIMS);
        bad_claims.push((oid::CLAIMS, der_octet_string(b"cocoon")));
        bad_claims.push((oid::TEE, der_octet_string(b"sim")));
        assert!(matches!(
            RaTlsEvidence::from_certificate_der(&build(&bad_claims)).unwrap_err(),
            RaTlsError::Claims(_)
        ));
        // Oversized quote.
        let mut big = exts.clone();
        big.retain(|(o, _)| *o != oid::QUOTE);
        big.push((oid::QUOTE, der_octet_string(&vec![0; MAX_QUOTE_BYTES + 1])));
        big.push((oid::TEE, der_octet_string(b"sim")));
        assert!(matches!(
            RaTlsEvidence::from_certificate_der(&build(&big)).unwrap_err(),
            RaTlsError::ExtensionTooLarge { name: "quote", .. }
        ));
        // Not a certificate; too large.
        assert!(matches!(
            RaTlsEvidence::from_certificate_der(b"\x30\x03abc").unwrap_err(),
            RaTlsError::Certificate(_)
        ));
        assert!(matches!(
            RaTlsEvidence::from_certificate_der(&vec![0; MAX_CERT_BYTES + 1]).unwrap_err(),
            RaTlsError::CertificateTooLarge { .. }
        ));
    }

    #[test]
    fn truncations_never_panic() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let (der, _) = cert_with(
            &evidence(rcgen::PublicKeyData::subject_public_key_info(&key)),
            &[],
        );
        for cut in (0..der.len()).step_by(97) {
            assert!(RaTlsEvidence::from_certificate_der(&der[..cut]).is_err());
        }
    }

    /// A deterministic stand-in for the fuzz target: byte flips and overwrites all
    /// over a real RA-TLS certificate must give evidence or an error, never a panic.
    #[test]
    fn mutations_never_panic() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let (der, _) = cert_with(
            &evidence(rcgen::PublicKeyData::subject_public_key_info(&key)),
            &[],
        );
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parsed = 0;
        for _ in 0..3000 {
            let mut m = der.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % m.len();
                m[i] = match next() % 3 {
                    0 => m[i] ^ (1 << (next() % 8)),
                    1 => 0xff,
                    _ => 0,
                };
            }
            if RaTlsEvidence::from_certificate_der(&m).is_ok() {
                parsed += 1;
            }
        }
        // Most flips land in the quote or signature bytes, which parse regardless.
        assert!(parsed > 0);
    }

    #[test]
    fn oid_text() {
        assert_eq!(
            oid::dotted(oid::QUOTE),
            "1.2.840.113556.1.8000.2554.33464.40212.55991.18257.36364.3928818.15348699.1"
        );
        for (i, o) in [oid::QUOTE, oid::CLAIMS, oid::TEE, oid::COLLATERAL]
            .iter()
            .enumerate()
        {
            assert_eq!(&o[..oid::ARC.len()], oid::ARC);
            assert_eq!(o.len(), oid::ARC.len() + 1);
            assert_eq!(o[oid::ARC.len()], i as u64 + 1);
        }
        assert_eq!("sim".parse::<TeeKind>().unwrap(), TeeKind::Sim);
    }
}
