//! NVIDIA Reference Integrity Manifests: ISO/IEC 19770-2 SWID tags (TCG RIM
//! information model) carrying golden measurements, signed with an enveloped
//! XML-DSig signature whose signer chain is embedded in `ds:KeyInfo`.
//!
//! Parsing and canonicalization both go through libxml2 ([`super::xml`]); the
//! measurements are read from the same parsed document whose signature is checked,
//! and only from outside the `ds:Signature` element, so a wrapped or second copy of
//! the payload cannot be what gets compared.
#![deny(clippy::arithmetic_side_effects)]

use base64::Engine as _;
use serde::Serialize;
use sha2::Digest as _;

use super::certs::{self, Cert, CertError};
use super::xml::{C14nMode, XmlDoc, XmlError};

const NS_SWID: &str = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd";
const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// NVIDIA qualifies each golden hash attribute (`Hash0`, `Hash1`, ...) with the
/// XML-Enc URI of its algorithm.
const NS_SHA384: &str = "http://www.w3.org/2001/04/xmlenc#sha384";

const ALG_C14N10: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const ALG_C14N10_COMMENTS: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments";
const ALG_C14N11: &str = "http://www.w3.org/2006/12/xml-c14n11";
const ALG_C14N11_COMMENTS: &str = "http://www.w3.org/2006/12/xml-c14n11#WithComments";
const ALG_EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ALG_EXC_C14N_COMMENTS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";
const ALG_ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const ALG_ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
const ALG_SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const ALG_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
const ALG_SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";

/// Most golden-measurement resources a RIM may list (Hopper RIMs have 64).
pub const MAX_RESOURCES: usize = 1024;
/// Most alternatives per index.
pub const MAX_ALTERNATIVES: usize = 16;
/// Most certificates in `ds:KeyInfo`.
pub const MAX_KEYINFO_CERTS: usize = 8;

const SIG: &str = "/swid:SoftwareIdentity/ds:Signature";
const SIGNED_INFO: &str = "/swid:SoftwareIdentity/ds:Signature/ds:SignedInfo";
const REFERENCE: &str = "/swid:SoftwareIdentity/ds:Signature/ds:SignedInfo/ds:Reference";
const RESOURCES: &str = "/swid:SoftwareIdentity/swid:Payload/swid:Resource[@type='Measurement']";

/// A RIM that could not be read (malformed input, not a verdict).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RimError {
    #[error("RIM XML: {0}")]
    Xml(#[from] XmlError),
    #[error("RIM: {what} is missing")]
    Missing { what: String },
    #[error("RIM: {field} = {value:?}: {why}")]
    Invalid {
        field: String,
        value: String,
        why: String,
    },
    #[error("RIM: unsupported {what}: {value}")]
    Unsupported { what: String, value: String },
    #[error("RIM: signing certificate {0}")]
    Cert(#[from] CertError),
}

fn invalid(field: impl Into<String>, value: impl Into<String>, why: impl Into<String>) -> RimError {
    RimError::Invalid {
        field: field.into(),
        value: value.into(),
        why: why.into(),
    }
}

/// Which firmware a RIM describes: NVIDIA publishes one RIM for the driver (GSP
/// firmware, version like "550.90.07") and one per VBIOS build (version like
/// "96.00.9F.00.01").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RimKind {
    Driver,
    Vbios,
}

/// One golden measurement: `Resource type="Measurement"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GoldenMeasurement {
    /// RIM index (0-based; compared with report block `index + 1`).
    pub index: u32,
    /// Only active measurements are compared.
    pub active: bool,
    /// Expected size of the measurement in bytes.
    pub size: usize,
    /// Resource name (informational).
    pub name: String,
    /// Accepted values (`Hash0`, `Hash1`, ...): any one matching suffices.
    #[serde(serialize_with = "hex_list")]
    pub alternatives: Vec<Vec<u8>>,
}

fn hex_list<S: serde::Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(hex::encode))
}

/// Canonicalization methods named by the RIM's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct C14nMethod {
    mode: C14nMode,
    with_comments: bool,
}

fn c14n_method(uri: &str) -> Option<C14nMethod> {
    let (mode, with_comments) = match uri {
        ALG_C14N10 => (C14nMode::Inclusive10, false),
        ALG_C14N10_COMMENTS => (C14nMode::Inclusive10, true),
        ALG_C14N11 => (C14nMode::Inclusive11, false),
        ALG_C14N11_COMMENTS => (C14nMode::Inclusive11, true),
        ALG_EXC_C14N => (C14nMode::Exclusive10, false),
        ALG_EXC_C14N_COMMENTS => (C14nMode::Exclusive10, true),
        _ => return None,
    };
    Some(C14nMethod {
        mode,
        with_comments,
    })
}

/// The XML-DSig parts of a RIM, with the canonical forms already computed from
/// the parsed document.
#[derive(Debug, Clone)]
pub struct RimSignature {
    /// `ds:CanonicalizationMethod/@Algorithm`.
    pub canonicalization: String,
    /// `ds:Reference/ds:DigestMethod/@Algorithm`.
    pub digest_method: String,
    /// `ds:DigestValue`, decoded.
    pub digest_value: Vec<u8>,
    /// The digest of the canonicalized document minus the signature.
    pub computed_digest: Vec<u8>,
    /// Canonical `ds:SignedInfo`: the bytes the signature covers.
    pub signed_info_c14n: Vec<u8>,
    /// `ds:SignatureValue`, decoded (r || s for ECDSA, RFC 4051 §3.3).
    pub signature_value: Vec<u8>,
    /// `ds:KeyInfo/ds:X509Data/ds:X509Certificate`s in document order (signer first).
    pub certificates: Vec<Cert>,
}

/// A parsed RIM.
#[derive(Debug, Clone)]
pub struct Rim {
    /// Driver or VBIOS, from the version's notation.
    pub kind: RimKind,
    /// `swid:Meta/@colloquialVersion`: the firmware version this RIM describes.
    pub version: String,
    /// `SoftwareIdentity/@tagId`.
    pub tag_id: String,
    /// `swid:Meta/@product`, e.g. "GH100".
    pub product: String,
    pub measurements: Vec<GoldenMeasurement>,
    pub signature: RimSignature,
    /// SHA-256 of the file as given (what the policy pins).
    pub file_sha256: [u8; 32],
}

impl Rim {
    /// Parse a RIM and compute what its signature check needs. Fails only on
    /// input that is not a readable RIM; an invalid signature is a verdict, see
    /// [`Rim::verify_signature`].
    pub fn parse(bytes: &[u8]) -> Result<Self, RimError> {
        let doc = XmlDoc::parse(bytes, &[("swid", NS_SWID), ("ds", NS_DS), ("h", NS_SHA384)])?;
        if doc.xpath_count("count(/swid:SoftwareIdentity)")? != 1 {
            return Err(RimError::Missing {
                what: "root element swid:SoftwareIdentity".into(),
            });
        }
        let meta = "/swid:SoftwareIdentity/swid:Meta";
        if doc.xpath_count(&format!("count({meta})"))? != 1 {
            return Err(invalid(
                "swid:Meta",
                "",
                "exactly one Meta element required",
            ));
        }
        let version = doc.xpath_string(&format!("{meta}/@colloquialVersion"))?;
        let kind = classify_version(&version)?;
        let product = doc.xpath_string(&format!("{meta}/@product"))?;
        let tag_id = doc.xpath_string("/swid:SoftwareIdentity/@tagId")?;
        let measurements = parse_measurements(&doc)?;
        let signature = parse_signature(&doc)?;
        Ok(Self {
            kind,
            version,
            tag_id,
            product,
            measurements,
            signature,
            file_sha256: sha2::Sha256::digest(bytes).into(),
        })
    }

    /// Verify the XML signature: the reference digest, the ECDSA signature over
    /// canonical SignedInfo with the signer certificate's key, and the signer
    /// chain up to the pinned RIM root at `at`. Returns every failure.
    pub fn verify_signature(&self, rim_root: &Cert, at: u64) -> Vec<RimSignatureIssue> {
        let s = &self.signature;
        let mut issues = Vec::new();
        if s.computed_digest != s.digest_value {
            issues.push(RimSignatureIssue::DigestMismatch {
                expected: hex::encode(&s.digest_value),
                computed: hex::encode(&s.computed_digest),
            });
        }
        match s.certificates.first() {
            None => issues.push(RimSignatureIssue::NoSigner),
            Some(signer) => {
                match signer.p384_key() {
                    Err(why) => issues.push(RimSignatureIssue::SignatureInvalid(why)),
                    Ok(key) => {
                        use p384::ecdsa::signature::Verifier;
                        let ok = p384::ecdsa::Signature::from_slice(&s.signature_value)
                            .map(|sig| key.verify(&s.signed_info_c14n, &sig).is_ok())
                            .unwrap_or(false);
                        if !ok {
                            issues.push(RimSignatureIssue::SignatureInvalid(format!(
                                "SignatureValue does not verify with the key of {}",
                                signer.subject()
                            )));
                        }
                    }
                }
                for issue in certs::verify_chain(&s.certificates, rim_root, at) {
                    issues.push(RimSignatureIssue::Chain(issue));
                }
            }
        }
        issues
    }

    /// The active golden measurements.
    pub fn active(&self) -> impl Iterator<Item = &GoldenMeasurement> {
        self.measurements.iter().filter(|m| m.active)
    }
}

/// Why a RIM's signature is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RimSignatureIssue {
    /// The signed document (minus the signature) was changed.
    DigestMismatch { expected: String, computed: String },
    /// SignatureValue does not verify over canonical SignedInfo.
    SignatureInvalid(String),
    /// No signer certificate in KeyInfo.
    NoSigner,
    /// The signer chain does not verify to the pinned RIM root.
    Chain(certs::ChainIssue),
}

/// Driver versions are decimal ("550.90.07"); VBIOS versions are five dotted
/// two-digit hex groups ("96.00.5E.00.01"). NVIDIA's RIM says which it is only
/// through this notation (and the file name).
fn classify_version(v: &str) -> Result<RimKind, RimError> {
    let parts: Vec<&str> = v.split('.').collect();
    let hex2 = |p: &&str| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit());
    if parts.len() == 5 && parts.iter().all(hex2) {
        return Ok(RimKind::Vbios);
    }
    if (2..=4).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()))
    {
        return Ok(RimKind::Driver);
    }
    Err(invalid(
        "swid:Meta/@colloquialVersion",
        v,
        "neither a driver version (550.90.07) nor a VBIOS version (96.00.5E.00.01)",
    ))
}

fn parse_measurements(doc: &XmlDoc) -> Result<Vec<GoldenMeasurement>, RimError> {
    let n = doc.xpath_count(&format!("count({RESOURCES})"))?;
    if n == 0 {
        return Err(RimError::Missing {
            what: "swid:Payload/swid:Resource[@type='Measurement']".into(),
        });
    }
    if n > MAX_RESOURCES {
        return Err(invalid(
            "swid:Resource",
            n.to_string(),
            format!("more than {MAX_RESOURCES} resources"),
        ));
    }
    let mut out: Vec<GoldenMeasurement> = Vec::with_capacity(n);
    for k in 1..=n {
        let res = format!("({RESOURCES})[{k}]");
        let attr = |name: &str| doc.xpath_string(&format!("{res}/@{name}"));
        let field = |name: &str| format!("Resource[{k}]/@{name}");

        let index_s = attr("index")?;
        let index: u32 = index_s
            .parse()
            .map_err(|_| invalid(field("index"), &index_s, "not a decimal integer"))?;
        if out.iter().any(|m| m.index == index) {
            return Err(invalid(field("index"), &index_s, "duplicate index"));
        }
        let active_s = attr("active")?;
        let active = match active_s.as_str() {
            "True" | "true" | "1" => true,
            "False" | "false" | "0" => false,
            _ => return Err(invalid(field("active"), &active_s, "not a boolean")),
        };
        let size_s = attr("size")?;
        let size: usize = size_s
            .parse()
            .ok()
            .filter(|s| *s > 0 && *s <= 64)
            .ok_or_else(|| invalid(field("size"), &size_s, "not a size in 1..=64"))?;
        let alt_s = attr("alternatives")?;
        let alternatives: usize = alt_s
            .parse()
            .ok()
            .filter(|a| *a >= 1 && *a <= MAX_ALTERNATIVES)
            .ok_or_else(|| {
                invalid(
                    field("alternatives"),
                    &alt_s,
                    format!("not a count in 1..={MAX_ALTERNATIVES}"),
                )
            })?;
        let hash_attrs = doc.xpath_count(&format!("count({res}/@h:*)"))?;
        if hash_attrs != alternatives {
            return Err(invalid(
                field("alternatives"),
                &alt_s,
                format!("but {hash_attrs} sha384 hash attributes are present"),
            ));
        }
        let mut values = Vec::with_capacity(alternatives);
        for j in 0..alternatives {
            let name = format!("Hash{j}");
            let hex_s = doc.xpath_string(&format!("{res}/@h:{name}"))?;
            let v = hex::decode(&hex_s)
                .map_err(|_| invalid(field(&format!("sha384:{name}")), &hex_s, "not hex"))?;
            if v.len() != size {
                return Err(invalid(
                    field(&format!("sha384:{name}")),
                    &hex_s,
                    format!("{} bytes, but size says {size}", v.len()),
                ));
            }
            values.push(v);
        }
        out.push(GoldenMeasurement {
            index,
            active,
            size,
            name: attr("name")?,
            alternatives: values,
        });
    }
    Ok(out)
}

fn one(doc: &XmlDoc, path: &str, what: &str) -> Result<(), RimError> {
    match doc.xpath_count(&format!("count({path})"))? {
        1 => Ok(()),
        0 => Err(RimError::Missing { what: what.into() }),
        n => Err(invalid(what, n.to_string(), "must occur exactly once")),
    }
}

fn b64(field: &str, text: &str) -> Result<Vec<u8>, RimError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| {
            invalid(
                field,
                text.chars().take(40).collect::<String>(),
                e.to_string(),
            )
        })
}

fn parse_signature(doc: &XmlDoc) -> Result<RimSignature, RimError> {
    // Exactly one signature, a child of the root: the enveloped-signature
    // transform (XML-DSig §6.6.4) then removes precisely that element.
    if doc.xpath_count("count(//ds:Signature)")? != 1 {
        one(doc, "//ds:Signature", "ds:Signature")?;
    }
    one(doc, SIG, "ds:Signature as a child of SoftwareIdentity")?;
    if doc.xpath_count("count(//ds:SignedInfo)")? != 1 {
        return Err(invalid("ds:SignedInfo", "", "must occur exactly once"));
    }
    one(doc, SIGNED_INFO, "ds:SignedInfo")?;
    one(doc, REFERENCE, "ds:Reference (exactly one)")?;

    let canonicalization = doc.xpath_string(&format!(
        "{SIGNED_INFO}/ds:CanonicalizationMethod/@Algorithm"
    ))?;
    let si_method = c14n_method(&canonicalization).ok_or_else(|| RimError::Unsupported {
        what: "CanonicalizationMethod".into(),
        value: canonicalization.clone(),
    })?;
    if doc.xpath_count(&format!(
        "count({SIGNED_INFO}//*[local-name()='InclusiveNamespaces'])"
    ))? != 0
    {
        return Err(RimError::Unsupported {
            what: "exclusive C14N InclusiveNamespaces prefix list".into(),
            value: "present".into(),
        });
    }
    let sig_method = doc.xpath_string(&format!("{SIGNED_INFO}/ds:SignatureMethod/@Algorithm"))?;
    if sig_method != ALG_ECDSA_SHA384 {
        return Err(RimError::Unsupported {
            what: "SignatureMethod".into(),
            value: sig_method,
        });
    }

    // Same-document reference to the whole document (URI=""), XML-DSig §4.4.3.3.
    if !doc.xpath_bool(&format!("{REFERENCE}/@URI"))?
        || !doc.xpath_string(&format!("{REFERENCE}/@URI"))?.is_empty()
    {
        return Err(RimError::Unsupported {
            what: "Reference URI (only URI=\"\" is accepted)".into(),
            value: doc.xpath_string(&format!("{REFERENCE}/@URI"))?,
        });
    }
    let transforms_n =
        doc.xpath_count(&format!("count({REFERENCE}/ds:Transforms/ds:Transform)"))?;
    let mut transforms = Vec::new();
    for k in 1..=transforms_n.min(8) {
        transforms.push(doc.xpath_string(&format!(
            "({REFERENCE}/ds:Transforms/ds:Transform)[{k}]/@Algorithm"
        ))?);
    }
    // Accepted: enveloped-signature, optionally followed by one canonicalization.
    // Without an explicit one, the node-set becomes octets by C14N 1.0 (§4.4.3.2).
    let ref_method = match transforms.as_slice() {
        [env] if env == ALG_ENVELOPED => C14nMethod {
            mode: C14nMode::Inclusive10,
            with_comments: false,
        },
        [env, c] if env == ALG_ENVELOPED => {
            c14n_method(c).ok_or_else(|| RimError::Unsupported {
                what: "Reference transform".into(),
                value: c.clone(),
            })?
        }
        _ => {
            return Err(RimError::Unsupported {
                what: "Reference transforms".into(),
                value: transforms.join(", "),
            })
        }
    };
    let digest_method = doc.xpath_string(&format!("{REFERENCE}/ds:DigestMethod/@Algorithm"))?;
    let digest_value = b64(
        "ds:DigestValue",
        &doc.xpath_string(&format!("{REFERENCE}/ds:DigestValue"))?,
    )?;
    let signature_value = b64(
        "ds:SignatureValue",
        &doc.xpath_string(&format!("{SIG}/ds:SignatureValue"))?,
    )?;

    // URI="" selects every node but comments; the enveloped transform removes the
    // Signature subtree. Comments are therefore never part of this digest.
    let referenced = doc.canonicalize(
        Some("(//. | //@* | //namespace::*)[not(ancestor-or-self::ds:Signature)]"),
        ref_method.mode,
        false,
    )?;
    let computed_digest = match digest_method.as_str() {
        ALG_SHA256 => sha2::Sha256::digest(&referenced).to_vec(),
        ALG_SHA384 => sha2::Sha384::digest(&referenced).to_vec(),
        ALG_SHA512 => sha2::Sha512::digest(&referenced).to_vec(),
        _ => {
            return Err(RimError::Unsupported {
                what: "DigestMethod".into(),
                value: digest_method,
            })
        }
    };
    let signed_info_c14n = doc.canonicalize(
        Some("(//. | //@* | //namespace::*)[ancestor-or-self::ds:SignedInfo]"),
        si_method.mode,
        si_method.with_comments,
    )?;

    let x509 = format!("{SIG}/ds:KeyInfo/ds:X509Data/ds:X509Certificate");
    let n_certs = doc.xpath_count(&format!("count({x509})"))?;
    if n_certs > MAX_KEYINFO_CERTS {
        return Err(invalid(
            "ds:X509Certificate",
            n_certs.to_string(),
            format!("more than {MAX_KEYINFO_CERTS}"),
        ));
    }
    let mut certificates = Vec::with_capacity(n_certs);
    for k in 1..=n_certs {
        let der = b64(
            "ds:X509Certificate",
            &doc.xpath_string(&format!("({x509})[{k}]"))?,
        )?;
        certificates.push(Cert::from_der(&der, k.saturating_sub(1))?);
    }
    Ok(RimSignature {
        canonicalization,
        digest_method,
        digest_value,
        computed_digest,
        signed_info_c14n,
        signature_value,
        certificates,
    })
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn version_notation_decides_the_kind() {
        assert_eq!(classify_version("96.00.5E.00.01").unwrap(), RimKind::Vbios);
        assert_eq!(classify_version("550.90.07").unwrap(), RimKind::Driver);
        assert_eq!(classify_version("545.00").unwrap(), RimKind::Driver);
        assert!(classify_version("").is_err());
        assert!(classify_version("96.00.5G.00.01").is_err());
    }

    #[test]
    fn non_rim_xml_is_malformed_not_a_panic() {
        assert!(matches!(Rim::parse(b"<a/>"), Err(RimError::Missing { .. })));
        assert!(matches!(Rim::parse(b"\xff\xfe"), Err(RimError::Xml(_))));
    }
}
