//! The RA-TLS certificate (CONTRACT section 2) and the claims it commits to.
//!
//! Order matters: the claims name the TLS key, the quote's REPORTDATA is the claims'
//! SHA-512, and the certificate carries both, so one quote binds the TD's
//! measurements to the key that terminates every client's TLS session.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cocoon_measurements::claims::Claims;
use cocoon_measurements::ratls::RaTlsEvidence;
use cocoon_measurements::Digest48;
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa};
use rustls::pki_types::CertificateDer;

use crate::keys::AgentKeys;
use crate::tee::{TeeBackend, TeeError};

/// Certificate validity around issuance (CONTRACT section 2): one hour back for
/// clients with slow clocks, 30 days ahead.
pub const BACKDATE: Duration = Duration::from_secs(3600);
pub const VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);
pub const COMMON_NAME: &str = "cocoon-worker";

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("quote for the certificate: {0}")]
    Quote(#[from] TeeError),
    #[error("certificate claims: {0}")]
    Claims(#[from] cocoon_measurements::claims::ClaimsError),
    #[error("certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("collateral to JSON: {0}")]
    Collateral(#[from] serde_json::Error),
    #[error("system clock before 1970")]
    Clock,
}

/// The claims of this worker; `nonce` is set for `/attestation` answers only.
pub fn claims(
    keys: &AgentKeys,
    gpu_evidence_digest: Option<Digest48>,
    runtime_event_log_digest: Digest48,
    nonce: Option<Vec<u8>>,
) -> Claims {
    Claims {
        tls_spki_der: keys.tls_spki_der(),
        receipt_public_key: keys.receipt_public_key(),
        gpu_evidence_digest,
        runtime_event_log_digest,
        wallet_address: keys.wallet_address(),
        nonce,
    }
}

/// The evidence for the certificate: a quote over the nonce-less claims.
pub fn evidence(tee: &dyn TeeBackend, claims: Claims) -> Result<RaTlsEvidence, CertError> {
    claims.validate()?;
    let quote = tee.quote(&claims.report_data())?;
    let collateral_json = tee
        .collateral()
        .map(|c| serde_json::to_string(&c))
        .transpose()?;
    Ok(RaTlsEvidence {
        tee: tee.kind(),
        quote,
        claims,
        collateral_json,
    })
}

/// A self-signed certificate for `keys`' TLS key carrying `evidence`.
pub fn issue(
    keys: &AgentKeys,
    evidence: &RaTlsEvidence,
    extra_sans: &[String],
    now: SystemTime,
) -> Result<CertificateDer<'static>, CertError> {
    let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    sans.extend(extra_sans.iter().cloned());
    let mut params = CertificateParams::new(sans)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, COMMON_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    let since_epoch = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| CertError::Clock)?;
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + since_epoch.saturating_sub(BACKDATE);
    params.not_after = epoch + since_epoch.saturating_add(VALIDITY);
    // Serial from the claims' digest: unique per key, reproducible for one boot.
    let serial: [u8; 16] = {
        let rd = evidence.claims.report_data();
        let mut s = [0u8; 16];
        s.copy_from_slice(rd.get(..16).unwrap_or(&[0u8; 16]));
        s[0] &= 0x7f; // positive INTEGER
        s
    };
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    for (oid, content) in evidence.to_extensions() {
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(oid, content));
    }
    let cert = params.self_signed(keys.tls_key_pair())?;
    Ok(cert.der().clone())
}
