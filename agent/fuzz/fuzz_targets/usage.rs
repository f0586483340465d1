#![no_main]
// `usage` from an engine's non-stream answer, and the stream request rewrite from a
// client's body: arbitrary bytes give tokens or a named error, never a panic; the typed
// reading of `usage` gives exactly what the reference (JSON tree) reading gives.
use cocoon_agent::accounting::{prepare_stream_request, UsageTokens};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let got = UsageTokens::from_response_body(data);
    assert_eq!(got, UsageTokens::from_response_body_tree(data));
    match got {
        Ok(u) => {
            let _ = u.prompt_tokens.saturating_add(u.completion_tokens);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(prep) = prepare_stream_request(&mut v) {
            let _ = prep.tap();
        }
    }
});
