//! Names the verification step a dcap-qvl failure comes from.
//!
//! dcap-qvl 0.7.1 reports failures as `anyhow` chains of fixed English strings
//! (`src/verify.rs`, `src/utils.rs`); the table below maps the distinctive part of
//! each to a [`ReasonCode`]. The full chain is always kept in the message, so an
//! unrecognised failure (a newer dcap-qvl) still says what happened and is rejected
//! as `verification_failed`. `tests/quote_verify.rs` pins the mapping on real
//! tampered quotes so that a dcap-qvl upgrade that rewords a message is noticed.

use crate::policy::ReasonCode;

/// Substrings of dcap-qvl messages, most specific first.
const TABLE: &[(&str, ReasonCode, &str)] = &[
    // Trust root and CRLs (verify_impl, before the quote is even parsed).
    ("Failed to load root ca", ReasonCode::RootCa, "the trust root certificate does not load"),
    ("Failed to parse root CA certificate", ReasonCode::RootCa, "the trust root certificate does not parse"),
    ("Failed to parse root CA CRL: InvalidCrlSignatureForPublicKey", ReasonCode::RootCa, "the collateral's root CA CRL is not signed by the trusted root (collateral from another PKI, or altered)"),
    ("Failed to parse root CA CRL", ReasonCode::Crl, "the root CA CRL does not parse or is not signed by the trusted root"),
    ("Failed to parse PCK CRL", ReasonCode::Crl, "the PCK CRL does not parse"),
    // webpki's CRL check at the verification time (dcap-qvl passes its error through).
    ("CrlExpired", ReasonCode::CollateralExpired, "a CRL is past its nextUpdate"),
    // Quote structure and header.
    ("Failed to decode quote", ReasonCode::QuoteFormat, "dcap-qvl cannot decode the quote"),
    ("Unsupported DCAP quote version", ReasonCode::QuoteFormat, "unsupported quote version"),
    ("Unknown QE vendor ID", ReasonCode::QuoteFormat, "the quote is not from Intel's quoting enclave (QE vendor id)"),
    ("Unsupported TEE type", ReasonCode::QuoteFormat, "unsupported TEE type"),
    ("TDX TEE quote must have", ReasonCode::QuoteFormat, "unsupported quote version for TDX"),
    ("Unsupported DCAP attestation key type", ReasonCode::QuoteFormat, "unsupported attestation key type"),
    // Step 1: TCB info.
    ("TCBInfo issue date is in the future", ReasonCode::CollateralNotYetValid, "TCB info is not yet valid"),
    ("TCBInfo expired", ReasonCode::CollateralExpired, "TCB info expired (past its nextUpdate)"),
    ("Signature is invalid for tcb_info", ReasonCode::TcbInfoSignature, "the TCB info signature does not verify"),
    ("Certificate chain is too short for TCB Info", ReasonCode::CollateralSignerChain, "the TCB info issuer chain is incomplete"),
    ("TCB Info leaf certificate", ReasonCode::CollateralSignerChain, "the TCB info signing certificate does not parse"),
    ("TCB Info signer must be issued directly", ReasonCode::CollateralSignerChain, "the TCB info signer is not issued by the root"),
    ("Failed to decode TcbInfo", ReasonCode::TcbInfo, "TCB info does not parse"),
    ("TCB Info issue date", ReasonCode::TcbInfo, "TCB info dates do not parse"),
    ("TCB Info next update", ReasonCode::TcbInfo, "TCB info dates do not parse"),
    // Step 2: QE identity.
    ("QE Identity issue date is in the future", ReasonCode::CollateralNotYetValid, "QE identity is not yet valid"),
    ("QE Identity expired", ReasonCode::CollateralExpired, "QE identity expired (past its nextUpdate)"),
    ("Signature is invalid for qe_identity", ReasonCode::QeIdentitySignature, "the QE identity signature does not verify"),
    ("Certificate chain is too short for QE Identity", ReasonCode::CollateralSignerChain, "the QE identity issuer chain is incomplete"),
    ("QE Identity leaf certificate", ReasonCode::CollateralSignerChain, "the QE identity signing certificate does not parse"),
    ("QE Identity signer must be issued directly", ReasonCode::CollateralSignerChain, "the QE identity signer is not issued by the root"),
    ("Unsupported QE Identity id/version", ReasonCode::QeIdentity, "QE identity is not for a TD quoting enclave"),
    ("Failed to decode QeIdentity", ReasonCode::QeIdentity, "QE identity does not parse"),
    // Step 3: PCK chain.
    ("Failed to extract PCK certificates", ReasonCode::PckChain, "the PCK certificate chain is not valid PEM"),
    ("Certificate chain is too short in quote", ReasonCode::PckChain, "the PCK certificate chain is incomplete"),
    ("Failed to parse PCK certificate", ReasonCode::PckChain, "the PCK certificate does not parse"),
    ("Unsupported DCAP PCK cert format", ReasonCode::PckChain, "the quote carries no PCK certificate chain"),
    ("Intel extension not found", ReasonCode::PckChain, "the PCK certificate lacks Intel's SGX extension"),
    // Steps 4-6: QE report.
    ("Signature is invalid for qe_report", ReasonCode::QeReportSignature, "the QE report signature does not verify with the PCK certificate"),
    ("Failed to decode QE report", ReasonCode::QeReportSignature, "the QE report does not parse"),
    ("QE report hash mismatch", ReasonCode::QeReportData, "the QE report does not bind the attestation key"),
    ("QE MRSIGNER mismatch", ReasonCode::QeIdentity, "the QE's MRSIGNER differs from the QE identity"),
    ("QE ISVPRODID mismatch", ReasonCode::QeIdentity, "the QE's ISVPRODID differs from the QE identity"),
    ("QE MISCSELECT mismatch", ReasonCode::QeIdentity, "the QE's MISCSELECT differs from the QE identity"),
    ("QE ATTRIBUTES mismatch", ReasonCode::QeIdentity, "the QE's ATTRIBUTES differ from the QE identity"),
    ("QE report validation failed", ReasonCode::QeIdentity, "the QE runs in debug mode"),
    ("QE ISVSVN", ReasonCode::NoMatchingTcbLevel, "the QE's ISVSVN is below every QE identity TCB level"),
    ("No TCB levels found in QE Identity", ReasonCode::QeIdentity, "QE identity has no TCB levels"),
    // Step 7: the quote body signature.
    ("ISV enclave report signature is invalid", ReasonCode::QuoteSignature, "the quote signature over the header and TD report does not verify (signed body altered or wrong key)"),
    // Step 8: platform TCB.
    ("Fmspc mismatch", ReasonCode::TcbInfo, "TCB info is for another platform (FMSPC)"),
    ("non-TDX TCB info", ReasonCode::TcbInfo, "TCB info is not for TDX"),
    ("Unrecognized TCB status", ReasonCode::TcbInfo, "TCB info lists a status invalid for its structure"),
    ("No matching TCB level found", ReasonCode::NoMatchingTcbLevel, "no TCB level of the TCB info is met by this platform's SVNs"),
    ("is below minimum required from TDX module", ReasonCode::NoMatchingTcbLevel, "the TDX module's SVN is below every TDX module TCB level"),
    ("TDX module", ReasonCode::TdxModuleIdentity, "the TDX module identity differs from the TCB info"),
    ("TCB status is invalid: Revoked", ReasonCode::TcbRevoked, "the platform TCB is revoked"),
    // TD attributes (dcap-qvl validate_attrs; DEBUG is left to our policy).
    ("Debug mode is enabled", ReasonCode::DebugEnabled, "the TD runs in debug mode"),
    ("TD profiling is enabled", ReasonCode::DebugEnabled, "TD profiling is enabled"),
    ("Reserved bits in TD attributes", ReasonCode::TdAttributesInvalid, "reserved TD attribute bits are set"),
    ("TD migration is enabled", ReasonCode::TdAttributesInvalid, "the TD is migratable"),
    ("SEPT_VE_DISABLE is not enabled", ReasonCode::TdAttributesInvalid, "SEPT_VE_DISABLE is not set"),
    ("Failed to parse TD attributes", ReasonCode::TdAttributesInvalid, "TD attributes do not parse"),
    ("SERVTD_EXT is enabled", ReasonCode::ServiceTd, "the TD is bound to service TDs (SERVTD_EXT)"),
    ("Invalid MR service TD", ReasonCode::ServiceTd, "the TD is bound to service TDs (MRSERVICETD)"),
];

/// The step a dcap-qvl error chain (`format!("{e:#}")`) comes from and a summary.
pub fn classify(chain: &str) -> (ReasonCode, &'static str) {
    for (needle, code, summary) in TABLE {
        if chain.contains(needle) {
            return (*code, summary);
        }
    }
    if chain.contains("Failed to verify certificate chain") {
        // Caller resolves which chain (see `verify::chain_failure`).
        return (ReasonCode::PckChain, "a certificate chain does not verify");
    }
    (ReasonCode::VerificationFailed, "quote verification failed")
}

/// For certificate-chain failures: what webpki said, in words, and the code it
/// warrants when more specific than the chain's own (expiry, CRL coverage).
pub fn webpki_detail(chain: &str) -> Option<(&'static str, Option<ReasonCode>)> {
    const W: &[(&str, &str, Option<ReasonCode>)] = &[
        (
            "CrlExpired",
            "a CRL is past its nextUpdate",
            Some(ReasonCode::CollateralExpired),
        ),
        (
            "CertExpired",
            "a certificate has expired",
            Some(ReasonCode::CollateralExpired),
        ),
        (
            "CertNotValidYet",
            "a certificate is not yet valid",
            Some(ReasonCode::CollateralNotYetValid),
        ),
        ("CertRevoked", "a certificate is revoked", None),
        (
            "UnknownIssuer",
            "the chain does not lead to the trusted root",
            None,
        ),
        (
            "InvalidSignatureForPublicKey",
            "a certificate signature does not verify",
            None,
        ),
        (
            "UnknownRevocationStatus",
            "no valid CRL covers a certificate of the chain (CRL missing, altered or from another issuer)",
            Some(ReasonCode::Crl),
        ),
        ("BadDer", "a certificate is not valid DER", None),
    ];
    W.iter()
        .find(|(needle, _, _)| chain.contains(needle))
        .map(|(_, s, c)| (*s, *c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_known_messages() {
        assert_eq!(
            classify("ISV enclave report signature is invalid").0,
            ReasonCode::QuoteSignature
        );
        assert_eq!(
            classify("No matching TCB level found").0,
            ReasonCode::NoMatchingTcbLevel
        );
        assert_eq!(
            classify("TDX module identity check: TDX module MRSIGNER mismatch: expected").0,
            ReasonCode::TdxModuleIdentity
        );
        assert_eq!(
            classify("TDX module TCB level check: TDX module ISVSVN 3 is below minimum required from TDX module TCB levels").0,
            ReasonCode::NoMatchingTcbLevel
        );
        assert_eq!(
            classify("TCB status is invalid: Revoked").0,
            ReasonCode::TcbRevoked
        );
        assert_eq!(classify("something new").0, ReasonCode::VerificationFailed);
    }
}
