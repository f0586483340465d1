//! The pooled HTTP/1.1 client to the engine on loopback.
//!
//! A small pool of hyper connection handles instead of hyper-util's generic client:
//! the engine is one fixed address, so there is no per-request key hashing, and a
//! finished request returns its connection synchronously instead of spawning a task
//! to wait for it (the generic client does that for every HTTP/1 request). Idle
//! connections are reused LIFO, so the warmest one serves next. Request bodies are
//! always complete (`Full<Bytes>`): the agent reads and checks them before
//! forwarding anything.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, HOST};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a pooled connection may take to finish its previous exchange before it
/// is given up on for a fresh one.
const READY_GRACE: Duration = Duration::from_millis(20);

type Sender = SendRequest<Full<Bytes>>;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connect to the engine at {addr}: {why}")]
    Connect { addr: SocketAddr, why: String },
    #[error("engine request: {0}")]
    Request(#[from] hyper::Error),
}

struct Inner {
    addr: SocketAddr,
    host: HeaderValue,
    idle: Mutex<Vec<Sender>>,
    max_idle: usize,
}

/// Cheap to clone; all clones share the pool.
#[derive(Clone)]
pub struct UpstreamClient {
    inner: Arc<Inner>,
}

/// A connection in use; back to the pool when dropped (after the response body was
/// read, which is when the connection can take the next request).
pub struct Lease {
    sender: Option<Sender>,
    inner: Arc<Inner>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(s) = self.sender.take() {
            if s.is_closed() {
                return;
            }
            let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < self.inner.max_idle {
                idle.push(s);
            }
        }
    }
}

impl UpstreamClient {
    /// A client for the engine at `127.0.0.1:port`, keeping up to `max_idle` idle
    /// keep-alive connections.
    pub fn new(port: u16, max_idle: usize) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let host = HeaderValue::from_str(&addr.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("127.0.0.1"));
        UpstreamClient {
            inner: Arc::new(Inner {
                addr,
                host,
                idle: Mutex::new(Vec::new()),
                max_idle,
            }),
        }
    }

    fn pop(&self) -> Option<Sender> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
    }

    async fn checkout(&self) -> Result<Sender, UpstreamError> {
        while let Some(mut s) = self.pop() {
            if s.is_closed() {
                continue;
            }
            match poll_fn(|cx| Poll::Ready(s.poll_ready(cx))).await {
                Poll::Ready(Ok(())) => return Ok(s),
                Poll::Ready(Err(_)) => continue,
                Poll::Pending => {
                    if let Ok(Ok(())) = tokio::time::timeout(READY_GRACE, s.ready()).await {
                        return Ok(s);
                    }
                }
            }
        }
        self.connect().await
    }

    async fn connect(&self) -> Result<Sender, UpstreamError> {
        let addr = self.inner.addr;
        let err = |why: String| UpstreamError::Connect { addr, why };
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| err("timed out".into()))?
            .map_err(|e| err(e.to_string()))?;
        // Small requests and SSE events must not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| err(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "engine connection closed with an error");
            }
        });
        Ok(sender)
    }

    /// Send `req` (origin-form URI: path and query) to the engine.
    pub async fn request(
        &self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<(Response<Incoming>, Lease), UpstreamError> {
        req.headers_mut().insert(HOST, self.inner.host.clone());
        let mut sender = self.checkout().await?;
        let resp = sender.send_request(req).await?;
        Ok((
            resp,
            Lease {
                sender: Some(sender),
                inner: self.inner.clone(),
            },
        ))
    }
}
