//! A simulated NVIDIA PKI (root -> CA -> device leaf with a DICE FWID, plus an OCSP
//! responder) driving the production verifier: signed SPDM reports and stapled
//! OCSP responses built here go through `gpu::verify`, never around it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::str::FromStr;
use std::time::Duration;

use cocoon_measurements::gpu::{
    self, certs::Cert, ocsp, CcMode, GpuEvidence, GpuPolicy, NonceBinding, VerifyOptions,
};
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, GeneralizedTime, OctetString, UtcTime};
use der::Encode;
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{DerSignature, Signature, SigningKey};
use sha2::Digest;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspResponse, OcspResponseStatus,
    ResponderId, ResponseBytes, ResponseData, RevokedInfo, SingleResponse, Version,
};

/// 2025-01-01T00:00:00Z; every certificate here is valid 2024-01-01..2030-01-01.
const AT: u64 = 1_735_689_600;
const NOT_BEFORE: u64 = 1_704_067_200;
const NOT_AFTER: u64 = 1_893_456_000;
const FWID: [u8; 48] = [0x5a; 48];
const NONCE: [u8; 32] = [0x42; 32];

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 48].into()).unwrap()
}

fn validity() -> Validity {
    Validity {
        not_before: Time::UtcTime(
            UtcTime::from_unix_duration(Duration::from_secs(NOT_BEFORE)).unwrap(),
        ),
        not_after: Time::UtcTime(
            UtcTime::from_unix_duration(Duration::from_secs(NOT_AFTER)).unwrap(),
        ),
    }
}

/// TCG DICE TcbInfo with `fwids [6]` holding one sha384 FWID (the TCG form; the
/// real Hopper leaves use NVIDIA's flat form, covered by the real-data tests).
fn tcb_info(fwid: &[u8; 48]) -> Vec<u8> {
    // SEQUENCE { [6] { SEQUENCE { OID sha384, OCTET STRING fwid } } }
    let oid = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2")
        .to_der()
        .unwrap();
    let digest = OctetString::new(fwid.to_vec()).unwrap().to_der().unwrap();
    let fwid_seq = tlv(0x30, &[oid, digest].concat());
    let fwids = tlv(0xA6, &fwid_seq);
    tlv(0x30, &fwids)
}

fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    assert!(value.len() < 128);
    [vec![tag, value.len() as u8], value.to_vec()].concat()
}

const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");

fn ext(oid: &str, critical: bool, value: Vec<u8>) -> Extension {
    Extension {
        extn_id: ObjectIdentifier::new_unwrap(oid),
        critical,
        extn_value: OctetString::new(value).unwrap(),
    }
}

fn ca_exts(path_len: Option<u8>) -> Vec<Extension> {
    vec![
        ext(
            "2.5.29.19",
            true,
            BasicConstraints {
                ca: true,
                path_len_constraint: path_len,
            }
            .to_der()
            .unwrap(),
        ),
        ext(
            "2.5.29.15",
            true,
            KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
                .to_der()
                .unwrap(),
        ),
    ]
}

fn signing_exts() -> Vec<Extension> {
    vec![ext(
        "2.5.29.15",
        true,
        KeyUsage(KeyUsages::DigitalSignature.into())
            .to_der()
            .unwrap(),
    )]
}

/// An ECDSA P-384 / SHA-384 certificate, assembled field by field.
fn make_cert(
    subject: &Name,
    issuer: &Name,
    serial: u32,
    k: &SigningKey,
    signer: &SigningKey,
    extensions: Vec<Extension>,
) -> Cert {
    let tbs = TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: SerialNumber::from(serial),
        signature: AlgorithmIdentifierOwned {
            oid: ECDSA_SHA384,
            parameters: None,
        },
        issuer: issuer.clone(),
        validity: validity(),
        subject: subject.clone(),
        subject_public_key_info: spki(k),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let sig: DerSignature = signer.sign(&tbs.to_der().unwrap());
    let c = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: ECDSA_SHA384,
            parameters: None,
        },
        signature: BitString::from_bytes(sig.as_bytes()).unwrap(),
    };
    Cert::from_der(&c.to_der().unwrap(), 0).unwrap()
}

struct Pki {
    root_key: SigningKey,
    ca_key: SigningKey,
    leaf_key: SigningKey,
    root: Cert,
    ca: Cert,
    leaf: Cert,
}

fn spki(k: &SigningKey) -> SubjectPublicKeyInfoOwned {
    let point = k.verifying_key().to_encoded_point(false);
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.2.840.10045.2.1"),
            parameters: Some(der::Any::from(&ObjectIdentifier::new_unwrap(
                "1.3.132.0.34",
            ))),
        },
        subject_public_key: BitString::from_bytes(point.as_bytes()).unwrap(),
    }
}

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn pki() -> Pki {
    let (root_key, ca_key, leaf_key) = (key(1), key(2), key(3));
    let root_name = name("CN=Sim Device Root,O=Test");
    let ca_name = name("CN=Sim GH100 CA,O=Test");
    let root = make_cert(
        &root_name,
        &root_name,
        1,
        &root_key,
        &root_key,
        ca_exts(None),
    );
    let ca = make_cert(
        &ca_name,
        &root_name,
        2,
        &ca_key,
        &root_key,
        ca_exts(Some(0)),
    );
    let mut leaf_exts = signing_exts();
    leaf_exts.push(ext("2.23.133.5.4.1", false, tcb_info(&FWID)));
    let leaf = make_cert(
        &name("CN=Sim GSP FMC LF,O=Test"),
        &ca_name,
        3,
        &leaf_key,
        &ca_key,
        leaf_exts,
    );
    Pki {
        root_key,
        ca_key,
        leaf_key,
        root,
        ca,
        leaf,
    }
}

/// An SPDM 1.1 request || response with the given opaque records, signed by `k`.
fn report(k: &SigningKey, nonce: [u8; 32], opaque: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut v = vec![0x11, 0xE0, 0x01, 0xFF];
    v.extend(nonce);
    v.push(0);
    let mut rec = Vec::new();
    for i in 1..=4u8 {
        rec.extend([i, 1, 51, 0, 1, 48, 0]);
        rec.extend([i; 48]);
    }
    v.extend([0x11, 0x60, 0, 0, 4]);
    v.extend(&(rec.len() as u32).to_le_bytes()[..3]);
    v.extend(rec);
    v.extend([0u8; 32]);
    let mut op = Vec::new();
    for (t, val) in opaque {
        op.extend(t.to_le_bytes());
        op.extend((val.len() as u16).to_le_bytes());
        op.extend(val);
    }
    v.extend((op.len() as u16).to_le_bytes());
    v.extend(op);
    let sig: Signature = k.sign(&v);
    v.extend(sig.to_bytes());
    v
}

fn standard_opaque() -> Vec<(u16, Vec<u8>)> {
    vec![
        (3, b"550.90.07\0".to_vec()),
        (6, vec![0x00, 0x9f, 0x00, 0x96, 0x01, 0, 0, 0]),
        (20, FWID.to_vec()),
    ]
}

fn gtime(t: u64) -> OcspGeneralizedTime {
    OcspGeneralizedTime(GeneralizedTime::from_unix_duration(Duration::from_secs(t)).unwrap())
}

/// A DER OCSPResponse about `subject` (issued by `issuer`), signed by `signer`,
/// naming `responder`, carrying `extra_certs`.
fn ocsp_response(
    subject: &Cert,
    issuer: &Cert,
    status: CertStatus,
    window: (u64, u64),
    signer: &SigningKey,
    responder: &Name,
    extra_certs: Option<Vec<Certificate>>,
) -> Vec<u8> {
    let sha1 = |d: &[u8]| -> Vec<u8> { sha1::Sha1::digest(d).to_vec() };
    let itbs = &issuer.cert.tbs_certificate;
    let cert_id = CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.3.14.3.2.26"),
            parameters: None,
        },
        issuer_name_hash: OctetString::new(sha1(&itbs.subject.to_der().unwrap())).unwrap(),
        issuer_key_hash: OctetString::new(sha1(
            itbs.subject_public_key_info.subject_public_key.raw_bytes(),
        ))
        .unwrap(),
        serial_number: subject.cert.tbs_certificate.serial_number.clone(),
    };
    let data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByName(responder.clone()),
        produced_at: gtime(window.0),
        responses: vec![SingleResponse {
            cert_id,
            cert_status: status,
            this_update: gtime(window.0),
            next_update: Some(gtime(window.1)),
            single_extensions: None,
        }],
        response_extensions: None,
    };
    let sig: DerSignature = signer.sign(&data.to_der().unwrap());
    let basic = BasicOcspResponse {
        tbs_response_data: data,
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3"),
            parameters: None,
        },
        signature: BitString::from_bytes(sig.as_bytes()).unwrap(),
        certs: extra_certs,
    };
    OcspResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1"),
            response: OctetString::new(basic.to_der().unwrap()).unwrap(),
        }),
    }
    .to_der()
    .unwrap()
}

fn good_ocsp(p: &Pki) -> Vec<u8> {
    ocsp_response(
        &p.ca,
        &p.root,
        CertStatus::good(),
        (AT - 3600, AT + 3600),
        &p.root_key,
        &p.root.cert.tbs_certificate.subject,
        None,
    )
}

fn options(p: &Pki, policy: Option<GpuPolicy>) -> VerifyOptions {
    VerifyOptions {
        at: AT,
        expected_nonce: Some(NONCE),
        device_root: p.root.clone(),
        rim_root: p.root.clone(),
        rims: Vec::new(),
        policy,
    }
}

fn evidence(p: &Pki, ocsp: Vec<Vec<u8>>) -> GpuEvidence {
    GpuEvidence {
        report: report(&p.leaf_key, NONCE, &standard_opaque()),
        chain: vec![p.leaf.clone(), p.ca.clone()],
        claimed_nonce: Some(NONCE),
        cc_mode: Some(CcMode::On),
        ocsp,
    }
}

fn policy() -> GpuPolicy {
    GpuPolicy {
        allowed_driver_versions: vec!["550.90.07".into()],
        allowed_vbios_versions: vec!["96.00.9F.00.01".into()],
        require_driver_rim: false,
        require_vbios_rim: false,
        nonce_binding: NonceBinding::Caller,
        ..GpuPolicy::default()
    }
}

fn codes(v: &gpu::GpuVerdict) -> Vec<&str> {
    v.reasons.iter().map(|r| r.code.as_str()).collect()
}

#[test]
fn simulated_gpu_with_good_ocsp_is_accepted() {
    let p = pki();
    let v = gpu::verify(
        &evidence(&p, vec![good_ocsp(&p)]),
        &options(&p, Some(policy())),
    )
    .unwrap();
    assert!(v.accepted(), "{:?}", v.reasons);
    assert_eq!(v.ocsp_good, vec![p.ca.subject()]);
    assert_eq!(v.fwid.as_deref(), Some(hex::encode(FWID).as_str()));
}

#[test]
fn missing_ocsp_rejects_unless_the_policy_tolerates_it() {
    let p = pki();
    let v = gpu::verify(&evidence(&p, vec![]), &options(&p, Some(policy()))).unwrap();
    assert_eq!(codes(&v), ["ocsp_missing"]);
    let tolerant = GpuPolicy {
        allow_missing_ocsp: true,
        ..policy()
    };
    let v = gpu::verify(&evidence(&p, vec![]), &options(&p, Some(tolerant))).unwrap();
    assert!(v.accepted(), "{:?}", v.reasons);
}

#[test]
fn revoked_certificate_rejects_even_when_missing_is_tolerated() {
    let p = pki();
    let revoked = ocsp_response(
        &p.ca,
        &p.root,
        CertStatus::revoked(RevokedInfo {
            revocation_time: gtime(AT - 7200),
            revocation_reason: None,
        }),
        (AT - 3600, AT + 3600),
        &p.root_key,
        &p.root.cert.tbs_certificate.subject,
        None,
    );
    let tolerant = GpuPolicy {
        allow_missing_ocsp: true,
        ..policy()
    };
    let v = gpu::verify(&evidence(&p, vec![revoked]), &options(&p, Some(tolerant))).unwrap();
    assert_eq!(codes(&v), ["device_cert_revoked"]);
}

#[test]
fn ocsp_signed_by_a_stranger_or_stale_is_invalid() {
    let p = pki();
    let forged = ocsp_response(
        &p.ca,
        &p.root,
        CertStatus::good(),
        (AT - 3600, AT + 3600),
        &key(9),
        &p.root.cert.tbs_certificate.subject,
        None,
    );
    let v = gpu::verify(&evidence(&p, vec![forged]), &options(&p, Some(policy()))).unwrap();
    assert_eq!(codes(&v), ["ocsp_response_invalid"], "{:?}", v.reasons);
    let stale = ocsp_response(
        &p.ca,
        &p.root,
        CertStatus::good(),
        (AT - 7200, AT - 3600),
        &p.root_key,
        &p.root.cert.tbs_certificate.subject,
        None,
    );
    let v = gpu::verify(&evidence(&p, vec![stale]), &options(&p, Some(policy()))).unwrap();
    assert_eq!(codes(&v), ["ocsp_response_invalid"], "{:?}", v.reasons);
}

#[test]
fn delegated_responder_needs_the_ocsp_signing_purpose() {
    let p = pki();
    let responder_key = key(7);
    let responder_name = name("CN=Sim OCSP Responder,O=Test");
    let build = |eku: bool| {
        let mut exts = signing_exts();
        if eku {
            exts.push(ext(
                "2.5.29.37",
                false,
                ExtendedKeyUsage(vec![ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9")])
                    .to_der()
                    .unwrap(),
            ));
        }
        make_cert(
            &responder_name,
            &p.root.cert.tbs_certificate.subject,
            70,
            &responder_key,
            &p.root_key,
            exts,
        )
        .cert
    };
    for (eku, accepted) in [(true, true), (false, false)] {
        let resp = ocsp_response(
            &p.ca,
            &p.root,
            CertStatus::good(),
            (AT - 3600, AT + 3600),
            &responder_key,
            &responder_name,
            Some(vec![build(eku)]),
        );
        let v = gpu::verify(&evidence(&p, vec![resp]), &options(&p, Some(policy()))).unwrap();
        assert_eq!(v.accepted(), accepted, "eku={eku}: {:?}", v.reasons);
    }
}

#[test]
fn ocsp_parser_refuses_garbage_and_unsuccessful_responses() {
    assert!(ocsp::parse(b"\x30\x03\x0a\x01\x00").is_err());
    assert!(ocsp::parse(b"not der").is_err());
    let try_later = OcspResponse {
        response_status: OcspResponseStatus::TryLater,
        response_bytes: None,
    }
    .to_der()
    .unwrap();
    assert!(ocsp::parse(&try_later).unwrap_err().contains("TryLater"));
    // Malformed OCSP input is an error (exit 2), not a verdict.
    let p = pki();
    let e = gpu::verify(
        &evidence(&p, vec![b"junk".to_vec()]),
        &options(&p, Some(policy())),
    );
    assert!(
        matches!(e, Err(gpu::GpuError::Ocsp { index: 0, .. })),
        "{e:?}"
    );
}

#[test]
fn simulated_failures_are_all_reported_together() {
    let p = pki();
    let mut ev = evidence(&p, vec![]);
    // Signed by the CA key instead of the leaf, with another FWID and nonce.
    let mut opaque = standard_opaque();
    opaque[2].1 = vec![0u8; 48];
    ev.report = report(&p.ca_key, [0u8; 32], &opaque);
    ev.cc_mode = Some(CcMode::DevTools);
    let mut opts = options(
        &p,
        Some(GpuPolicy {
            allowed_driver_versions: vec![],
            ..policy()
        }),
    );
    opts.at = NOT_AFTER + 1;
    let v = gpu::verify(&ev, &opts).unwrap();
    let c = codes(&v);
    for want in [
        "report_signature_invalid",
        "device_cert_expired",
        "fwid_mismatch",
        "nonce_mismatch",
        "evidence_nonce_mismatch",
        "driver_version_not_allowed",
        "dev_tools_enabled",
        "ocsp_missing",
    ] {
        assert!(c.contains(&want), "{want} not in {c:?}");
    }
    // The CA is a CA, so the leaf key usage is fine; but a leaf used as an
    // issuer is not: put the leaf where the CA belongs.
    let ev2 = GpuEvidence {
        chain: vec![p.leaf.clone(), p.leaf.clone()],
        ..evidence(&p, vec![])
    };
    let v = gpu::verify(&ev2, &options(&p, None)).unwrap();
    let c = codes(&v);
    assert!(c.contains(&"device_cert_not_ca"), "{c:?}");
}

#[test]
fn tcg_form_fwid_is_read_from_the_certificate() {
    let p = pki();
    assert_eq!(p.leaf.fwid_sha384().unwrap(), Some(FWID.to_vec()));
    assert_eq!(p.ca.fwid_sha384().unwrap(), None);
}
