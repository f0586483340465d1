//! HTTP checks against the engine: liveness, model listing, known answer.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, StatusCode};
use sha2::{Digest as _, Sha256};

use crate::config::KnownAnswer;
use crate::upstream::UpstreamClient;

/// Largest probe response read (a model list or a short completion).
const MAX_PROBE_BODY: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("{what}: {why}")]
    Http { what: &'static str, why: String },
    #[error("{what}: HTTP {status}")]
    Status { what: &'static str, status: u16 },
    #[error("/v1/models does not list {0:?}")]
    ModelMissing(String),
    #[error("known-answer check: completion text has SHA-256 {got}, expected {expected}")]
    WrongAnswer { got: String, expected: String },
    #[error("{what}: timed out after {secs} s")]
    Timeout { what: &'static str, secs: u64 },
}

/// Hex SHA-256 of a completion text: what `engine.known_answer.expected_sha256` pins.
pub fn known_answer_digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Checks against one engine instance.
#[derive(Clone)]
pub struct Probe {
    client: UpstreamClient,
    base: String,
    model: Option<String>,
    known_answer: Option<KnownAnswer>,
}

impl Probe {
    pub fn new(
        client: UpstreamClient,
        port: u16,
        model: Option<String>,
        known_answer: Option<KnownAnswer>,
    ) -> Self {
        Probe {
            client,
            base: format!("http://127.0.0.1:{port}"),
            model,
            known_answer,
        }
    }

    async fn call(
        &self,
        what: &'static str,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Bytes, ProbeError> {
        let http = |why: String| ProbeError::Http { what, why };
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| http(e.to_string()))?;
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| http(e.to_string()))?;
            let status = resp.status();
            let body = http_body_util::Limited::new(resp.into_body(), MAX_PROBE_BODY)
                .collect()
                .await
                .map_err(|e| http(e.to_string()))?
                .to_bytes();
            if status != StatusCode::OK {
                return Err(ProbeError::Status {
                    what,
                    status: status.as_u16(),
                });
            }
            Ok(body)
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| ProbeError::Timeout {
                what,
                secs: timeout.as_secs(),
            })?
    }

    /// `GET /health` answers 200.
    pub async fn health(&self) -> Result<(), ProbeError> {
        self.call(
            "GET /health",
            Method::GET,
            "/health",
            None,
            Duration::from_secs(5),
        )
        .await
        .map(|_| ())
    }

    /// `GET /v1/models` lists the served model.
    pub async fn model_listed(&self) -> Result<(), ProbeError> {
        let Some(model) = &self.model else {
            return Ok(());
        };
        let body = self
            .call(
                "GET /v1/models",
                Method::GET,
                "/v1/models",
                None,
                Duration::from_secs(5),
            )
            .await?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| ProbeError::Http {
            what: "GET /v1/models",
            why: e.to_string(),
        })?;
        let listed = v
            .get("data")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|a| {
                a.iter()
                    .any(|m| m.get("id").and_then(serde_json::Value::as_str) == Some(model))
            });
        if listed {
            Ok(())
        } else {
            Err(ProbeError::ModelMissing(model.clone()))
        }
    }

    /// A greedy completion whose text hashes to the configured digest. `Ok(None)`
    /// when no check is configured; `Ok(Some(digest))` when it passed.
    pub async fn known_answer(&self) -> Result<Option<String>, ProbeError> {
        let Some(ka) = &self.known_answer else {
            return Ok(None);
        };
        let body = serde_json::json!({
            "model": self.model,
            "prompt": ka.prompt,
            "max_tokens": ka.max_tokens,
            "temperature": 0,
        });
        let resp = self
            .call(
                "known-answer POST /v1/completions",
                Method::POST,
                "/v1/completions",
                Some(body.to_string().into_bytes()),
                Duration::from_secs(120),
            )
            .await?;
        let v: serde_json::Value = serde_json::from_slice(&resp).map_err(|e| ProbeError::Http {
            what: "known-answer POST /v1/completions",
            why: e.to_string(),
        })?;
        let text = v
            .pointer("/choices/0/text")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let got = known_answer_digest(text);
        if got.eq_ignore_ascii_case(&ka.expected_sha256) {
            Ok(Some(got))
        } else {
            Err(ProbeError::WrongAnswer {
                got,
                expected: ka.expected_sha256.to_ascii_lowercase(),
            })
        }
    }
}
