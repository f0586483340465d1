//! Certificates and CRLs of the simulated provisioning PKI.
//!
//! Shapes follow Intel's "SGX PCK Certificate and Certificate Revocation List Profile
//! Specification": a self-signed root CA (pathLen 1), a PCK Platform CA (pathLen 0)
//! issuing the PCK leaf, and a TCB signing certificate issued directly by the root.
//! dcap-qvl verifies every chain with webpki, which requires: v3 certificates, positive
//! serials of at most 20 bytes, ecdsa-with-SHA256 and P-256 keys throughout, CA:TRUE with
//! keyCertSign on issuers, cRLSign on CRL issuers, no unknown critical extension, and for
//! every certificate below the anchor a v2 CRL from its issuer that is unexpired at `now`
//! (revocation depth Chain, unknown status denied).

use std::str::FromStr as _;

use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{Any, BitString, OctetString, OctetStringRef};
use der::Tag;
use p256::ecdsa::SigningKey;
use sha2::{Digest as _, Sha256};
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::crl::{CertificateList, TbsCertList};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::Validity;

use super::der_util::{derive_key, pem, sign_der, to_der, x509_time};
use super::{derive_bytes, SimConfig, SimError, SimPlatform};

const ORGANIZATION: &str = "COCOON Simulated TEE";
pub(super) const ROOT_CN: &str = "Simulated SGX Root CA";
/// "Platform" in the issuer name makes dcap-qvl classify the leaf as Platform-CA issued
/// (`PckCa::Platform`), like Intel's "Intel SGX PCK Platform CA".
pub(super) const PCK_CA_CN: &str = "Simulated SGX PCK Platform CA";
pub(super) const PCK_LEAF_CN: &str = "Simulated SGX PCK Certificate";
pub(super) const TCB_SIGNER_CN: &str = "Simulated SGX TCB Signing";

/// Intel SGX extension and its sub-fields (PCK profile specification, section 1.3.5).
const SGX_EXTENSION: &str = "1.2.840.113741.1.13.1";

/// The private keys of the PKI and platform, each derived from the seed under its own label.
pub(super) struct Keys {
    pub root: SigningKey,
    pub pck_ca: SigningKey,
    pub pck: SigningKey,
    pub tcb_signer: SigningKey,
    pub attestation: SigningKey,
}

impl Keys {
    pub fn derive(seed: &[u8; 32]) -> Result<Self, SimError> {
        Ok(Keys {
            root: derive_key(seed, "root ca key")?,
            pck_ca: derive_key(seed, "pck platform ca key")?,
            pck: derive_key(seed, "pck key")?,
            tcb_signer: derive_key(seed, "tcb signing key")?,
            attestation: derive_key(seed, "attestation key")?,
        })
    }
}

/// DER of every certificate and CRL.
pub(super) struct Certs {
    pub root: Vec<u8>,
    pub pck_ca: Vec<u8>,
    pub pck_leaf: Vec<u8>,
    pub tcb_signer: Vec<u8>,
    pub root_ca_crl: Vec<u8>,
    pub pck_crl: Vec<u8>,
}

impl Certs {
    fn chain(certs: &[&[u8]]) -> String {
        certs.iter().map(|der| pem("CERTIFICATE", der)).collect()
    }

    pub fn pck_chain_pem(&self) -> String {
        Self::chain(&[&self.pck_leaf, &self.pck_ca, &self.root])
    }

    /// Issuer chain of the PCK CRL: PCK Platform CA, root.
    pub fn pck_crl_chain_pem(&self) -> String {
        Self::chain(&[&self.pck_ca, &self.root])
    }

    /// Issuer chain of the TCB info and QE identity: TCB signing certificate, root.
    pub fn tcb_chain_pem(&self) -> String {
        Self::chain(&[&self.tcb_signer, &self.root])
    }
}

enum Role {
    Root,
    Ca,
    Leaf,
}

struct Issuer<'a> {
    name: &'a Name,
    key: &'a SigningKey,
}

struct CertSpec<'a> {
    serial_label: &'static str,
    subject: &'a Name,
    subject_key: &'a SigningKey,
    issuer: Issuer<'a>,
    role: Role,
    extra: Vec<Extension>,
}

/// Issue every certificate and CRL for `config`.
pub(super) fn issue(config: &SimConfig, keys: &Keys) -> Result<Certs, SimError> {
    let root_name = name(ROOT_CN)?;
    let pck_ca_name = name(PCK_CA_CN)?;
    let root_issuer = || Issuer {
        name: &root_name,
        key: &keys.root,
    };
    let cert = |spec: CertSpec<'_>| build_cert(config, spec);

    let root = cert(CertSpec {
        serial_label: "root ca serial",
        subject: &root_name,
        subject_key: &keys.root,
        issuer: root_issuer(),
        role: Role::Root,
        extra: Vec::new(),
    })?;
    let pck_ca = cert(CertSpec {
        serial_label: "pck platform ca serial",
        subject: &pck_ca_name,
        subject_key: &keys.pck_ca,
        issuer: root_issuer(),
        role: Role::Ca,
        extra: Vec::new(),
    })?;
    let pck_leaf = cert(CertSpec {
        serial_label: "pck serial",
        subject: &name(PCK_LEAF_CN)?,
        subject_key: &keys.pck,
        issuer: Issuer {
            name: &pck_ca_name,
            key: &keys.pck_ca,
        },
        role: Role::Leaf,
        extra: vec![sgx_extension(&config.platform)?],
    })?;
    let tcb_signer = cert(CertSpec {
        serial_label: "tcb signing serial",
        subject: &name(TCB_SIGNER_CN)?,
        subject_key: &keys.tcb_signer,
        issuer: root_issuer(),
        role: Role::Leaf,
        extra: Vec::new(),
    })?;
    let root_ca_crl = build_crl(config, root_issuer())?;
    let pck_crl = build_crl(
        config,
        Issuer {
            name: &pck_ca_name,
            key: &keys.pck_ca,
        },
    )?;
    Ok(Certs {
        root,
        pck_ca,
        pck_leaf,
        tcb_signer,
        root_ca_crl,
        pck_crl,
    })
}

fn name(cn: &str) -> Result<Name, SimError> {
    Name::from_str(&format!("CN={cn},O={ORGANIZATION},C=US")).map_err(|source| SimError::Der {
        what: "distinguished name",
        source,
    })
}

fn ecdsa_with_sha256() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
        parameters: None,
    }
}

/// RFC 7093 §2 method 1: the leftmost 160 bits of SHA-256 over the subjectPublicKey bits.
fn key_id(key: &SigningKey) -> Result<OctetString, SimError> {
    let point = key.verifying_key().to_encoded_point(false);
    let hash = Sha256::digest(point.as_bytes());
    OctetString::new(hash.iter().take(20).copied().collect::<Vec<u8>>()).map_err(|source| {
        SimError::Der {
            what: "key identifier",
            source,
        }
    })
}

fn extension<T: der::Encode + AssociatedOid>(
    value: &T,
    critical: bool,
    what: &'static str,
) -> Result<Extension, SimError> {
    raw_extension(T::OID, critical, to_der(value, what)?, what)
}

fn raw_extension(
    oid: ObjectIdentifier,
    critical: bool,
    value_der: Vec<u8>,
    what: &'static str,
) -> Result<Extension, SimError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value_der).map_err(|source| SimError::Der { what, source })?,
    })
}

fn authority_key_id(issuer: &SigningKey) -> Result<Extension, SimError> {
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(key_id(issuer)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    extension(&aki, false, "authority key identifier")
}

/// A positive 16-byte serial with a non-zero leading byte, so its DER INTEGER is
/// exactly 16 bytes and webpki's serial checks pass.
fn serial(config: &SimConfig, label: &str) -> Result<SerialNumber, SimError> {
    let mut bytes: [u8; 16] = derive_bytes(&config.seed, label);
    if let Some(first) = bytes.first_mut() {
        *first = (*first & 0x7f) | 0x40;
    }
    SerialNumber::new(&bytes).map_err(|source| SimError::Der {
        what: "serial number",
        source,
    })
}

fn validity(config: &SimConfig) -> Result<Validity, SimError> {
    Ok(Validity {
        not_before: x509_time(config.not_before)?,
        not_after: x509_time(config.not_after)?,
    })
}

fn build_cert(config: &SimConfig, spec: CertSpec<'_>) -> Result<Vec<u8>, SimError> {
    let spki =
        SubjectPublicKeyInfoOwned::from_key(*spec.subject_key.verifying_key()).map_err(|e| {
            SimError::PublicKey {
                what: "certificate subject key",
                why: e.to_string(),
            }
        })?;
    // Intel's order: AKI, (CRL distribution point), SKI, key usage, basic constraints,
    // then the SGX extension on PCK leaves. No CRL distribution point here: webpki
    // ignores it when the CRL has no issuing distribution point, and there is no URL
    // to fetch from.
    let mut extensions = vec![
        authority_key_id(spec.issuer.key)?,
        extension(
            &SubjectKeyIdentifier(key_id(spec.subject_key)?),
            false,
            "subject key identifier",
        )?,
    ];
    let (usage, constraints) = match spec.role {
        Role::Root => (
            KeyUsages::KeyCertSign | KeyUsages::CRLSign,
            BasicConstraints {
                ca: true,
                path_len_constraint: Some(1),
            },
        ),
        Role::Ca => (
            KeyUsages::KeyCertSign | KeyUsages::CRLSign,
            BasicConstraints {
                ca: true,
                path_len_constraint: Some(0),
            },
        ),
        Role::Leaf => (
            KeyUsages::DigitalSignature | KeyUsages::NonRepudiation,
            BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
        ),
    };
    extensions.push(extension(&KeyUsage(usage), true, "key usage")?);
    extensions.push(extension(&constraints, true, "basic constraints")?);
    extensions.extend(spec.extra);

    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: serial(config, spec.serial_label)?,
        signature: ecdsa_with_sha256(),
        issuer: spec.issuer.name.clone(),
        validity: validity(config)?,
        subject: spec.subject.clone(),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let signature = sign_der(
        spec.issuer.key,
        &to_der(&tbs, "certificate body")?,
        "certificate",
    )?;
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: ecdsa_with_sha256(),
        signature: bit_string(&signature)?,
    };
    to_der(&cert, "certificate")
}

fn bit_string(bytes: &[u8]) -> Result<BitString, SimError> {
    BitString::from_bytes(bytes).map_err(|source| SimError::Der {
        what: "signature bit string",
        source,
    })
}

/// An empty v2 CRL valid over the whole window, with the CRL number and authority key
/// identifier RFC 5280 §5.2 requires (webpki rejects a CRL without the extensions field).
fn build_crl(config: &SimConfig, issuer: Issuer<'_>) -> Result<Vec<u8>, SimError> {
    let crl_number = raw_extension(
        const_oid::db::rfc5280::ID_CE_CRL_NUMBER,
        false,
        to_der(&1u32, "CRL number")?,
        "CRL number",
    )?;
    let tbs = TbsCertList {
        version: Version::V2,
        signature: ecdsa_with_sha256(),
        issuer: issuer.name.clone(),
        this_update: x509_time(config.not_before)?,
        next_update: Some(x509_time(config.not_after)?),
        revoked_certificates: None,
        crl_extensions: Some(vec![crl_number, authority_key_id(issuer.key)?]),
    };
    let signature = sign_der(issuer.key, &to_der(&tbs, "CRL body")?, "CRL")?;
    let crl = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: ecdsa_with_sha256(),
        signature: bit_string(&signature)?,
    };
    to_der(&crl, "CRL")
}

fn oid(dotted: &str) -> Result<ObjectIdentifier, SimError> {
    ObjectIdentifier::new(dotted).map_err(|e| SimError::Der {
        what: "SGX extension OID",
        source: der::Error::from(e),
    })
}

fn any(tag: Tag, value: &[u8], what: &'static str) -> Result<Vec<u8>, SimError> {
    let a = Any::new(tag, value).map_err(|source| SimError::Der { what, source })?;
    to_der(&a, what)
}

fn sequence(children: &[Vec<u8>], what: &'static str) -> Result<Vec<u8>, SimError> {
    any(Tag::Sequence, &children.concat(), what)
}

/// `SEQUENCE { OID <sgx-ext>.<suffix>, value }`, the shape of every SGX extension entry.
fn entry(suffix: &str, value_der: Vec<u8>) -> Result<Vec<u8>, SimError> {
    let id = to_der(&oid(&format!("{SGX_EXTENSION}.{suffix}"))?, "SGX OID")?;
    sequence(&[id, value_der], "SGX extension entry")
}

fn octets(bytes: &[u8]) -> Result<Vec<u8>, SimError> {
    let o = OctetStringRef::new(bytes).map_err(|source| SimError::Der {
        what: "SGX extension octets",
        source,
    })?;
    to_der(&o, "SGX extension octets")
}

/// The SGX extension of a PCK certificate (PCK profile specification, table "SGX
/// Extensions"): PPID, TCB (16 SGX components, PCESVN, CPUSVN), PCE-ID, FMSPC, SGX type,
/// and for Platform-CA certificates PlatformInstanceID and Configuration. dcap-qvl reads
/// CPUSVN, PCESVN and FMSPC from it to pick the TCB level; PPID, PCE-ID and SGX type are
/// required to be present.
fn sgx_extension(p: &SimPlatform) -> Result<Extension, SimError> {
    let mut tcb = Vec::with_capacity(18);
    for (i, svn) in (1u8..).zip(p.cpu_svn.iter()) {
        tcb.push(entry(&format!("2.{i}"), to_der(svn, "SGX TCB component")?)?);
    }
    tcb.push(entry("2.17", to_der(&p.pce_svn, "PCESVN")?)?);
    tcb.push(entry("2.18", octets(&p.cpu_svn)?)?);
    let configuration = sequence(
        &[
            entry("7.1", to_der(&p.dynamic_platform, "dynamic platform")?)?,
            entry("7.2", to_der(&p.cached_keys, "cached keys")?)?,
            entry("7.3", to_der(&p.smt_enabled, "SMT enabled")?)?,
        ],
        "SGX configuration",
    )?;
    let value = sequence(
        &[
            entry("1", octets(&p.ppid)?)?,
            entry("2", sequence(&tcb, "SGX TCB")?)?,
            entry("3", octets(&p.pce_id)?)?,
            entry("4", octets(&p.fmspc)?)?,
            entry("5", any(Tag::Enumerated, &[p.sgx_type], "SGX type")?)?,
            entry("6", octets(&p.platform_instance_id)?)?,
            entry("7", configuration)?,
        ],
        "SGX extension",
    )?;
    raw_extension(oid(SGX_EXTENSION)?, false, value, "SGX extension")
}
