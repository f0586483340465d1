//! Usage accounting for streamed (SSE) responses.
//!
//! A streamed response reports token counts only when the request asks for them with
//! `stream_options.include_usage` (OpenAI API reference, "Create chat completion",
//! `stream_options`); the engine then sends one extra chunk with `"choices": []` and
//! the `usage` object just before `data: [DONE]` (vLLM: `serving_chat.py`,
//! `include_usage`). The agent always asks, so every stream is paid for, and removes
//! that chunk again when the client did not ask, so the client sees what it asked for.
//!
//! The tap sits in the proxy's body path, so it must not add latency: each complete SSE
//! event (terminated by a blank line, WHATWG HTML "Server-sent events" 9.2.5) is
//! forwarded in the call that completes it; only the incomplete trailing event is held.
#![deny(clippy::arithmetic_side_effects)]

use bytes::{Bytes, BytesMut};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

use super::usage::{UsageError, UsageTokens};

/// Default cap on the bytes of one incomplete event held back. vLLM's largest events
/// (a token with top-20 logprobs) are a few KiB; a megabyte without an event boundary
/// means the upstream is not speaking SSE.
pub const DEFAULT_HELD_CAP: usize = 1 << 20;

/// Why a streamed request or response could not be handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("request body is not a JSON object")]
    RequestNotObject,
    #[error("request field `stream` is not a boolean")]
    InvalidStream,
    #[error("request field `stream_options` is not an object")]
    InvalidStreamOptions,
    #[error("request field `stream_options.include_usage` is not a boolean")]
    InvalidIncludeUsage,
    #[error("upstream SSE event exceeds {cap} bytes without an event boundary ({held} held)")]
    EventTooLarge { held: usize, cap: usize },
}

/// What [`prepare_stream_request`] found and changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPrep {
    /// The request asks for a streamed (SSE) response.
    pub stream: bool,
    /// The client itself set `stream_options.include_usage = true`, so the usage chunk
    /// is forwarded; otherwise the tap strips it.
    pub client_wants_usage: bool,
}

impl StreamPrep {
    /// A tap for the response body when the request streams.
    pub fn tap(&self) -> Option<SseUsageTap> {
        self.stream
            .then(|| SseUsageTap::new(self.client_wants_usage))
    }
}

/// For `"stream": true` requests, forces `stream_options.include_usage = true` and
/// remembers whether the client had asked for it. Non-streamed requests are left alone
/// (their response always carries `usage`).
pub fn prepare_stream_request(body: &mut Value) -> Result<StreamPrep, StreamError> {
    let obj = body.as_object_mut().ok_or(StreamError::RequestNotObject)?;
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(StreamError::InvalidStream),
    };
    if !stream {
        return Ok(StreamPrep {
            stream: false,
            client_wants_usage: false,
        });
    }
    let options = obj
        .entry("stream_options")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if options.is_null() {
        *options = Value::Object(serde_json::Map::new());
    }
    let options = options
        .as_object_mut()
        .ok_or(StreamError::InvalidStreamOptions)?;
    let client_wants_usage = match options.get("include_usage") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(StreamError::InvalidIncludeUsage),
    };
    options.insert("include_usage".into(), Value::Bool(true));
    Ok(StreamPrep {
        stream: true,
        client_wants_usage,
    })
}

/// Watches an upstream SSE byte stream for the usage chunk and `[DONE]`.
///
/// Line ends: `\n` and `\r\n` (what OpenAI and vLLM send; a lone `\r`, also allowed by
/// the SSE grammar, is not recognised and would only delay events until the cap).
#[derive(Debug)]
pub struct SseUsageTap {
    cap: usize,
    /// Bytes of the incomplete trailing event.
    held: BytesMut,
    /// Offset in `held` up to which line ends were already looked for, so a large event
    /// arriving in many small chunks is scanned once, not once per chunk.
    scanned: usize,
    /// Offset in `held` where the current (unterminated) line starts.
    line_start: usize,
    seen: Seen,
}

/// What the tap learned from the events so far (apart from `held`, so an event can be
/// inspected in place while `held` is borrowed).
#[derive(Debug)]
struct Seen {
    client_wants_usage: bool,
    usage: Option<UsageTokens>,
    usage_error: Option<UsageError>,
    done: bool,
    stripped_events: u64,
}

/// The fields of a chunk the tap looks at; everything else is skipped unparsed.
#[derive(Deserialize)]
struct ChunkHead {
    #[serde(default)]
    choices: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    usage: Option<Value>,
}

impl SseUsageTap {
    pub fn new(client_wants_usage: bool) -> SseUsageTap {
        SseUsageTap::with_cap(client_wants_usage, DEFAULT_HELD_CAP)
    }

    pub fn with_cap(client_wants_usage: bool, cap: usize) -> SseUsageTap {
        SseUsageTap {
            cap,
            held: BytesMut::new(),
            scanned: 0,
            line_start: 0,
            seen: Seen {
                client_wants_usage,
                usage: None,
                usage_error: None,
                done: false,
                stripped_events: 0,
            },
        }
    }

    /// Takes the next upstream bytes; returns the bytes to send to the client now:
    /// every event completed by this chunk (minus a stripped usage chunk).
    ///
    /// `EventTooLarge` means the upstream is not sending SSE events: abort the
    /// response (the tap keeps no usable state past it).
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Bytes, StreamError> {
        self.held.extend_from_slice(chunk);
        let mut event_start = 0usize;
        let mut drops: Vec<(usize, usize)> = Vec::new();
        let mut pos = self.scanned;
        while let Some(rel) = self
            .held
            .get(pos..)
            .and_then(|t| t.iter().position(|&b| b == b'\n'))
        {
            let nl = pos.saturating_add(rel);
            let next = nl.saturating_add(1);
            let line = self.held.get(self.line_start..nl).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                // Blank line: the event [event_start, next) is complete.
                let keep = match self.held.get(event_start..next) {
                    Some(event) => self.seen.inspect(event),
                    None => true,
                };
                if !keep {
                    drops.push((event_start, next));
                }
                event_start = next;
            }
            self.line_start = next;
            pos = next;
        }
        self.scanned = self.held.len();
        let complete = self.held.split_to(event_start);
        self.scanned = self.scanned.saturating_sub(event_start);
        self.line_start = self.line_start.saturating_sub(event_start);
        if self.held.len() > self.cap {
            return Err(StreamError::EventTooLarge {
                held: self.held.len(),
                cap: self.cap,
            });
        }
        Ok(without(complete, &drops))
    }

    /// The upstream ended: returns the held bytes (an event the upstream never
    /// terminated; forwarded as is so the client sees what the engine sent).
    pub fn finish(&mut self) -> Bytes {
        let rest = self.held.split().freeze();
        self.scanned = 0;
        self.line_start = 0;
        if rest.is_empty() || self.seen.inspect(&rest) {
            rest
        } else {
            Bytes::new()
        }
    }

    /// Token counts from the stream's usage chunk, once seen.
    pub fn usage(&self) -> Option<UsageTokens> {
        self.seen.usage
    }

    /// A usage chunk was seen but its `usage` was unreadable.
    pub fn usage_error(&self) -> Option<&UsageError> {
        self.seen.usage_error.as_ref()
    }

    /// `data: [DONE]` was seen: the engine finished the stream normally.
    pub fn saw_done(&self) -> bool {
        self.seen.done
    }

    /// Number of usage chunks removed from the stream.
    pub fn stripped_events(&self) -> u64 {
        self.seen.stripped_events
    }

    /// Bytes currently held back (an incomplete event).
    pub fn held_len(&self) -> usize {
        self.held.len()
    }
}

impl Seen {
    /// Looks at one complete event; returns whether to forward it.
    fn inspect(&mut self, event: &[u8]) -> bool {
        let data = event_data(event);
        let data = data.as_slice();
        if data == b"[DONE]" {
            self.done = true;
            return true;
        }
        // Cheap filter before any JSON parsing: only a chunk that mentions "usage" can
        // carry it (an escaped `\"usage\"` in content passes the filter and is then
        // rejected by the parse below).
        if !contains(data, b"\"usage\"") {
            return true;
        }
        // An object only: the derived struct would also take an array of its fields.
        if data.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return true;
        }
        let Ok(head) = serde_json::from_slice::<ChunkHead>(data) else {
            return true;
        };
        let usage = match head.usage {
            None | Some(Value::Null) => return true,
            Some(u) => u,
        };
        match UsageTokens::from_usage_value(&usage) {
            Ok(u) => {
                self.usage = Some(u);
                self.usage_error = None;
            }
            Err(e) => self.usage_error = Some(e),
        }
        // Only the dedicated usage chunk (`choices: []`) is ours to remove; a content
        // chunk that carries usage (vLLM `continuous_usage_stats`) is the client's.
        let usage_only = head.choices.is_some_and(|c| c.is_empty());
        if usage_only && !self.client_wants_usage {
            self.stripped_events = self.stripped_events.saturating_add(1);
            return false;
        }
        true
    }
}

/// The event's data: its `data:` field values joined by `\n` (SSE 9.2.6).
fn event_data(event: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut first = true;
    for line in event.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(value) = line.strip_prefix(b"data:") else {
            continue;
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if !first {
            out.push(b'\n');
        }
        first = false;
        out.extend_from_slice(value);
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `bytes` without the given sorted, disjoint ranges; no copy when there are none.
fn without(bytes: BytesMut, drops: &[(usize, usize)]) -> Bytes {
    if drops.is_empty() {
        return bytes.freeze();
    }
    let mut out = BytesMut::with_capacity(bytes.len());
    let mut at = 0usize;
    for &(start, end) in drops {
        out.extend_from_slice(bytes.get(at..start).unwrap_or_default());
        at = end;
    }
    out.extend_from_slice(bytes.get(at..).unwrap_or_default());
    out.freeze()
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
