//! Verifying an RA-TLS certificate and an `/attestation` response.
//!
//! Quote cryptography and the policy are [`crate::verify::verify_quote`]'s
//! (dcap-qvl, never bypassed); this module adds the RA-TLS bindings around it
//! (interface contract, sections 2, 3 and 5) and returns every failed check as a
//! named [`Reason`]. REPORTDATA is always judged with the `claims_v1` binding,
//! whatever the policy file says: an RA-TLS quote vouches for nothing else.

mod attestation;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::cert::{RaTlsEvidence, TeeKind};
use crate::claims::Claims;
use crate::digest::Digest48;
use crate::policy::{Binding, Policy, Reason, ReasonCode};
use crate::verify::{
    fetch_collateral, load_collateral_json, now_unix, time::format_rfc3339_utc, verify_quote,
    QuoteCollateralV3, TrustRoot, Verdict,
};

pub use attestation::{verify_attestation, AttestationReport};

/// Where the collateral for the quote comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum CollateralSource {
    /// From the certificate's collateral extension (for the certificate) or the
    /// response's `collateral` field (for `/attestation`). Collateral is signed by
    /// the trust root, so taking it from the worker is safe.
    FromCertificate,
    /// This collateral, for every quote.
    Fixed(Box<QuoteCollateralV3>),
    /// Fetched from this PCCS (or Intel PCS) base URL for each quote.
    Pccs(String),
}

/// How a client verifies RA-TLS workers.
#[derive(Debug, Clone)]
pub struct RaTlsVerifierConfig {
    /// Intel's root unless a simulated root is explicitly given.
    pub trust_root: TrustRoot,
    /// The pinned measurements and TCB rules.
    pub policy: Policy,
    pub collateral: CollateralSource,
    /// Verification time, Unix seconds; `None` = now.
    pub at: Option<u64>,
}

impl RaTlsVerifierConfig {
    /// Intel's root, collateral from the worker, verification at the current time.
    pub fn new(policy: Policy) -> Self {
        RaTlsVerifierConfig {
            trust_root: TrustRoot::Intel,
            policy,
            collateral: CollateralSource::FromCertificate,
            at: None,
        }
    }

    /// The verification time.
    pub fn time(&self) -> u64 {
        self.at.unwrap_or_else(now_unix)
    }
}

/// The outcome of verifying an RA-TLS certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateReport {
    pub accepted: bool,
    /// Verification time (Unix seconds).
    pub at: u64,
    pub tee: Option<TeeKind>,
    /// SHA-256 of the certificate's SubjectPublicKeyInfo DER, hex.
    pub spki_sha256: Option<String>,
    pub claims: Option<Claims>,
    /// The quote's verdict (registers, TCB), when the quote could be verified.
    pub quote: Option<Verdict>,
    /// Every failed check; empty when accepted.
    pub reasons: Vec<Reason>,
}

impl CertificateReport {
    /// The reasons' codes, for tests and scripts.
    pub fn codes(&self) -> Vec<&'static str> {
        self.reasons.iter().map(Reason::code).collect()
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The policy an RA-TLS quote is judged by: the caller's, with REPORTDATA bound to
/// the claims. `require_nonce` stays only where a nonce can exist (responses).
fn effective_policy(policy: &Policy, nonce_possible: bool) -> Policy {
    let mut p = policy.clone();
    p.report_data.binding = Binding::ClaimsV1;
    p.report_data.value = None;
    p.report_data.require_nonce &= nonce_possible;
    p
}

/// Collateral for `quote`, or the reason there is none.
fn collateral_for(
    source: &CollateralSource,
    carried: Option<Result<QuoteCollateralV3, String>>,
    quote: &[u8],
) -> Result<QuoteCollateralV3, Reason> {
    let unavailable = |m: String| Reason::new(ReasonCode::CollateralUnavailable, m);
    match source {
        CollateralSource::Fixed(c) => Ok(c.as_ref().clone()),
        CollateralSource::FromCertificate => match carried {
            Some(Ok(c)) => Ok(c),
            Some(Err(e)) => Err(unavailable(format!("the worker's collateral: {e}"))),
            None => Err(unavailable(
                "the worker carries no collateral; give collateral or a PCCS URL".into(),
            )),
        },
        CollateralSource::Pccs(url) => {
            // fetch_collateral runs its own runtime; a fresh thread keeps it out of a
            // caller's runtime (rustls calls verifiers from inside tokio tasks).
            let fetched = std::thread::scope(|s| {
                s.spawn(|| fetch_collateral(url, quote))
                    .join()
                    .unwrap_or_else(|_| {
                        Err(crate::verify::VerifyError::Fetch {
                            url: url.clone(),
                            message: "the fetching thread panicked".into(),
                        })
                    })
            });
            fetched.map_err(|e| unavailable(e.to_string()))
        }
    }
}

/// A quote to judge, with what it must be judged against.
struct QuoteCase<'a> {
    tee: TeeKind,
    quote: &'a [u8],
    claims: &'a Claims,
    /// Collateral the worker sent, parsed (or why not).
    carried: Option<Result<QuoteCollateralV3, String>>,
    /// Whether the claims can carry a nonce (responses, not certificates).
    nonce_possible: bool,
}

/// Verify the quote against claims and policy; push its reasons, return the verdict.
fn judge_quote(
    config: &RaTlsVerifierConfig,
    case: QuoteCase<'_>,
    at: u64,
    reasons: &mut Vec<Reason>,
) -> Option<Verdict> {
    let QuoteCase {
        tee,
        quote,
        claims,
        carried,
        nonce_possible,
    } = case;
    if tee == TeeKind::Sim && config.trust_root == TrustRoot::Intel {
        reasons.push(Reason::new(
            ReasonCode::SimNotTrusted,
            "the worker runs the simulated TEE (tee=sim); its quotes chain to a test root, \
             which this verifier trusts only when given explicitly (--trust-sim-root)",
        ));
    }
    let collateral = match collateral_for(&config.collateral, carried, quote) {
        Ok(c) => c,
        Err(r) => {
            reasons.push(r);
            return None;
        }
    };
    let policy = effective_policy(&config.policy, nonce_possible);
    match verify_quote(
        quote,
        &collateral,
        at,
        &config.trust_root,
        &policy,
        Some(claims),
    ) {
        Ok(v) => {
            reasons.extend(v.reasons.iter().cloned());
            Some(v)
        }
        Err(e) => {
            reasons.push(Reason::new(
                ReasonCode::QuoteFormat,
                format!("the quote does not parse: {e}"),
            ));
            None
        }
    }
}

/// The claims must carry exactly `spki` (the certificate's / connection's key).
fn check_spki(claims: &Claims, spki: &[u8], whose: &str, reasons: &mut Vec<Reason>) {
    if claims.tls_spki_der != spki {
        reasons.push(Reason::mismatch(
            ReasonCode::SpkiMismatch,
            format!(
                "the claims' TLS key is not {whose}: the quote vouches for another key \
                 (SHA-256 of SPKI shown)"
            ),
            sha256_hex(spki),
            sha256_hex(&claims.tls_spki_der),
        ));
    }
}

/// Replayed runtime log vs the quote's RTMR3.
fn check_rtmr3(replayed: Digest48, quote_rtmr3: Digest48, reasons: &mut Vec<Reason>) {
    if replayed != quote_rtmr3 {
        reasons.push(Reason::mismatch(
            ReasonCode::RuntimeLogRtmr3,
            "the runtime event log does not replay to the quote's RTMR3",
            quote_rtmr3.to_hex(),
            replayed.to_hex(),
        ));
    }
}

fn check_validity(cert_der: &[u8], at: u64, reasons: &mut Vec<Reason>) {
    use der::Decode as _;
    let Ok(cert) = x509_cert::Certificate::from_der(cert_der) else {
        return;
    };
    let v = &cert.tbs_certificate.validity;
    let nb = v.not_before.to_unix_duration().as_secs();
    let na = v.not_after.to_unix_duration().as_secs();
    if at < nb || at > na {
        reasons.push(Reason::mismatch(
            ReasonCode::CertificateValidity,
            format!(
                "the certificate is valid {}..{}, not at {}",
                format_rfc3339_utc(nb),
                format_rfc3339_utc(na),
                format_rfc3339_utc(at)
            ),
            format!("{nb}..={na}"),
            at.to_string(),
        ));
    }
}

/// Verify an RA-TLS certificate (DER): it parses, is within its validity period
/// now (the wall clock, as any TLS client judges it), its claims carry its own key,
/// REPORTDATA = SHA-512 of the claims, the quote verifies against the configured
/// root at `config.at` and passes the policy, and (sim) the claims' runtime log
/// digest is RTMR3. The handshake signature is checked separately (rustls).
pub fn verify_certificate(cert_der: &[u8], config: &RaTlsVerifierConfig) -> CertificateReport {
    verify_certificate_at(cert_der, config, now_unix())
}

/// [`verify_certificate`] with the certificate's validity judged at `cert_now`
/// (Unix seconds; rustls passes the handshake's time). `config.at` stays the time
/// for the quote and its collateral: a verifier may pin collateral of another day
/// while a worker's certificate (issued at boot, valid 30 days) follows the clock.
pub fn verify_certificate_at(
    cert_der: &[u8],
    config: &RaTlsVerifierConfig,
    cert_now: u64,
) -> CertificateReport {
    let at = config.time();
    let mut reasons = Vec::new();
    let (evidence, spki) = match RaTlsEvidence::from_certificate_der(cert_der) {
        Ok(x) => x,
        Err(e) => {
            return CertificateReport {
                accepted: false,
                at,
                tee: None,
                spki_sha256: None,
                claims: None,
                quote: None,
                reasons: vec![Reason::new(ReasonCode::CertificateFormat, e.to_string())],
            }
        }
    };
    check_validity(cert_der, cert_now, &mut reasons);
    check_spki(
        &evidence.claims,
        &spki,
        "the certificate's key",
        &mut reasons,
    );
    let carried = evidence
        .collateral_json
        .as_ref()
        .map(|j| load_collateral_json(j.as_bytes()).map_err(|e| e.to_string()));
    let case = QuoteCase {
        tee: evidence.tee,
        quote: &evidence.quote,
        claims: &evidence.claims,
        carried,
        nonce_possible: false,
    };
    let verdict = judge_quote(config, case, at, &mut reasons);
    if let (TeeKind::Sim, Some(v)) = (evidence.tee, &verdict) {
        // The sim TEE always extends RTMR3 with the runtime events before the key exists.
        check_rtmr3(
            evidence.claims.runtime_event_log_digest,
            v.quote.td_report.rtmr3,
            &mut reasons,
        );
    }
    CertificateReport {
        accepted: reasons.is_empty(),
        at,
        tee: Some(evidence.tee),
        spki_sha256: Some(sha256_hex(&spki)),
        claims: Some(evidence.claims),
        quote: verdict,
        reasons,
    }
}
