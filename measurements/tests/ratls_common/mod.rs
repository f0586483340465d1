//! A simulated RA-TLS worker for the `ratls_*` tests: a sim-TEE quote whose
//! REPORTDATA is the claims digest, an rcgen certificate carrying it, and a real
//! tokio-rustls TLS 1.3 server with a tiny hyper app answering `/attestation`.
//! Each [`Tamper`] knob breaks one binding, so each test sees one named reason.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use cocoon_measurements::claims::Claims;
use cocoon_measurements::policy::{Allowed, Policy};
use cocoon_measurements::ratls::{
    self, AttestationResponse, RaTlsEvidence, RuntimeEvent, TeeKind, EVENT_CONFIG,
    EVENT_ENGINE_CMDLINE, EVENT_MODEL, RESPONSE_VERSION,
};
use cocoon_measurements::sim::SimPki;
use cocoon_measurements::Digest48;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rcgen::PublicKeyData as _;
use sha2::{Digest as _, Sha256};

/// 2026-01-01T00:00:00Z .. 2036-01-01T00:00:00Z: the dev sim PKI's window.
pub const NOT_BEFORE: u64 = 1_767_225_600;
pub const NOT_AFTER: u64 = 2_082_758_400;
/// Verification time: 30 days into the window (never the wall clock).
pub const AT: u64 = NOT_BEFORE + 30 * 86_400;

pub const CONFIG_TOML: &str = "listen = \"0.0.0.0:8443\"\n[engine]\nkind = \"none\"\n";
pub const WALLET: &str = "UQBvW8Z5huBkMJYdnfAEM5JqTNkuWX3diqYENkWsIL0XggGG";

pub fn mrtd() -> Digest48 {
    Digest48::sha384(b"test firmware")
}
pub fn rtmr(i: u8) -> Digest48 {
    Digest48::sha384(&[b'r', i])
}

pub fn pki(seed: u8) -> SimPki {
    SimPki::from_seed([seed; 32], NOT_BEFORE, NOT_AFTER).unwrap()
}

/// The policy pinning the test worker's registers.
pub fn policy() -> Policy {
    let mut p = Policy::default_unpinned();
    p.registers.mrtd = Allowed::OneOf(vec![mrtd()]);
    p.registers.rtmr1 = Allowed::OneOf(vec![rtmr(1)]);
    p.registers.rtmr2 = Allowed::OneOf(vec![rtmr(2)]);
    p.report_data.binding = cocoon_measurements::policy::Binding::ClaimsV1;
    p
}

/// One broken binding per knob.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tamper {
    /// The claims carry another key than the certificate's.
    pub claims_spki_other: bool,
    /// The certificate's quote has a REPORTDATA that is not the claims digest.
    pub report_data_wrong: bool,
    /// A runtime event's payload is changed in the response (digest kept).
    pub runtime_log_tampered: bool,
    /// The response's claims carry another nonce than the client's.
    pub nonce_wrong: bool,
    /// The server signs the handshake with another key than its certificate's.
    pub wrong_tls_key: bool,
}

/// Serves the worker's certificate with a key that does not match it.
#[derive(Debug)]
struct MismatchedKey(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for MismatchedKey {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

pub struct Worker {
    pub pki: SimPki,
    pub key: rcgen::KeyPair,
    pub cert_der: Vec<u8>,
    pub log: Vec<RuntimeEvent>,
    pub tamper: Tamper,
    /// GPU evidence JSON the claims bind and the response serves (`None`: no GPU).
    pub gpu: Option<serde_json::Value>,
    claims_spki: Vec<u8>,
}

fn runtime_log() -> Vec<RuntimeEvent> {
    vec![
        RuntimeEvent::new(EVENT_CONFIG, Sha256::digest(CONFIG_TOML).to_vec()),
        RuntimeEvent::new(EVENT_MODEL, b"none".to_vec()),
        RuntimeEvent::new(EVENT_ENGINE_CMDLINE, b"none".to_vec()),
    ]
}

impl Worker {
    pub fn new(pki: SimPki, tamper: Tamper) -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let claims_spki = if tamper.claims_spki_other {
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .unwrap()
                .subject_public_key_info()
        } else {
            key.subject_public_key_info()
        };
        let log = runtime_log();
        let mut w = Worker {
            pki,
            key,
            cert_der: Vec::new(),
            log,
            tamper,
            gpu: None,
            claims_spki,
        };
        let claims = w.claims(None);
        let mut report_data = claims.report_data();
        if tamper.report_data_wrong {
            report_data[0] ^= 1;
        }
        let evidence = RaTlsEvidence {
            tee: TeeKind::Sim,
            quote: w.quote(report_data),
            claims,
            collateral_json: Some(w.pki.collateral_json().unwrap()),
        };
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "cocoon-worker");
        for (oid, content) in evidence.to_extensions() {
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(oid, content));
        }
        w.cert_der = params.self_signed(&w.key).unwrap().der().to_vec();
        w
    }

    pub fn claims(&self, nonce: Option<Vec<u8>>) -> Claims {
        Claims {
            tls_spki_der: self.claims_spki.clone(),
            receipt_public_key: [0x22; 32],
            gpu_evidence_digest: self
                .gpu
                .as_ref()
                .map(cocoon_measurements::gpu::digest::evidence_digest),
            runtime_event_log_digest: ratls::replay(&self.log),
            wallet_address: WALLET.into(),
            nonce,
        }
    }

    fn quote(&self, report_data: [u8; 64]) -> Vec<u8> {
        let mut td = self.pki.td_fields();
        td.mr_td = mrtd();
        td.rtmr = [rtmr(0), rtmr(1), rtmr(2), ratls::replay(&self.log)];
        td.report_data = report_data;
        self.pki.quote(&td).unwrap()
    }

    /// The `/attestation` answer to `nonce`.
    pub fn attestation(&self, nonce: &[u8]) -> AttestationResponse {
        let mut n = nonce.to_vec();
        if self.tamper.nonce_wrong {
            n[0] ^= 1;
        }
        let claims = self.claims(Some(n));
        let mut log = self.log.clone();
        if self.tamper.runtime_log_tampered {
            log[1].payload = b"verity:00".to_vec();
        }
        AttestationResponse {
            version: RESPONSE_VERSION,
            tee: TeeKind::Sim,
            quote_hex: hex::encode(self.quote(claims.report_data())),
            claims_hex: hex::encode(claims.encode()),
            collateral: Some(self.pki.collateral().clone()),
            runtime_event_log: log,
            rtmr3_extended: true,
            boot_event_log_b64: None,
            boot_event_log_format: None,
            gpu_evidence: self.gpu.clone(),
            config_toml: CONFIG_TOML.into(),
            wallet_address: WALLET.into(),
            receipt_public_key_hex: hex::encode([0x22; 32]),
        }
    }

    fn server_config(&self) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth();
        if self.tamper.wrong_tls_key {
            let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let signing_key = provider
                .key_provider
                .load_private_key(rustls::pki_types::PrivateKeyDer::Pkcs8(
                    other.serialize_der().into(),
                ))
                .unwrap();
            let certified =
                rustls::sign::CertifiedKey::new(vec![self.cert_der.clone().into()], signing_key);
            return builder.with_cert_resolver(Arc::new(MismatchedKey(Arc::new(certified))));
        }
        builder
            .with_single_cert(
                vec![self.cert_der.clone().into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(self.key.serialize_der().into()),
            )
            .unwrap()
    }
}

fn nonce_of(query: Option<&str>) -> Option<Vec<u8>> {
    let q = query?;
    let v = q.split('&').find_map(|kv| kv.strip_prefix("nonce="))?;
    hex::decode(v).ok().filter(|n| !n.is_empty())
}

/// Serve `worker` over TLS 1.3 on 127.0.0.1 (a free port) from a background thread
/// for the rest of the test process.
pub fn serve(worker: Worker) -> SocketAddr {
    let worker = Arc::new(worker);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(worker.server_config()));
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let worker = worker.clone();
                tokio::spawn(async move {
                    // A client that rejects the certificate aborts the handshake.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                        let worker = worker.clone();
                        async move {
                            let resp = match (req.uri().path(), nonce_of(req.uri().query())) {
                                ("/attestation", Some(nonce)) => {
                                    let body =
                                        serde_json::to_vec(&worker.attestation(&nonce)).unwrap();
                                    hyper::Response::new(Full::new(Bytes::from(body)))
                                }
                                _ => {
                                    let mut r = hyper::Response::new(Full::new(Bytes::from(
                                        "{\"error\":\"not found\"}",
                                    )));
                                    *r.status_mut() = hyper::StatusCode::NOT_FOUND;
                                    r
                                }
                            };
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
    });
    addr
}
