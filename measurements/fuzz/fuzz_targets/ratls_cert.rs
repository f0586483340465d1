#![no_main]
// The RA-TLS certificate reader on arbitrary bytes: a certificate from an untrusted
// server reaches it before anything is verified. It must return evidence or a named
// error, never panic.
use cocoon_measurements::ratls::{RaTlsEvidence, MAX_CERT_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match RaTlsEvidence::from_certificate_der(data) {
        Ok((evidence, spki)) => {
            assert!(data.len() <= MAX_CERT_BYTES);
            assert!(!spki.is_empty());
            // What was read re-encodes into extensions without loss.
            let again = evidence.to_extensions();
            assert!(again.len() >= 3);
            assert!(evidence.claims.nonce.is_none());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
