//! A rustls `ServerCertVerifier` that accepts a server only on its RA-TLS evidence.
//!
//! No Web PKI: the certificate is self-signed and trusted only because its quote
//! verifies and binds its key ([`super::verify_certificate`]). The handshake
//! signature still proves the server holds that key; rustls' own
//! `verify_tls13_signature` (aws-lc-rs) checks it. TLS 1.2 is refused: its
//! signature does not cover the whole handshake transcript.

use std::fmt;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, OtherError, SignatureScheme};

use super::verify::{verify_certificate_at, CertificateReport, RaTlsVerifierConfig};
use crate::policy::{Reason, ReasonCode};

/// The error a rejected handshake carries: every reason, by name.
#[derive(Debug, Clone)]
pub struct RaTlsVerifyError {
    pub reasons: Vec<Reason>,
}

impl fmt::Display for RaTlsVerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RA-TLS verification failed: ")?;
        for (i, r) in self.reasons.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RaTlsVerifyError {}

impl RaTlsVerifyError {
    /// The typed error inside a rustls error produced by [`RaTlsServerVerifier`]
    /// (also through an `io::Error` from tokio-rustls).
    pub fn from_rustls(e: &Error) -> Option<&RaTlsVerifyError> {
        match e {
            Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
                inner.downcast_ref::<RaTlsVerifyError>()
            }
            _ => None,
        }
    }
}

/// RA-TLS server verification for rustls clients. Keeps the last certificate
/// report so the caller can show why a handshake failed (rustls' error alone
/// carries one line).
#[derive(Debug)]
pub struct RaTlsServerVerifier {
    config: RaTlsVerifierConfig,
    provider: Arc<CryptoProvider>,
    last: Mutex<Option<CertificateReport>>,
}

impl RaTlsServerVerifier {
    pub fn new(config: RaTlsVerifierConfig) -> Self {
        RaTlsServerVerifier {
            config,
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            last: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &RaTlsVerifierConfig {
        &self.config
    }

    /// The report of the last certificate this verifier judged (with a
    /// `tls_signature` reason added when the handshake signature failed).
    pub fn last_report(&self) -> Option<CertificateReport> {
        self.last.lock().ok().and_then(|g| g.clone())
    }

    /// A TLS 1.3-only rustls client configuration using this verifier (aws-lc-rs,
    /// no client certificate, ALPN `http/1.1`).
    pub fn client_config(self: &Arc<Self>) -> Result<rustls::ClientConfig, Error> {
        let mut c = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(self.clone())
            .with_no_client_auth();
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(c)
    }

    fn record(&self, report: CertificateReport) {
        if let Ok(mut g) = self.last.lock() {
            *g = Some(report);
        }
    }

    fn reject(reasons: Vec<Reason>) -> Error {
        Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
            RaTlsVerifyError { reasons },
        ))))
    }
}

impl ServerCertVerifier for RaTlsServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        // The server name is not checked: the quote, not a name, identifies the
        // worker, and workers are reached by IP through port forwards.
        let report = verify_certificate_at(end_entity.as_ref(), &self.config, now.as_secs());
        let accepted = report.accepted;
        let reasons = report.reasons.clone();
        self.record(report);
        if accepted {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(Self::reject(reasons))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General(
            "RA-TLS accepts TLS 1.3 only; a TLS 1.2 signature was offered".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
        .map_err(|e| {
            let reason = Reason::new(
                ReasonCode::TlsSignature,
                format!("the TLS 1.3 handshake signature does not verify with the certificate's key: {e}"),
            );
            if let Ok(mut g) = self.last.lock() {
                if let Some(r) = g.as_mut() {
                    r.accepted = false;
                    r.reasons.push(reason.clone());
                }
            }
            Self::reject(vec![reason])
        })
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
