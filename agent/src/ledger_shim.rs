//! Temporary stand-ins for the ledger helper's `accounting` and `ton` modules.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    #[serde(default)]
    pub nanoton_per_token: Option<u64>,
}

impl Pricing {
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

pub fn parse_owner_address(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("empty".into());
    }
    Ok(s.to_string())
}

/// Stand-in for `ton::WorkerWallet` (a wallet key generated inside the TEE).
pub struct WorkerWallet {
    address: String,
}

impl WorkerWallet {
    pub fn generate() -> Result<Self, String> {
        Ok(WorkerWallet {
            address: "0:0000000000000000000000000000000000000000000000000000000000000000".into(),
        })
    }
    pub fn address(&self) -> String {
        self.address.clone()
    }
}

/// Token counts from the engine's `usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageTokens {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

#[derive(serde::Deserialize)]
struct UsageOnly {
    usage: Option<RawUsage>,
}
#[derive(serde::Deserialize)]
struct RawUsage {
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// `usage` of a complete (non-stream) response body.
pub fn usage_from_body(body: &[u8]) -> Option<UsageTokens> {
    let u: UsageOnly = serde_json::from_slice(body).ok()?;
    u.usage.map(|u| UsageTokens {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
    })
}

/// A stream request rewritten to ask for usage.
pub struct StreamPrep {
    pub body: Vec<u8>,
    pub client_wants_usage: bool,
}

pub fn prepare_stream_request(body: &[u8]) -> Result<StreamPrep, String> {
    let mut v: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let obj = v.as_object_mut().ok_or("request body is not a JSON object")?;
    let wants = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let opts = obj
        .entry("stream_options")
        .or_insert_with(|| serde_json::json!({}));
    if let Some(o) = opts.as_object_mut() {
        o.insert("include_usage".into(), serde_json::Value::Bool(true));
    }
    Ok(StreamPrep {
        body: serde_json::to_vec(&v).map_err(|e| e.to_string())?,
        client_wants_usage: wants,
    })
}

/// One complete SSE event the tap lets through.
pub enum TapEvent {
    Data(bytes::Bytes),
    Done(bytes::Bytes),
}

/// Splits an SSE byte stream into events, takes the usage chunk.
pub struct SseUsageTap {
    buf: Vec<u8>,
    client_wants_usage: bool,
    usage: Option<UsageTokens>,
}

impl SseUsageTap {
    pub fn new(client_wants_usage: bool) -> Self {
        SseUsageTap {
            buf: Vec::new(),
            client_wants_usage,
            usage: None,
        }
    }
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<TapEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = find(&self.buf, b"\n\n") {
            let ev: Vec<u8> = self.buf.drain(..end + 2).collect();
            let data = ev.strip_prefix(b"data: ").unwrap_or(&ev);
            let data = &data[..data.len().saturating_sub(2)];
            if data == b"[DONE]" {
                out.push(TapEvent::Done(bytes::Bytes::from(ev)));
                continue;
            }
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
                if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
                    self.usage = Some(UsageTokens {
                        prompt_tokens: u["prompt_tokens"].as_u64().unwrap_or(0),
                        completion_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
                    });
                    let only_usage = v["choices"].as_array().is_some_and(|a| a.is_empty());
                    if only_usage && !self.client_wants_usage {
                        continue;
                    }
                }
            }
            out.push(TapEvent::Data(bytes::Bytes::from(ev)));
        }
        out
    }
    pub fn usage(&self) -> Option<UsageTokens> {
        self.usage
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}
