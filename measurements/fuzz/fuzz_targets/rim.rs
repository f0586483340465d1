#![no_main]
//! RIM (signed SWID XML) parser: libxml2 parse, XPath extraction, XML-DSig field
//! decoding and both canonicalizations, on arbitrary bytes: errors, never panics.
use cocoon_measurements::gpu::rim::Rim;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rim) = Rim::parse(data) {
        let _ = rim.active().count();
    }
});
