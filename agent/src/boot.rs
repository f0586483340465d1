//! The boot sequence (issue 6, item 2), in the order that makes it sound:
//!
//! 1. config (already parsed and validated by the caller);
//! 2. RTMR3 events `config`, `model`, `engine-cmdline` — extended before any key
//!    exists, then the log is sealed;
//! 3. TLS key, Ed25519 receipt key and worker wallet, in memory;
//! 4. GPU step (its nonce is bound to the TLS key, so it follows the key);
//! 5. claims -> quote -> RA-TLS certificate;
//! 6. listener bound (attestation and health answer from here on);
//! 7. engine launched under supervision;
//! 8. the ready line on stdout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use cocoon_measurements::ratls::{EVENT_CONFIG, EVENT_ENGINE_CMDLINE, EVENT_MODEL};
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::config::{EngineKind, LoadedConfig};
use crate::engine::{
    cmdline_payload, spawn_supervisor, EngineCommand, EngineState, EngineStatus, Probe,
    SupervisorHandle, Timing,
};
use crate::gpu::{self, GpuOutcome};
use crate::keys::AgentKeys;
use crate::runtime_log::RuntimeLog;
use crate::server::attestation::Attestor;
use crate::server::billing::Billing;
use crate::server::metrics::Metrics;
use crate::server::{self, AppState};
use crate::tee::{self, TeeBackend};
use crate::{cert, model_digest, upstream};

/// A boot step that failed; nothing is served.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("TEE: {0}")]
    Tee(#[from] tee::TeeError),
    #[error("model digest: {0}")]
    Model(#[from] model_digest::ModelDigestError),
    #[error("runtime event log: {0}")]
    RuntimeLog(#[from] crate::runtime_log::RuntimeLogError),
    #[error("keys: {0}")]
    Keys(#[from] crate::keys::KeyError),
    #[error("GPU: {0}")]
    Gpu(#[from] gpu::GpuError),
    #[error("certificate: {0}")]
    Cert(#[from] cert::CertError),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("data_dir {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// A serving agent.
pub struct RunningAgent {
    pub local_addr: SocketAddr,
    pub certificate: CertificateDer<'static>,
    /// When the certificate was issued (Unix seconds); it is valid from an hour
    /// before to 30 days after.
    pub issued_at: u64,
    pub state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    supervisor: Option<SupervisorHandle>,
}

impl RunningAgent {
    /// The CONTRACT section 5 ready line.
    pub fn ready_line(&self) -> String {
        format!(
            "cocoon-agent: ready tee={} listen={} engine={}",
            self.state.attestor_tee_kind(),
            self.local_addr,
            self.state.engine_kind.as_str()
        )
    }

    /// Stop accepting, stop the engine's process group, drain connections.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Some(sup) = self.supervisor {
            sup.stop().await;
        }
        if let Err(e) = self.server.await {
            tracing::error!(error = %e, "server task failed");
        }
    }
}

/// Run steps 2-7 with the TEE the config names.
pub async fn start(loaded: LoadedConfig) -> Result<RunningAgent, BootError> {
    let tee: Arc<dyn TeeBackend> = Arc::from(tee::from_config(&loaded.config.tee)?);
    start_with_tee(loaded, tee).await
}

/// Run steps 2-7 with a given TEE backend.
pub async fn start_with_tee(
    loaded: LoadedConfig,
    tee: Arc<dyn TeeBackend>,
) -> Result<RunningAgent, BootError> {
    let cfg = &loaded.config;
    tracing::info!(tee = %tee.kind(), config = %loaded.path.display(), "booting");
    std::fs::create_dir_all(&cfg.data_dir).map_err(|source| BootError::DataDir {
        path: cfg.data_dir.clone(),
        source,
    })?;

    // 2. Measure what this worker is before any key exists.
    let command = EngineCommand::from_config(&cfg.engine, &cfg.data_dir);
    let log = RuntimeLog::new(tee.clone());
    log.record(EVENT_CONFIG, loaded.sha256().to_vec())?;
    let model = model_digest::model_digest(cfg)?;
    tracing::info!(%model, "model digest");
    log.record(EVENT_MODEL, model.into_bytes())?;
    log.record(EVENT_ENGINE_CMDLINE, cmdline_payload(&command.argv))?;
    log.seal();
    let snapshot = log.snapshot();
    tracing::info!(
        rtmr3 = %snapshot.digest,
        extended = snapshot.rtmr3_extended,
        "runtime events measured"
    );

    // 3. Keys, in memory only.
    let keys = AgentKeys::generate()?;
    let spki = keys.tls_spki_der();

    // 4. GPU evidence bound to the TLS key.
    let gpu = match gpu::attest(cfg.gpu.required, &spki)? {
        GpuOutcome::Attested(e) => Some(e),
        GpuOutcome::Skipped(_) => None,
    };

    // 5. Certificate.
    let claims = cert::claims(&keys, gpu.as_ref().map(|g| g.digest), snapshot.digest, None);
    let quote_tee = tee.clone();
    let evidence = tokio::task::spawn_blocking(move || cert::evidence(quote_tee.as_ref(), claims))
        .await
        .map_err(|e| {
            cert::CertError::Quote(tee::TeeError::Registers {
                path: "<quote task>".into(),
                why: e.to_string(),
            })
        })??;
    let now = SystemTime::now();
    let issued_at = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| cert::CertError::Clock)?;
    let certificate = cert::issue(&keys, &evidence, &cfg.tls.extra_sans, now)?;
    let tls = server::tls::server_config(certificate.clone(), keys.tls_private_key())?;

    // 6. Listener.
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| BootError::Listen {
            addr: cfg.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| BootError::Listen {
        addr: cfg.listen,
        source,
    })?;

    let metrics = Arc::new(Metrics::new());
    let client =
        upstream::client(usize::try_from(cfg.limits.max_concurrent_requests).unwrap_or(256));
    let engine = Arc::new(EngineStatus::new(match cfg.engine.kind {
        EngineKind::None => EngineState::Disabled,
        EngineKind::Vllm => EngineState::Starting,
    }));
    let attestor = Arc::new(Attestor::new(
        tee.clone(),
        &keys,
        gpu,
        snapshot,
        loaded.text.clone(),
    ));
    let state = Arc::new(AppState {
        engine: engine.clone(),
        client: client.clone(),
        upstream_base: format!("http://127.0.0.1:{}", cfg.engine.port),
        limits: cfg.limits.clone(),
        limiter: Arc::new(Semaphore::new(
            usize::try_from(cfg.limits.max_concurrent_requests).unwrap_or(usize::MAX),
        )),
        metrics: metrics.clone(),
        attestor,
        billing: Billing::new(metrics.clone()),
        engine_kind: cfg.engine.kind,
        tee_kind: tee.kind(),
    });
    let (shutdown, shutdown_rx) = watch::channel(false);
    let server = tokio::spawn(server::serve(listener, tls, state.clone(), shutdown_rx));

    // 7. Engine.
    let supervisor = match cfg.engine.kind {
        EngineKind::None => None,
        EngineKind::Vllm => {
            let probe = Probe::new(
                client,
                cfg.engine.port,
                cfg.engine.served_model_name.clone(),
                cfg.engine.known_answer.clone(),
            );
            let engine_dir = cfg.data_dir.join("engine");
            Some(spawn_supervisor(
                command,
                Timing::from_config(&cfg.engine),
                vec![engine_dir.join("cache"), engine_dir.join("tmp")],
                probe,
                engine,
                metrics.engine_restarts.clone(),
            ))
        }
    };

    Ok(RunningAgent {
        local_addr,
        certificate,
        issued_at,
        state,
        shutdown,
        server,
        supervisor,
    })
}
