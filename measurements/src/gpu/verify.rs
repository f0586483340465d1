//! The GPU verifier: every check on one GPU's evidence, all failures collected.
//!
//! Order of trust: the device chain is anchored at NVIDIA's pinned device root;
//! its leaf key authenticates the report; the report's request nonce binds it to
//! this session; the leaf's FWID must equal the firmware ID the report carries;
//! the report's measurements are compared with RIMs whose signatures chain to
//! NVIDIA's pinned RIM root. Nothing in the evidence is trusted before the check
//! that authenticates it, but every check still runs, so the verdict lists all
//! reasons.
#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use serde::Serialize;

use super::certs::{self, Cert};
use super::ocsp::{self, OcspScope};
use super::rim::{Rim, RimError, RimKind, RimSignatureIssue};
use super::spdm::{AttestationReport, SpdmError};
use super::{CcMode, GpuPolicy};

/// Evidence that cannot be evaluated at all (exit 2, not a verdict).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    #[error("attestation report: {0}")]
    Report(#[from] SpdmError),
    #[error("certificate chain is empty")]
    EmptyChain,
    #[error("RIM {label}: {source}")]
    Rim { label: String, source: RimError },
    #[error("OCSP response {index}: {why}")]
    Ocsp { index: usize, why: String },
}

/// A RIM as supplied: its bytes, a label for messages (the file name), and the
/// SHA-256 the policy pins for it, if any.
#[derive(Debug, Clone)]
pub struct RimInput {
    pub label: String,
    pub bytes: Vec<u8>,
    pub pinned_sha256: Option<[u8; 32]>,
}

/// Everything the verifier looks at for one GPU.
#[derive(Debug, Clone)]
pub struct GpuEvidence {
    /// SPDM request || response.
    pub report: Vec<u8>,
    /// Device certificate chain, leaf first.
    pub chain: Vec<Cert>,
    /// The nonce the evidence producer claims (JSON `nonce`), if given.
    pub claimed_nonce: Option<[u8; 32]>,
    /// CC mode as the agent read it from NVML (not covered by the GPU's signature;
    /// trusted only as far as the attested agent that reports it).
    pub cc_mode: Option<CcMode>,
    /// DER OCSP responses stapled with the evidence.
    pub ocsp: Vec<Vec<u8>>,
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Verification time, Unix seconds (certificate validity, OCSP freshness).
    pub at: u64,
    /// The nonce this verifier expects in the report's request.
    pub expected_nonce: Option<[u8; 32]>,
    /// NVIDIA's device identity root (pinned).
    pub device_root: Cert,
    /// NVIDIA's RIM signing root (pinned).
    pub rim_root: Cert,
    /// RIMs to compare against.
    pub rims: Vec<RimInput>,
    /// The `[gpu]` policy; `None` checks authenticity and RIMs only.
    pub policy: Option<GpuPolicy>,
}

/// One reason for rejection: a stable code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub code: String,
    pub message: String,
}

/// RIM comparison summary: RIM indices (0-based) that matched / did not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RimSummary {
    pub matched: Vec<u32>,
    pub mismatched: Vec<u32>,
    /// Each RIM given: label, kind, version, whether its signature verified.
    pub files: Vec<RimFileSummary>,
}

/// One RIM file's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RimFileSummary {
    pub label: String,
    pub kind: RimKind,
    pub version: String,
    pub signature_valid: bool,
}

/// The verdict on one GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GpuVerdict {
    /// "accepted" or "rejected".
    pub verdict: &'static str,
    /// Every failed check (empty when accepted).
    pub reasons: Vec<Reason>,
    pub driver_version: Option<String>,
    pub vbios_version: Option<String>,
    /// The report's request nonce (hex).
    pub nonce: String,
    pub project: Option<String>,
    pub project_sku: Option<String>,
    pub chip_sku: Option<String>,
    /// FWID from the report's opaque data (hex).
    pub fwid: Option<String>,
    /// Measurement blocks in the report.
    pub measurement_blocks: usize,
    pub rim: RimSummary,
    /// OCSP: certificates with a verified "good" status (subjects).
    pub ocsp_good: Vec<String>,
}

impl GpuVerdict {
    pub fn accepted(&self) -> bool {
        self.reasons.is_empty()
    }
}

struct Reasons(Vec<Reason>);

impl Reasons {
    fn add(&mut self, code: impl Into<String>, message: impl Into<String>) {
        self.0.push(Reason {
            code: code.into(),
            message: message.into(),
        });
    }
}

/// Verify one GPU's evidence.
pub fn verify(evidence: &GpuEvidence, opts: &VerifyOptions) -> Result<GpuVerdict, GpuError> {
    let report = AttestationReport::parse(&evidence.report)?;
    let leaf = evidence.chain.first().ok_or(GpuError::EmptyChain)?;
    let mut r = Reasons(Vec::new());

    // 1. The report is signed by the device leaf key.
    match leaf.p384_key() {
        Ok(key) => {
            if !report.verify_signature(&key) {
                r.add(
                    "report_signature_invalid",
                    format!(
                        "the report signature does not verify with the key of {}",
                        leaf.subject()
                    ),
                );
            }
        }
        Err(why) => r.add(
            "report_key_invalid",
            format!("device leaf certificate: {why}"),
        ),
    }

    // 2. The leaf chains to NVIDIA's device root.
    for issue in certs::verify_chain(&evidence.chain, &opts.device_root, opts.at) {
        r.add(
            format!("device_cert_{}", issue.kind.code()),
            format!(
                "device certificate {} ({}): {}",
                issue.position, issue.subject, issue.detail
            ),
        );
    }

    // 3. The firmware the leaf key was derived for is the firmware reporting.
    match (leaf.fwid_sha384(), report.fwid()) {
        (Ok(Some(cert_fwid)), Some(report_fwid)) if cert_fwid == report_fwid => {}
        (Ok(Some(cert_fwid)), Some(report_fwid)) => r.add(
            "fwid_mismatch",
            format!(
                "report FWID {} differs from the leaf certificate's {}",
                hex::encode(report_fwid),
                hex::encode(cert_fwid)
            ),
        ),
        (Ok(None), _) => r.add(
            "fwid_missing_in_certificate",
            "the leaf certificate has no sha384 FWID (extension 2.23.133.5.4.1)",
        ),
        (Err(why), _) => r.add("fwid_missing_in_certificate", why),
        (Ok(Some(_)), None) => r.add(
            "fwid_missing_in_report",
            "the report's opaque data has no FWID record (type 20)",
        ),
    }

    // 4. Freshness: the request nonce is the one this verifier expects.
    let nonce = report.request.nonce;
    match opts.expected_nonce {
        Some(expected) if expected != nonce => r.add(
            "nonce_mismatch",
            format!(
                "report nonce {} is not the expected {}",
                hex::encode(nonce),
                hex::encode(expected)
            ),
        ),
        Some(_) => {}
        None if opts.policy.is_some() => r.add(
            "nonce_not_supplied",
            "the policy requires a nonce binding but no expected nonce was given",
        ),
        None => {}
    }
    if let Some(claimed) = evidence.claimed_nonce {
        if claimed != nonce {
            r.add(
                "evidence_nonce_mismatch",
                format!(
                    "the evidence claims nonce {} but the signed request carries {}",
                    hex::encode(claimed),
                    hex::encode(nonce)
                ),
            );
        }
    }

    let driver_version = report.driver_version();
    let vbios_version = report.vbios_version();

    // 5. Policy: versions and mode.
    if let Some(policy) = &opts.policy {
        check_versions(
            policy,
            driver_version.as_deref(),
            vbios_version.as_deref(),
            &mut r,
        );
        check_mode(policy, evidence.cc_mode, &mut r);
    }

    // 6. RIMs.
    let rim = check_rims(
        &report,
        opts,
        driver_version.as_deref(),
        vbios_version.as_deref(),
        &mut r,
    )?;

    // 7. Revocation.
    let ocsp_good = check_ocsp(evidence, opts, &rim, &mut r)?;

    let rim_summary = rim.summary;
    let reasons = r.0;
    Ok(GpuVerdict {
        verdict: if reasons.is_empty() {
            "accepted"
        } else {
            "rejected"
        },
        reasons,
        driver_version,
        vbios_version,
        nonce: hex::encode(nonce),
        project: report.project(),
        project_sku: report.project_sku(),
        chip_sku: report.chip_sku(),
        fwid: report.fwid().map(hex::encode),
        measurement_blocks: report.blocks.len(),
        rim: rim_summary,
        ocsp_good,
    })
}

fn check_versions(policy: &GpuPolicy, driver: Option<&str>, vbios: Option<&str>, r: &mut Reasons) {
    match driver {
        None => r.add(
            "driver_version_missing",
            "the report carries no driver version",
        ),
        Some(v) if !policy.allowed_driver_versions.iter().any(|a| a == v) => r.add(
            "driver_version_not_allowed",
            format!(
                "driver {v} is not in the policy's allowed_driver_versions {:?}",
                policy.allowed_driver_versions
            ),
        ),
        Some(_) => {}
    }
    match vbios {
        None => r.add(
            "vbios_version_missing",
            "the report carries no VBIOS version",
        ),
        Some(v)
            if !policy
                .allowed_vbios_versions
                .iter()
                .any(|a| a.eq_ignore_ascii_case(v)) =>
        {
            r.add(
                "vbios_version_not_allowed",
                format!(
                    "VBIOS {v} is not in the policy's allowed_vbios_versions {:?}",
                    policy.allowed_vbios_versions
                ),
            )
        }
        Some(_) => {}
    }
}

fn check_mode(policy: &GpuPolicy, mode: Option<CcMode>, r: &mut Reasons) {
    match mode {
        None if policy.require_cc_mode || policy.forbid_dev_tools => r.add(
            "cc_mode_unknown",
            "the policy constrains the CC mode but none was reported",
        ),
        Some(CcMode::Off) if policy.require_cc_mode => {
            r.add("cc_mode_off", "the GPU reports confidential computing off")
        }
        Some(CcMode::DevTools) if policy.forbid_dev_tools => r.add(
            "dev_tools_enabled",
            "the GPU is in CC dev-tools mode, which the policy forbids",
        ),
        _ => {}
    }
}

struct RimOutcome {
    summary: RimSummary,
    rims: Vec<Rim>,
}

fn check_rims(
    report: &AttestationReport,
    opts: &VerifyOptions,
    driver: Option<&str>,
    vbios: Option<&str>,
    r: &mut Reasons,
) -> Result<RimOutcome, GpuError> {
    let mut summary = RimSummary::default();
    let mut rims = Vec::new();
    for input in &opts.rims {
        let rim = Rim::parse(&input.bytes).map_err(|source| GpuError::Rim {
            label: input.label.clone(),
            source,
        })?;
        let label = &input.label;
        if let Some(pin) = input.pinned_sha256 {
            if pin != rim.file_sha256 {
                r.add(
                    "rim_file_hash_mismatch",
                    format!(
                        "RIM {label}: SHA-256 {} is not the pinned {}",
                        hex::encode(rim.file_sha256),
                        hex::encode(pin)
                    ),
                );
            }
        }
        let issues = rim.verify_signature(&opts.rim_root, opts.at);
        for issue in &issues {
            match issue {
                RimSignatureIssue::DigestMismatch { expected, computed } => r.add(
                    "rim_digest_mismatch",
                    format!(
                        "RIM {label}: the signed content changed (DigestValue {expected}, computed {computed})"
                    ),
                ),
                RimSignatureIssue::SignatureInvalid(why) => {
                    r.add("rim_signature_invalid", format!("RIM {label}: {why}"))
                }
                RimSignatureIssue::NoSigner => r.add(
                    "rim_signer_missing",
                    format!("RIM {label}: no X509Certificate in KeyInfo"),
                ),
                RimSignatureIssue::Chain(c) => r.add(
                    format!("rim_cert_{}", c.kind.code()),
                    format!(
                        "RIM {label} certificate {} ({}): {}",
                        c.position, c.subject, c.detail
                    ),
                ),
            }
        }
        let (reported, what) = match rim.kind {
            RimKind::Driver => (driver, "driver"),
            RimKind::Vbios => (vbios, "VBIOS"),
        };
        if !reported.is_some_and(|v| v.eq_ignore_ascii_case(&rim.version)) {
            r.add(
                "rim_version_mismatch",
                format!(
                    "RIM {label} is for {what} {} but the report says {}",
                    rim.version,
                    reported.unwrap_or("nothing")
                ),
            );
        }
        if rims.iter().any(|o: &Rim| o.kind == rim.kind) {
            r.add(
                "rim_kind_duplicate",
                format!("more than one {what} RIM given ({label})"),
            );
        }
        summary.files.push(RimFileSummary {
            label: label.clone(),
            kind: rim.kind,
            version: rim.version.clone(),
            signature_valid: issues.is_empty(),
        });
        rims.push(rim);
    }
    if let Some(policy) = &opts.policy {
        for (required, kind, code) in [
            (
                policy.require_driver_rim,
                RimKind::Driver,
                "rim_missing_driver",
            ),
            (
                policy.require_vbios_rim,
                RimKind::Vbios,
                "rim_missing_vbios",
            ),
        ] {
            if required && !rims.iter().any(|x| x.kind == kind) {
                r.add(
                    code,
                    format!("the policy requires a {kind:?} RIM; none was given"),
                );
            }
        }
    }

    // Which RIM claims each active index; two claims is an error (NVIDIA's
    // verifier: an index is measured by either the driver or the VBIOS).
    let mut claims: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (k, rim) in rims.iter().enumerate() {
        for m in rim.active() {
            claims.entry(m.index).or_default().push(k);
        }
    }
    for (index, owners) in &claims {
        if owners.len() > 1 {
            r.add(
                "rim_index_conflict",
                format!("RIM index {index} is active in more than one RIM"),
            );
        }
        for &k in owners {
            let Some(golden) = rims
                .get(k)
                .and_then(|x| x.measurements.iter().find(|m| m.index == *index))
            else {
                continue;
            };
            let label = opts.rims.get(k).map(|i| i.label.as_str()).unwrap_or("?");
            // RIM index i is report block i + 1 (NVIDIA: RIM indices are 0-based,
            // SPDM block indices 1-based).
            let block = u8::try_from(index.saturating_add(1))
                .ok()
                .and_then(|b| report.block(b));
            match block {
                None => {
                    r.add(
                        "rim_measurement_missing",
                        format!(
                            "RIM {label} index {index}: the report has no block {}",
                            index.saturating_add(1)
                        ),
                    );
                    summary.mismatched.push(*index);
                }
                Some(b)
                    if b.value.len() == golden.size && golden.alternatives.contains(&b.value) =>
                {
                    summary.matched.push(*index);
                }
                Some(b) => {
                    r.add(
                        "rim_measurement_mismatch",
                        format!(
                            "RIM {label} index {index} ({}): report block {} = {} matches none of {} golden value(s)",
                            golden.name,
                            b.index,
                            hex::encode(&b.value),
                            golden.alternatives.len()
                        ),
                    );
                    summary.mismatched.push(*index);
                }
            }
        }
    }
    summary.matched.dedup();
    summary.mismatched.dedup();
    Ok(RimOutcome { summary, rims })
}

fn check_ocsp(
    evidence: &GpuEvidence,
    opts: &VerifyOptions,
    rim: &RimOutcome,
    r: &mut Reasons,
) -> Result<Vec<String>, GpuError> {
    let responses = evidence
        .ocsp
        .iter()
        .enumerate()
        .map(|(index, der)| ocsp::parse(der).map_err(|why| GpuError::Ocsp { index, why }))
        .collect::<Result<Vec<_>, _>>()?;
    let allow_missing = opts.policy.as_ref().map(|p| p.allow_missing_ocsp);
    // Without a policy and without responses, revocation is simply not assessed.
    if responses.is_empty() && allow_missing.is_none() {
        return Ok(Vec::new());
    }
    let mut scopes = vec![OcspScope {
        label: "device",
        path: certs::anchored_path(&evidence.chain, &opts.device_root),
        // The leaf is generated per boot by the GPU firmware: no CA issues
        // status for it (NVIDIA's verifier starts at the next certificate).
        skip_leaf: true,
    }];
    for x in &rim.rims {
        scopes.push(OcspScope {
            label: "rim",
            path: certs::anchored_path(&x.signature.certificates, &opts.rim_root),
            skip_leaf: false,
        });
    }
    let mut good = Vec::new();
    for scope in &scopes {
        for finding in ocsp::check(scope, &responses, opts.at) {
            match finding {
                ocsp::Finding::Good(subject) => good.push(subject),
                ocsp::Finding::Revoked(subject, detail) => r.add(
                    format!("{}_cert_revoked", scope.label),
                    format!("{subject}: revoked ({detail})"),
                ),
                ocsp::Finding::Invalid(subject, detail) => r.add(
                    "ocsp_response_invalid",
                    format!("{} certificate {subject}: {detail}", scope.label),
                ),
                ocsp::Finding::Missing(subject) => {
                    if allow_missing != Some(true) {
                        r.add(
                            "ocsp_missing",
                            format!(
                                "{} certificate {subject}: no valid OCSP response and the policy does not tolerate that",
                                scope.label
                            ),
                        );
                    }
                }
            }
        }
    }
    Ok(good)
}
