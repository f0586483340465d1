//! The one TLS 1.3 listener: health, metrics, attestation and the proxied OpenAI API.

pub mod attestation;
pub mod billing;
pub mod body;
pub mod errors;
pub mod metrics;
mod proxy;
pub mod tls;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::config::Limits;
use crate::engine::EngineStatus;
use crate::upstream::UpstreamClient;
use attestation::Attestor;
use billing::Billing;
use body::RespBody;
use metrics::Metrics;

/// A TLS handshake that takes longer than this is a stalled or hostile client.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish their requests on shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a request handler needs.
pub struct AppState {
    pub engine: Arc<EngineStatus>,
    pub client: UpstreamClient,
    /// `http://127.0.0.1:<engine.port>`.
    pub upstream_base: String,
    pub limits: Limits,
    pub limiter: Arc<Semaphore>,
    pub metrics: Arc<Metrics>,
    pub attestor: Arc<Attestor>,
    pub billing: Billing,
    pub engine_kind: crate::config::EngineKind,
    pub tee_kind: crate::tee::TeeKind,
}

impl AppState {
    pub fn attestor_tee_kind(&self) -> &'static str {
        self.tee_kind.as_str()
    }
}

/// Route names: metric labels, and the receipt's route.
pub mod route {
    pub const HEALTH: &str = "/health";
    pub const METRICS: &str = "/metrics";
    pub const ATTESTATION: &str = "/attestation";
    pub const MODELS: &str = "/v1/models";
    pub const CHAT: &str = "/v1/chat/completions";
    pub const COMPLETIONS: &str = "/v1/completions";
    pub const OTHER: &str = "other";
}

async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, Infallible> {
    let (route, resp) = match (req.method(), req.uri().path()) {
        (&Method::GET, route::HEALTH) => (route::HEALTH, health(&state)),
        (&Method::GET, route::METRICS) => (route::METRICS, metrics(&state)),
        (&Method::GET, route::ATTESTATION) => (route::ATTESTATION, attestation(&state, &req).await),
        (&Method::GET, route::MODELS) => (
            route::MODELS,
            proxy::forward(&state, route::MODELS, req).await,
        ),
        (&Method::POST, route::CHAT) => {
            (route::CHAT, proxy::forward(&state, route::CHAT, req).await)
        }
        (&Method::POST, route::COMPLETIONS) => (
            route::COMPLETIONS,
            proxy::forward(&state, route::COMPLETIONS, req).await,
        ),
        (
            _,
            route::HEALTH
            | route::METRICS
            | route::ATTESTATION
            | route::MODELS
            | route::CHAT
            | route::COMPLETIONS,
        ) => (route::OTHER, errors::method_not_allowed()),
        _ => (route::OTHER, errors::not_found()),
    };
    state.metrics.count(route, resp.status().as_u16());
    Ok(resp)
}

fn json(status: StatusCode, body: String) -> Response<RespBody> {
    let mut resp = Response::new(RespBody::full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The agent is up; `engine` says whether inference is available.
fn health(state: &AppState) -> Response<RespBody> {
    let engine = match state.engine.state() {
        crate::engine::EngineState::Disabled => "disabled".to_string(),
        crate::engine::EngineState::Starting => "starting".to_string(),
        crate::engine::EngineState::Ready => "ready".to_string(),
        crate::engine::EngineState::Restarting(_) => "restarting".to_string(),
        crate::engine::EngineState::Stopped => "stopped".to_string(),
    };
    let body = serde_json::json!({ "status": "ok", "engine": engine }).to_string();
    json(StatusCode::OK, body)
}

fn metrics(state: &AppState) -> Response<RespBody> {
    state
        .metrics
        .engine_state
        .set(i64::from(state.engine.code()));
    let mut resp = Response::new(RespBody::full(state.metrics.encode()));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}

async fn attestation(state: &AppState, req: &Request<Incoming>) -> Response<RespBody> {
    let nonce = match Attestor::parse_nonce(req.uri().query()) {
        Ok(n) => n,
        Err(e) => return errors::bad_request(&e.to_string()),
    };
    match state.attestor.respond(nonce).await {
        Ok((answer, took)) => {
            state.metrics.quote_seconds.observe(took.as_secs_f64());
            match serde_json::to_string(&answer) {
                Ok(body) => json(StatusCode::OK, body),
                Err(e) => errors::internal(&e.to_string()),
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "attestation failed");
            errors::internal(&e.to_string())
        }
    }
}

/// Serve until `shutdown` turns true, then let open connections drain.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = crate::shutdown::requested(&mut shutdown) => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        let mut stop = shutdown.clone();
        conns.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let svc = service_fn(move |req| handle(state.clone(), req));
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(tls), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
                _ = crate::shutdown::requested(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN_TIMEOUT, conn).await;
                }
            }
        });
        // Reap finished connection tasks so the set does not grow without bound.
        while conns.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}
