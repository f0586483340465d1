#![no_main]
// `usage` from an engine's non-stream answer, and the stream request rewrite from a
// client's body: arbitrary bytes give tokens or a named error, never a panic; the typed
// reading of `usage` gives what the reference (JSON tree) reading gives.
use cocoon_agent::accounting::{prepare_stream_request, UsageError, UsageTokens};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let got = UsageTokens::from_response_body(data);
    let reference = UsageTokens::from_response_body_tree(data);
    // The typed reading skips what it does not read (unknown fields inside `usage`)
    // without validating it, as both readings do for everything outside `usage`; so on
    // input that is not strictly JSON (invalid UTF-8, a lone surrogate inside a skipped
    // string) the tree may refuse what the typed reading counted. On JSON they agree.
    let lenient = matches!((&got, &reference), (Ok(_), Err(UsageError::NotJson(_))))
        && serde_json::from_slice::<serde_json::Value>(data).is_err();
    if !lenient {
        assert_eq!(got, reference);
    }
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
