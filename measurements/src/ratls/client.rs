//! A client that connects to a worker over RA-TLS and asks for a fresh attestation
//! on the same connection: what `cocoon-measure connect` and proxies do.
//!
//! One TLS 1.3 connection: the handshake is judged by [`RaTlsServerVerifier`], then
//! `GET /attestation?nonce=<hex>` (HTTP/1.1) is answered over that connection, so
//! the fresh quote's claims must carry the key the handshake proved.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::Serialize;

use super::response::AttestationResponse;
use super::server::{RaTlsServerVerifier, RaTlsVerifyError};
use super::verify::{
    verify_attestation, AttestationReport, CertificateReport, RaTlsVerifierConfig,
};
use crate::policy::{Reason, ReasonCode};

/// Largest `/attestation` body read (a quote, collateral and a boot log fit in 1 MiB).
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// Limit on the whole exchange (connect, handshake, request).
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// A worker address, `https://HOST[:PORT][/]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, ConnectError> {
        let bad = |why: &str| ConnectError::Url(format!("{url:?}: {why}"));
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| bad("must start with https://"))?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') || authority.contains('?') || authority.contains('@') {
            return Err(bad(
                "only https://HOST:PORT is accepted (no path, query or user)",
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None => 443,
            Some(p) => p.parse().map_err(|_| bad("port is not a number 0-65535"))?,
        };
        Ok(Target {
            host: host.to_string(),
            port,
        })
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A connection that could not be judged (exit 2 at the CLI), as opposed to a
/// worker that was judged and rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("URL {0}")]
    Url(String),
    #[error("cannot connect to {target}: {source}")]
    Connect {
        target: String,
        source: std::io::Error,
    },
    #[error("TLS handshake with {target} failed: {message}")]
    Tls { target: String, message: String },
    #[error("GET /attestation on {target}: {message}")]
    Http { target: String, message: String },
    #[error("{target} did not answer within {0:?}", EXCHANGE_TIMEOUT)]
    Timeout { target: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// What `connect` established.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectReport {
    pub accepted: bool,
    pub target: Target,
    /// The handshake's certificate, judged.
    pub certificate: Option<CertificateReport>,
    /// The `/attestation` answer, judged (absent when the handshake was rejected).
    pub attestation: Option<AttestationReport>,
    /// Every failed check of both, certificate first.
    pub reasons: Vec<Reason>,
}

/// Connect to `url`, verify the handshake, ask `/attestation` with `nonce` on the
/// same connection and verify the answer.
pub async fn connect_and_attest(
    url: &str,
    config: RaTlsVerifierConfig,
    nonce: &[u8],
) -> Result<ConnectReport, ConnectError> {
    let target = Target::parse(url)?;
    let t = target.authority();
    tokio::time::timeout(EXCHANGE_TIMEOUT, exchange(target, config, nonce))
        .await
        .map_err(|_| ConnectError::Timeout { target: t })?
}

async fn exchange(
    target: Target,
    config: RaTlsVerifierConfig,
    nonce: &[u8],
) -> Result<ConnectReport, ConnectError> {
    let authority = target.authority();
    let verifier = Arc::new(RaTlsServerVerifier::new(config));
    let tls = verifier
        .client_config()
        .map_err(|e| ConnectError::Config(e.to_string()))?;
    let server_name = ServerName::try_from(target.host.clone())
        .map_err(|e| ConnectError::Url(format!("host {:?}: {e}", target.host)))?;
    let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|source| ConnectError::Connect {
            target: authority.clone(),
            source,
        })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let stream = match connector.connect(server_name, tcp).await {
        Ok(s) => s,
        Err(e) => {
            // A rejection by our verifier is a verdict, not a connection failure.
            let ours = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .and_then(RaTlsVerifyError::from_rustls)
                .is_some();
            return match verifier.last_report() {
                Some(report) if ours || !report.accepted => Ok(ConnectReport {
                    accepted: false,
                    target,
                    reasons: report.reasons.clone(),
                    certificate: Some(report),
                    attestation: None,
                }),
                _ => Err(ConnectError::Tls {
                    target: authority,
                    message: e.to_string(),
                }),
            };
        }
    };
    let certificate = verifier.last_report();
    let presented_spki = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| super::cert::RaTlsEvidence::from_certificate_der(c.as_ref()))
        .and_then(Result::ok)
        .map(|(_, spki)| spki)
        .ok_or_else(|| ConnectError::Tls {
            target: authority.clone(),
            message: "no readable server certificate after the handshake".into(),
        })?;
    let response = get_attestation(stream, &target, nonce).await?;
    let mut attestation = verify_attestation(&response, &presented_spki, nonce, verifier.config());
    if let Some(tee) = certificate.as_ref().and_then(|c| c.tee) {
        if tee != response.tee {
            attestation.accepted = false;
            attestation.reasons.push(Reason::mismatch(
                ReasonCode::ResponseMismatch,
                "the response's TEE kind differs from the certificate's",
                tee.as_str(),
                response.tee.as_str(),
            ));
        }
    }
    let mut reasons: Vec<Reason> = certificate
        .as_ref()
        .map(|c| c.reasons.clone())
        .unwrap_or_default();
    reasons.extend(attestation.reasons.iter().cloned());
    Ok(ConnectReport {
        accepted: reasons.is_empty() && certificate.as_ref().is_some_and(|c| c.accepted),
        target,
        certificate,
        attestation: Some(attestation),
        reasons,
    })
}

async fn get_attestation<S>(
    stream: S,
    target: &Target,
    nonce: &[u8],
) -> Result<AttestationResponse, ConnectError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let authority = target.authority();
    let http = |message: String| ConnectError::Http {
        target: authority.clone(),
        message,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| http(e.to_string()))?;
    let driver = tokio::spawn(conn);
    let request = hyper::Request::get(format!("/attestation?nonce={}", hex::encode(nonce)))
        .header(hyper::header::HOST, &authority)
        .body(Empty::<Bytes>::new())
        .map_err(|e| http(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| http(e.to_string()))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| http(format!("reading the body: {e}")))?
        .to_bytes();
    driver.abort();
    if !status.is_success() {
        let text = String::from_utf8_lossy(body.get(..512).unwrap_or(&body));
        return Err(http(format!("HTTP status {status}: {text}")));
    }
    serde_json::from_slice(&body)
        .map_err(|e| http(format!("the body is not an attestation response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_parsing() {
        let t = Target::parse("https://127.0.0.1:8443").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 8443));
        assert_eq!(Target::parse("https://worker/").unwrap().port, 443);
        let v6 = Target::parse("https://[::1]:9").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 9));
        assert_eq!(v6.authority(), "[::1]:9");
        for bad in [
            "http://x:1",
            "https://x:1/path",
            "https://:1",
            "https://x:99999",
            "https://[::1",
            "https://u@x:1",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(ConnectError::Url(_))),
                "{bad}"
            );
        }
    }
}
