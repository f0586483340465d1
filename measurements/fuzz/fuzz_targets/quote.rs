#![no_main]
// TODO (owner): call the parser under test with `data`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = data;
});
