//! Why a quote was rejected: one typed reason per failed check.

use std::fmt;

use serde::{Serialize, Serializer};

/// The check that failed. `code()` is a stable string for scripts and tests; new
/// codes may be added, existing ones keep their meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReasonCode {
    // ---- policy on the quote's contents ----
    /// MRTD is not one of the pinned values.
    MrtdMismatch,
    /// RTMR0 is not one of the pinned values.
    Rtmr0Mismatch,
    Rtmr1Mismatch,
    Rtmr2Mismatch,
    Rtmr3Mismatch,
    /// TDATTRIBUTES.DEBUG is set and the policy forbids it.
    DebugEnabled,
    /// Another TD attribute the policy forbids (profiling bits, reserved bits).
    TdAttributes,
    /// XFAM is not one of the allowed values.
    XfamMismatch,
    /// The TCB status is not among the accepted ones.
    TcbStatus,
    /// The quote did not verify, so there is no TCB status to accept.
    TcbUnknown,
    /// An advisory applies to the platform and is not tolerated.
    Advisory,
    /// TCB info was issued longer ago than the policy's maximum age.
    CollateralTooOld,
    /// REPORTDATA differs from what the binding requires.
    ReportDataMismatch,
    /// The policy binds REPORTDATA to claims and no claims were given.
    ClaimsMissing,
    /// The claims lack a field the policy requires (nonce, GPU evidence digest).
    ClaimsIncomplete,

    // ---- cryptographic verification (dcap-qvl), one per step ----
    /// The ECDSA signature over header and TD report does not verify with the
    /// attestation key: the signed body was altered.
    QuoteSignature,
    /// The QE report's signature does not verify with the PCK certificate.
    QeReportSignature,
    /// The QE report does not bind the attestation key (hash mismatch).
    QeReportData,
    /// The PCK certificate chain in the quote (or collateral) does not verify.
    PckChain,
    /// The chain of the TCB-info / QE-identity signer does not verify.
    CollateralSignerChain,
    /// A CRL does not parse or is not signed by the trusted root / PCK CA.
    Crl,
    /// The trust root does not parse, or the collateral does not chain to it.
    RootCa,
    /// TCB info does not parse, is for another TEE or FMSPC, or lists bad statuses.
    TcbInfo,
    /// The TCB info signature does not verify.
    TcbInfoSignature,
    /// QE identity does not parse or does not match the QE report.
    QeIdentity,
    /// The QE identity signature does not verify.
    QeIdentitySignature,
    /// Some collateral (TCB info, QE identity, CRL, certificate) expired before
    /// the verification time.
    CollateralExpired,
    /// Some collateral is not yet valid at the verification time.
    CollateralNotYetValid,
    /// No TCB level of the TCB info is met by the platform's SVNs.
    NoMatchingTcbLevel,
    /// The TDX module's signer or attributes differ from the TCB info.
    TdxModuleIdentity,
    /// The platform TCB is revoked.
    TcbRevoked,
    /// dcap-qvl's own TD attribute rules (reserved bits, migration, SEPT_VE_DISABLE).
    TdAttributesInvalid,
    /// The TD is bound to service TDs, which this verifier does not allow.
    ServiceTd,
    /// dcap-qvl rejected the quote's header or structure.
    QuoteFormat,
    /// Any other verification failure (the message carries dcap-qvl's text).
    VerificationFailed,
    /// GPU evidence failed (used by the GPU verifier).
    Gpu,

    // ---- RA-TLS (crate::ratls) ----
    /// The certificate does not parse or lacks its RA-TLS extensions.
    CertificateFormat,
    /// The certificate is outside its validity period at the verification time.
    CertificateValidity,
    /// The claims' TLS key is not the certificate's / the connection's key.
    SpkiMismatch,
    /// The claims do not carry the client's nonce.
    NonceMismatch,
    /// A runtime event's recorded digest is not the digest of its name and payload.
    RuntimeLogDigest,
    /// The runtime event log does not replay to the claims' runtime log digest.
    RuntimeLogReplay,
    /// The runtime event log does not replay to the quote's RTMR3.
    RuntimeLogRtmr3,
    /// A simulated-TEE quote met a verifier that was not given the simulated root.
    SimNotTrusted,
    /// No usable collateral (none carried, unparsable, or the PCCS fetch failed).
    CollateralUnavailable,
    /// The attestation response is malformed or of an unknown version.
    AttestationFormat,
    /// A response field contradicts the claims or the certificate (TEE kind,
    /// wallet, receipt key, measured config text).
    ResponseMismatch,
    /// The boot event log does not replay to the quote's RTMR0-2.
    BootLogMismatch,
    /// The TLS handshake signature does not verify with the certificate's key.
    TlsSignature,
}

impl ReasonCode {
    pub fn code(self) -> &'static str {
        use ReasonCode::*;
        match self {
            MrtdMismatch => "mrtd_mismatch",
            Rtmr0Mismatch => "rtmr0_mismatch",
            Rtmr1Mismatch => "rtmr1_mismatch",
            Rtmr2Mismatch => "rtmr2_mismatch",
            Rtmr3Mismatch => "rtmr3_mismatch",
            DebugEnabled => "debug_enabled",
            TdAttributes => "td_attributes",
            XfamMismatch => "xfam_mismatch",
            TcbStatus => "tcb_status",
            TcbUnknown => "tcb_unknown",
            Advisory => "advisory",
            CollateralTooOld => "collateral_too_old",
            ReportDataMismatch => "report_data_mismatch",
            ClaimsMissing => "claims_missing",
            ClaimsIncomplete => "claims_incomplete",
            QuoteSignature => "quote_signature",
            QeReportSignature => "qe_report_signature",
            QeReportData => "qe_report_data",
            PckChain => "pck_chain",
            CollateralSignerChain => "collateral_signer_chain",
            Crl => "crl",
            RootCa => "root_ca",
            TcbInfo => "tcb_info",
            TcbInfoSignature => "tcb_info_signature",
            QeIdentity => "qe_identity",
            QeIdentitySignature => "qe_identity_signature",
            CollateralExpired => "collateral_expired",
            CollateralNotYetValid => "collateral_not_yet_valid",
            NoMatchingTcbLevel => "no_matching_tcb_level",
            TdxModuleIdentity => "tdx_module_identity",
            TcbRevoked => "tcb_revoked",
            TdAttributesInvalid => "td_attributes_invalid",
            ServiceTd => "service_td",
            QuoteFormat => "quote_format",
            VerificationFailed => "verification_failed",
            Gpu => "gpu",
            CertificateFormat => "certificate_format",
            CertificateValidity => "certificate_validity",
            SpkiMismatch => "spki_mismatch",
            NonceMismatch => "nonce_mismatch",
            RuntimeLogDigest => "runtime_log_digest",
            RuntimeLogReplay => "runtime_log_replay",
            RuntimeLogRtmr3 => "runtime_log_rtmr3",
            SimNotTrusted => "sim_not_trusted",
            CollateralUnavailable => "collateral_unavailable",
            AttestationFormat => "attestation_format",
            ResponseMismatch => "response_mismatch",
            BootLogMismatch => "boot_log_mismatch",
            TlsSignature => "tls_signature",
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for ReasonCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// One failed check: its code, a message for people, and (for comparisons) what
/// was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub code: ReasonCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
}

impl Reason {
    pub fn new(code: ReasonCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            expected: None,
            found: None,
        }
    }

    pub fn mismatch(
        code: ReasonCode,
        message: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            expected: Some(expected.into()),
            found: Some(found.into()),
        }
    }

    pub fn code(&self) -> &'static str {
        self.code.code()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)
    }
}
