#![no_main]
// The serial console as cocoon-host reads it (the agent's ready line, the last line shown
// on a timeout): arbitrary bytes, split into pushes at arbitrary places, give the same
// lines as one push, each bounded in size, and never a panic.
use cocoon_host::run::ready::{ready_text, SerialLines, MAX_LINE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&step, bytes)) = data.split_first() else {
        return;
    };
    let whole = SerialLines::default().push(bytes);
    let mut lines = SerialLines::default();
    let step = usize::from(step).max(1);
    let pieces: Vec<String> = bytes.chunks(step).flat_map(|c| lines.push(c)).collect();
    assert_eq!(pieces, whole);
    for l in &whole {
        // A held start (< MAX_LINE) plus one cut piece, each invalid byte as U+FFFD.
        assert!(l.len() < 4 * MAX_LINE);
        assert!(!l.contains('\n') && !l.contains('\r'));
        let _ = ready_text(l);
    }
});
