//! The pooled HTTP/1.1 client to the engine on loopback.
//!
//! One client for the whole process: connections to vLLM are kept alive and reused,
//! so a request costs no TCP handshake. Request bodies are always complete
//! (`Full<Bytes>`): the agent reads and checks them before forwarding anything.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub type UpstreamClient = Client<HttpConnector, Full<Bytes>>;

/// Build the client; `max_idle` bounds idle keep-alive connections kept per host.
pub fn client(max_idle: usize) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    // Small requests and SSE events must not wait for Nagle.
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(max_idle)
        .build(connector)
}
