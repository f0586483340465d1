#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use super::*;
use serde_json::json;

/// Events of a vLLM chat stream with `include_usage` (shape as vLLM 0.11 emits it:
/// role chunk, content chunks, finish chunk, usage chunk with `choices: []`, `[DONE]`).
/// The second content chunk's text mentions `"usage":{` to exercise the pre-filter.
fn vllm_events(eol: &str) -> Vec<(String, bool)> {
    let ev = |data: &str| format!("data: {data}{eol}{eol}");
    vec![
        (
            ev(
                r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"tiny","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            ),
            true,
        ),
        (
            ev(
                r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"tiny","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]}"#,
            ),
            true,
        ),
        (
            ev(
                r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"tiny","choices":[{"index":0,"delta":{"content":" {\"usage\":{\"prompt_tokens\":1}}"},"logprobs":null,"finish_reason":"length","stop_reason":null}]}"#,
            ),
            true,
        ),
        // The usage chunk: stripped unless the client asked for it.
        (
            ev(
                r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"tiny","choices":[],"usage":{"prompt_tokens":9,"total_tokens":12,"completion_tokens":3}}"#,
            ),
            false,
        ),
        (ev("[DONE]"), true),
    ]
}

fn join(events: &[(String, bool)], only_kept: bool) -> Vec<u8> {
    events
        .iter()
        .filter(|(_, keep)| *keep || !only_kept)
        .flat_map(|(e, _)| e.as_bytes().to_vec())
        .collect()
}

/// What must have been forwarded once the first `p` bytes arrived: every event that
/// ends within them (no complete event may be held back).
fn expected_prefix(events: &[(String, bool)], p: usize, strip: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut end = 0;
    for (e, keep) in events {
        end += e.len();
        if end > p {
            break;
        }
        if *keep || !strip {
            out.extend_from_slice(e.as_bytes());
        }
    }
    out
}

const USAGE: UsageTokens = UsageTokens {
    prompt_tokens: 9,
    completion_tokens: 3,
    total_tokens: 12,
};

#[test]
fn whole_stream_strips_usage_chunk() {
    for eol in ["\n", "\r\n"] {
        let events = vllm_events(eol);
        let input = join(&events, false);
        let mut tap = SseUsageTap::new(false);
        let mut out = tap.feed(&input).unwrap().to_vec();
        out.extend_from_slice(&tap.finish());
        assert_eq!(out, join(&events, true));
        assert_eq!(tap.usage(), Some(USAGE));
        assert!(tap.saw_done());
        assert_eq!(tap.stripped_events(), 1);
        assert!(tap.usage_error().is_none());
    }
}

#[test]
fn whole_stream_kept_when_client_asked() {
    let events = vllm_events("\n");
    let input = join(&events, false);
    let mut tap = SseUsageTap::new(true);
    let out = tap.feed(&input).unwrap();
    assert_eq!(out.as_ref(), input.as_slice());
    assert!(tap.finish().is_empty());
    assert_eq!(tap.usage(), Some(USAGE));
    assert_eq!(tap.stripped_events(), 0);
}

#[test]
fn split_at_every_offset_forwards_each_event_at_once() {
    for eol in ["\n", "\r\n"] {
        let events = vllm_events(eol);
        let input = join(&events, false);
        for client_wants in [false, true] {
            let strip = !client_wants;
            for p in 0..=input.len() {
                let mut tap = SseUsageTap::new(client_wants);
                let first = tap.feed(&input[..p]).unwrap();
                assert_eq!(
                    first.as_ref(),
                    expected_prefix(&events, p, strip).as_slice(),
                    "split at {p} eol {eol:?}"
                );
                let mut out = first.to_vec();
                out.extend_from_slice(&tap.feed(&input[p..]).unwrap());
                out.extend_from_slice(&tap.finish());
                assert_eq!(out, join(&events, strip), "split at {p}");
                assert_eq!(tap.usage(), Some(USAGE), "split at {p}");
                assert!(tap.saw_done());
            }
        }
    }
}

#[test]
fn byte_by_byte() {
    let events = vllm_events("\r\n");
    let input = join(&events, false);
    let mut tap = SseUsageTap::new(false);
    let mut out = Vec::new();
    for (i, b) in input.iter().enumerate() {
        out.extend_from_slice(&tap.feed(std::slice::from_ref(b)).unwrap());
        assert_eq!(out, expected_prefix(&events, i + 1, true), "after byte {i}");
        assert!(tap.held_len() <= input.len());
    }
    assert!(tap.finish().is_empty());
    assert_eq!(tap.usage(), Some(USAGE));
}

#[test]
fn unterminated_last_event_is_forwarded_on_finish() {
    let mut tap = SseUsageTap::new(false);
    assert!(tap.feed(b"data: [DONE]").unwrap().is_empty());
    assert!(!tap.saw_done());
    assert_eq!(tap.finish().as_ref(), b"data: [DONE]");
    assert!(tap.saw_done());
    // An unterminated usage chunk at the end is still counted (and stripped).
    let mut tap = SseUsageTap::new(false);
    let chunk = br#"data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#;
    assert!(tap.feed(chunk).unwrap().is_empty());
    assert!(tap.finish().is_empty());
    assert_eq!(tap.usage().unwrap().total_tokens, 2);
}

#[test]
fn multi_line_data_and_comments() {
    let mut tap = SseUsageTap::new(false);
    let input = b": keep-alive\n\ndata: {\"choices\":[],\ndata: \"usage\":{\"prompt_tokens\":4,\"completion_tokens\":5}}\n\n";
    let out = tap.feed(input).unwrap();
    assert_eq!(out.as_ref(), b": keep-alive\n\n");
    assert_eq!(tap.usage().unwrap().total_tokens, 9);
}

#[test]
fn continuous_usage_chunk_is_not_stripped() {
    let mut tap = SseUsageTap::new(false);
    let input = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1}}\n\n";
    assert_eq!(tap.feed(input).unwrap().as_ref(), input);
    assert_eq!(tap.usage().unwrap().completion_tokens, 1);
}

#[test]
fn array_event_is_not_a_usage_chunk() {
    // The fields of a usage chunk as an array: forwarded as it is, nothing billed.
    let mut tap = SseUsageTap::new(false);
    let input = b"data: [[],{\"prompt_tokens\":4,\"completion_tokens\":1,\"usage\":0}]\n\n";
    assert_eq!(tap.feed(input).unwrap().as_ref(), input);
    assert!(tap.usage().is_none());
    let input =
        b"data:  {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1}}\n\n";
    assert!(tap.feed(input).unwrap().is_empty());
    assert_eq!(tap.usage().unwrap().prompt_tokens, 4);
}

#[test]
fn bad_usage_is_reported_not_fatal() {
    let mut tap = SseUsageTap::new(false);
    let input = b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":\"x\"}}\n\n";
    assert!(tap.feed(input).unwrap().is_empty());
    assert!(tap.usage().is_none());
    assert!(matches!(
        tap.usage_error(),
        Some(UsageError::InvalidField {
            field: "prompt_tokens",
            ..
        })
    ));
}

#[test]
fn held_back_bytes_are_capped() {
    let mut tap = SseUsageTap::with_cap(false, 64);
    // Many complete events in one chunk are fine however large the chunk.
    let many = "data: {}\n\n".repeat(100);
    assert_eq!(tap.feed(many.as_bytes()).unwrap().len(), many.len());
    assert!(tap.feed(&[b'x'; 64]).is_ok());
    assert_eq!(
        tap.feed(b"y").unwrap_err(),
        StreamError::EventTooLarge { held: 65, cap: 64 }
    );
    assert_eq!(DEFAULT_HELD_CAP, 1 << 20);
}

#[test]
fn prepare_forces_include_usage() {
    let mut body = json!({"model": "m", "stream": true});
    let prep = prepare_stream_request(&mut body).unwrap();
    assert_eq!(
        prep,
        StreamPrep {
            stream: true,
            client_wants_usage: false
        }
    );
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert!(prep.tap().is_some());

    let mut body = json!({"stream": true, "stream_options": {"include_usage": true, "continuous_usage_stats": false}});
    let prep = prepare_stream_request(&mut body).unwrap();
    assert!(prep.client_wants_usage);
    assert_eq!(
        body["stream_options"]["continuous_usage_stats"],
        json!(false)
    );

    let mut body = json!({"stream": true, "stream_options": null});
    assert!(
        !prepare_stream_request(&mut body)
            .unwrap()
            .client_wants_usage
    );
    assert_eq!(body["stream_options"]["include_usage"], json!(true));

    let mut body = json!({"stream": true, "stream_options": {"include_usage": false}});
    assert!(
        !prepare_stream_request(&mut body)
            .unwrap()
            .client_wants_usage
    );
    assert_eq!(body["stream_options"]["include_usage"], json!(true));

    let mut body = json!({"model": "m"});
    let before = body.clone();
    let prep = prepare_stream_request(&mut body).unwrap();
    assert!(!prep.stream);
    assert!(prep.tap().is_none());
    assert_eq!(body, before);
}

#[test]
fn prepare_named_errors() {
    let cases = [
        (json!([1]), StreamError::RequestNotObject),
        (json!({"stream": "yes"}), StreamError::InvalidStream),
        (
            json!({"stream": true, "stream_options": 3}),
            StreamError::InvalidStreamOptions,
        ),
        (
            json!({"stream": true, "stream_options": {"include_usage": 1}}),
            StreamError::InvalidIncludeUsage,
        ),
    ];
    for (mut body, want) in cases {
        assert_eq!(prepare_stream_request(&mut body).unwrap_err(), want);
    }
}
