//! Verify a TDX quote with dcap-qvl 0.7.1, then judge it with our policy.
//!
//! Cryptography (quote signature, QE report, PCK chain, CRLs, TCB info, QE identity,
//! TCB level matching) is dcap-qvl's; we never enable its `danger-allow-tcb-override`
//! feature. dcap-qvl runs with `allow_debug(true)` so that the DEBUG attribute is
//! judged by [`crate::policy`], which names it as a reason (and forbids it by
//! default), instead of surfacing as an anonymous verification error. dcap-qvl
//! stops at its first failure; [`classify`] names that step, and the policy's own
//! rules are still evaluated on the parsed quote so that, e.g., a tampered MRTD is
//! reported both as `quote_signature` and as `mrtd_mismatch`.
//!
//! Trust root: Intel's SGX root CA (built into dcap-qvl) unless the caller passes
//! another root explicitly ([`TrustRoot::Custom`]), e.g. a simulated TEE's test PKI.

mod classify;
pub mod time;

use dcap_qvl::verify::QuoteVerifier;
use dcap_qvl::QuotePolicy;
use serde::Serialize;

use crate::claims::Claims;
use crate::policy::{self, Evidence, Policy, Reason, ReasonCode};
use crate::quote::{Quote, QuoteError};

pub use dcap_qvl::QuoteCollateralV3;

/// Largest collateral JSON we read (the real ones are 16-19 KiB).
pub const MAX_COLLATERAL_BYTES: usize = 1024 * 1024;

/// Which root CA the PCK chain and the collateral must chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustRoot {
    /// Intel SGX Root CA, as shipped in dcap-qvl. The default.
    Intel,
    /// Another root (DER), only when the caller asks for it.
    Custom(Vec<u8>),
}

impl TrustRoot {
    /// A custom root from DER bytes, checked to be a certificate.
    pub fn custom(der: Vec<u8>) -> Result<TrustRoot, VerifyError> {
        use der::Decode as _;
        x509_cert::Certificate::from_der(&der)
            .map_err(|e| VerifyError::RootCa(format!("not a DER X.509 certificate: {e}")))?;
        Ok(TrustRoot::Custom(der))
    }

    fn verifier(&self) -> QuoteVerifier {
        let v = match self {
            TrustRoot::Intel => QuoteVerifier::new_prod(),
            TrustRoot::Custom(der) => QuoteVerifier::new(der.clone()),
        };
        v.allow_debug(true)
    }

    pub fn describe(&self) -> &'static str {
        match self {
            TrustRoot::Intel => "Intel SGX Root CA",
            TrustRoot::Custom(_) => "custom root CA (given by the caller)",
        }
    }
}

/// Input that cannot be verified at all (exit 2 at the CLI), as opposed to a quote
/// that verifies as rejected.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Quote(#[from] QuoteError),
    /// Collateral JSON that does not parse as dcap-qvl's `QuoteCollateralV3`.
    #[error("collateral: {0}")]
    Collateral(String),
    /// The PCCS could not be reached or answered with an error.
    #[error("collateral fetch from {url}: {message}")]
    Fetch { url: String, message: String },
    /// The root CA given by the caller is unusable.
    #[error("root CA: {0}")]
    RootCa(String),
}

/// Parse collateral in dcap-qvl's JSON form (`QuoteCollateralV3`: PEM chains as
/// strings, CRLs and signatures as hex).
pub fn load_collateral_json(bytes: &[u8]) -> Result<QuoteCollateralV3, VerifyError> {
    if bytes.len() > MAX_COLLATERAL_BYTES {
        return Err(VerifyError::Collateral(format!(
            "{} bytes exceed the limit of {MAX_COLLATERAL_BYTES}",
            bytes.len()
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| VerifyError::Collateral(e.to_string()))
}

/// Fetch collateral for `raw_quote` from a PCCS (or Intel PCS) at `pccs_url`, on a
/// private current-thread tokio runtime so that callers stay synchronous.
pub fn fetch_collateral(
    pccs_url: &str,
    raw_quote: &[u8],
) -> Result<QuoteCollateralV3, VerifyError> {
    let fail = |message: String| VerifyError::Fetch {
        url: pccs_url.to_string(),
        message,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("cannot start a runtime: {e}")))?;
    rt.block_on(async {
        dcap_qvl::collateral::CollateralClient::with_default_http(pccs_url)
            .map_err(|e| fail(format!("{e:#}")))?
            .fetch(raw_quote)
            .await
            .map_err(|e| fail(format!("{e:#}")))
    })
}

/// The current time in Unix seconds (for callers that verify "now").
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Validity dates read from the collateral (for messages and the age rule). Each
/// is `None` when the item does not parse; dcap-qvl then reports that item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CollateralDates {
    pub tcb_info_issue_date: Option<u64>,
    pub tcb_info_next_update: Option<u64>,
    pub qe_identity_issue_date: Option<u64>,
    pub qe_identity_next_update: Option<u64>,
    pub root_ca_crl_next_update: Option<u64>,
    pub pck_crl_next_update: Option<u64>,
}

impl CollateralDates {
    pub fn of(c: &QuoteCollateralV3) -> Self {
        let json_dates = |s: &str| -> (Option<u64>, Option<u64>) {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Dates {
                issue_date: String,
                next_update: String,
            }
            match serde_json::from_str::<Dates>(s) {
                Ok(d) => (
                    time::parse_rfc3339_utc(&d.issue_date),
                    time::parse_rfc3339_utc(&d.next_update),
                ),
                Err(_) => (None, None),
            }
        };
        let crl_next = |der_bytes: &[u8]| -> Option<u64> {
            use der::Decode as _;
            let crl = x509_cert::crl::CertificateList::from_der(der_bytes).ok()?;
            Some(crl.tbs_cert_list.next_update?.to_unix_duration().as_secs())
        };
        let (ti, tn) = json_dates(&c.tcb_info);
        let (qi, qn) = json_dates(&c.qe_identity);
        CollateralDates {
            tcb_info_issue_date: ti,
            tcb_info_next_update: tn,
            qe_identity_issue_date: qi,
            qe_identity_next_update: qn,
            root_ca_crl_next_update: crl_next(&c.root_ca_crl),
            pck_crl_next_update: crl_next(&c.pck_crl),
        }
    }

    fn summary(&self) -> String {
        let f = |v: Option<u64>| v.map_or_else(|| "?".to_string(), time::format_rfc3339_utc);
        format!(
            "TCB info {}..{}, QE identity {}..{}, root CA CRL next update {}, PCK CRL next update {}",
            f(self.tcb_info_issue_date),
            f(self.tcb_info_next_update),
            f(self.qe_identity_issue_date),
            f(self.qe_identity_next_update),
            f(self.root_ca_crl_next_update),
            f(self.pck_crl_next_update)
        )
    }
}

/// What dcap-qvl established about the platform, when verification succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TcbFacts {
    /// Converged TCB status (platform, TDX module and QE), e.g. "UpToDate".
    pub status: String,
    /// Advisory IDs of the matched TCB levels (launch and, for TD 1.5, current).
    pub advisory_ids: Vec<String>,
    /// TCB info `issueDate` (Unix seconds): the collateral's age is measured from it.
    pub tcb_info_issue_date: u64,
    /// Earliest expiry over all collateral items and certificates.
    pub collateral_expires: u64,
    /// Date of the matched platform TCB level.
    pub platform_tcb_date: u64,
    /// FMSPC of the platform (from the PCK certificate), hex.
    pub fmspc: String,
    /// TCB evaluation data number of the collateral.
    pub tcb_eval_data_number: u32,
}

/// The cryptographic half of verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoOutcome {
    /// `Some` when dcap-qvl verified the quote.
    pub tcb: Option<TcbFacts>,
    /// The failure, when it did not (dcap-qvl stops at its first failure).
    pub failures: Vec<Reason>,
}

/// Verify signatures, chains and TCB of `raw_quote` at time `at` (Unix seconds).
pub fn verify_crypto(
    raw_quote: &[u8],
    collateral: &QuoteCollateralV3,
    at: u64,
    root: &TrustRoot,
) -> CryptoOutcome {
    let verifier = root.verifier();
    match verifier.verify_with_policy(raw_quote, collateral, at, &QuotePolicy::claims_only(at)) {
        Ok(claims) => {
            let mut advisory_ids = claims.tcb.advisory_ids.clone();
            if let Some(current) = &claims.platform.current_tcb_level {
                for id in &current.advisory_ids {
                    if !advisory_ids.contains(id) {
                        advisory_ids.push(id.clone());
                    }
                }
            }
            let dates = CollateralDates::of(collateral);
            CryptoOutcome {
                tcb: Some(TcbFacts {
                    status: claims.tcb.status.to_string(),
                    advisory_ids,
                    // dcap-qvl parsed it already; 0 cannot happen after success.
                    tcb_info_issue_date: dates.tcb_info_issue_date.unwrap_or(0),
                    collateral_expires: claims.earliest_expiration_date,
                    platform_tcb_date: claims.platform.tcb_date_tag,
                    fmspc: hex::encode(claims.platform.pck.fmspc),
                    tcb_eval_data_number: claims.tcb.eval_data_number,
                }),
                failures: Vec::new(),
            }
        }
        Err(e) => {
            let chain = format!("{e:#}");
            let reason = failure_reason(&verifier, raw_quote, collateral, at, &chain);
            CryptoOutcome {
                tcb: None,
                failures: vec![reason],
            }
        }
    }
}

fn failure_reason(
    verifier: &QuoteVerifier,
    raw_quote: &[u8],
    collateral: &QuoteCollateralV3,
    at: u64,
    chain: &str,
) -> Reason {
    let when = time::format_rfc3339_utc(at);
    let (mut code, summary) = classify::classify(chain);
    let mut summary = summary.to_string();
    if chain.contains("Failed to verify certificate chain") {
        // dcap-qvl verifies three chains with the same message. To tell them apart,
        // verify again with the TCB-info signer chain standing in for the PCK chain:
        // if the failure stays the same, it was in the collateral signer chain
        // (checked first); otherwise it was in the PCK chain.
        let mut probe = collateral.clone();
        probe.pck_certificate_chain = Some(collateral.tcb_info_issuer_chain.clone());
        let again = verifier
            .verify_with_policy(raw_quote, probe, at, &QuotePolicy::claims_only(at))
            .err()
            .map(|e| format!("{e:#}"));
        let which = if again.as_deref() == Some(chain) {
            code = ReasonCode::CollateralSignerChain;
            "the TCB info / QE identity signer chain"
        } else {
            code = ReasonCode::PckChain;
            "the PCK certificate chain"
        };
        summary = match classify::webpki_detail(chain) {
            Some((detail, specific)) => {
                code = specific.unwrap_or(code);
                format!("{which} does not verify: {detail}")
            }
            None => format!("{which} does not verify"),
        };
    }
    let message = match code {
        ReasonCode::CollateralExpired | ReasonCode::CollateralNotYetValid => format!(
            "collateral {} at {when} ({at}): {summary} [{}] (dcap-qvl: {chain})",
            if code == ReasonCode::CollateralExpired {
                "expired"
            } else {
                "not yet valid"
            },
            CollateralDates::of(collateral).summary()
        ),
        _ => format!("{summary} (verified at {when}, {at}) (dcap-qvl: {chain})"),
    };
    Reason::new(code, message)
}

/// The outcome of verifying a quote against a policy.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub accepted: bool,
    /// Verification time (Unix seconds).
    pub at: u64,
    pub quote: Quote,
    /// Present when the cryptographic verification succeeded.
    pub tcb: Option<TcbFacts>,
    /// Every failed check: the cryptographic failure (if any), then policy rules.
    pub reasons: Vec<Reason>,
}

/// Parse, verify and judge a quote. `Err` only for input that cannot be read
/// (unparsable quote); every verification or policy failure is a reason in an
/// `Ok(Verdict { accepted: false, .. })`.
pub fn verify_quote(
    raw_quote: &[u8],
    collateral: &QuoteCollateralV3,
    at: u64,
    root: &TrustRoot,
    policy: &Policy,
    claims: Option<&Claims>,
) -> Result<Verdict, VerifyError> {
    let quote = Quote::parse(raw_quote)?;
    let crypto = verify_crypto(raw_quote, collateral, at, root);
    let mut reasons = crypto.failures;
    reasons.extend(policy::check(
        policy,
        &Evidence {
            report: &quote.td_report,
            tcb: crypto.tcb.as_ref(),
            claims,
            at,
        },
    ));
    Ok(Verdict {
        accepted: reasons.is_empty(),
        at,
        quote,
        tcb: crypto.tcb,
        reasons,
    })
}
