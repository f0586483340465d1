#![no_main]
//! SPDM GET_MEASUREMENTS request + response parser, and the evidence decoders in
//! front of it (hex / raw / NVIDIA JSON), on arbitrary bytes: errors, never panics.
use cocoon_measurements::gpu::{evidence, spdm::AttestationReport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = AttestationReport::parse(data) {
        // Accessors over parsed opaque data must not panic either.
        let _ = (r.driver_version(), r.vbios_version(), r.fwid(), r.signed_bytes().len());
    }
    let _ = evidence::decode_report(data);
    let _ = evidence::decode_chain(data);
});
