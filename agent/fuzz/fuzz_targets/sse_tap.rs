#![no_main]
// The engine's SSE stream through the usage tap, cut into arbitrary chunks: it must
// forward or refuse with a named error, never panic, and forwarded bytes never exceed
// what came in (the tap only removes the usage chunk it asked for).
use cocoon_agent::accounting::SseUsageTap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let mut tap = SseUsageTap::new(ctl & 1 == 1);
    let step = usize::from(ctl >> 1).max(1);
    let mut out = 0usize;
    for chunk in rest.chunks(step) {
        match tap.feed(chunk) {
            Ok(b) => out += b.len(),
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        }
    }
    out += tap.finish().len();
    assert!(out <= rest.len(), "forwarded {out} bytes of {}", rest.len());
    let _ = tap.usage();
    let _ = tap.usage_error().map(|e| e.to_string());
});
