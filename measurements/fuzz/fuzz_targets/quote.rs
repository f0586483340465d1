#![no_main]
// The TDX quote parser and the hex-text detection in front of it, on arbitrary
// bytes: both must return (a quote or an error naming an offset), never panic.
// The claims decoder shares the byte-reader rules and runs on the same input.
use cocoon_measurements::claims::Claims;
use cocoon_measurements::quote::Quote;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = Quote::parse(data) {
        // A parsed quote must account for every byte it claims to have signed.
        assert!(q.signed_len <= data.len());
        let _ = q.pck_chain_pem();
    }
    match Quote::parse_file_content(data) {
        Ok((raw, _)) => assert!(raw.len() <= cocoon_measurements::quote::MAX_QUOTE_BYTES),
        Err(e) => {
            let _ = e.offset();
            let _ = e.to_string();
        }
    }
    if let Ok(c) = Claims::decode(data) {
        // Decoding is strict, so re-encoding gives back the input.
        assert_eq!(c.encode(), data);
    }
});
