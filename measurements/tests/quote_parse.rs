//! The quote parser on the real quotes of `testdata/tdx`, and on broken variants.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod common;

use cocoon_measurements::quote::{is_truncation, BodyKind, Quote, QuoteError, HEADER_LEN};

fn read(name: &str) -> Vec<u8> {
    std::fs::read(common::testdata(name)).unwrap()
}

#[test]
fn parses_v4_quote_fields() {
    let raw = read("tdx/tdx_quote");
    let q = Quote::parse(&raw).unwrap();
    assert_eq!(q.header.version, 4);
    assert_eq!(q.header.attestation_key_type, 2);
    assert_eq!(q.header.tee_type, 0x81);
    assert!(q.header.is_intel_qe());
    assert_eq!(q.body_kind, BodyKind::TdReport10);
    assert_eq!(q.body_type, None);
    assert_eq!(q.body_offset, HEADER_LEN);
    assert_eq!(q.signed_len, 48 + 584);
    let r = &q.td_report;
    assert_eq!(
        r.mrtd.to_hex(),
        "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
    );
    assert_eq!(
        r.rtmr0.to_hex(),
        "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0"
    );
    assert_eq!(r.rtmr3.0, [0u8; 48]);
    assert_eq!(r.td_attributes.0, 0x1000_0000);
    assert!(r.td_attributes.sept_ve_disable());
    assert!(!r.td_attributes.debug());
    assert_eq!(r.xfam.0, 0x602e7);
    assert_eq!(r.tee_tcb_svn2, None);
    assert_eq!(r.mr_service_td, None);
    assert_eq!(hex::encode(&r.report_data[..4]), "9a9d48e7");
    let sd = &q.signature_data;
    assert_eq!(sd.len, 4300);
    assert_eq!(sd.certification_data_type, 6);
    assert_eq!(sd.pck_cert_data_type, 5);
    assert_eq!(sd.pck_cert_count, 3);
    assert_eq!(sd.qe_auth_data.len(), 32);
    // The file carries 70 bytes of zero padding after the signature data.
    assert_eq!(q.trailing_zero_bytes, 70);
    assert_eq!(raw.len(), q.signed_len + 4 + 4300 + 70);
}

#[test]
fn parses_v5_td15_quote_fields() {
    let raw = read("tdx/tdx_quote_outdated");
    let q = Quote::parse(&raw).unwrap();
    assert_eq!(q.header.version, 5);
    assert_eq!(q.body_kind, BodyKind::TdReport15);
    assert_eq!(q.body_type, Some(3));
    assert_eq!(q.body_offset, 54);
    assert_eq!(q.signed_len, 54 + 648);
    let r = &q.td_report;
    assert_eq!(
        r.mrtd.to_hex(),
        "273828c46252fcbdd8ad2dd907130222b03466d52a2911d70c1a5950895d6bd1ae451d382d5a9b1b4c0ed0e5ae9a3dbd"
    );
    assert_eq!(
        hex::encode(r.tee_tcb_svn),
        "07010300000000000000000000000000"
    );
    assert_eq!(
        hex::encode(r.tee_tcb_svn2.unwrap()),
        "0d010300000000000000000000000000"
    );
    assert_eq!(r.mr_service_td.unwrap().0, [0u8; 48]);
    assert_eq!(q.trailing_zero_bytes, 0);
}

#[test]
fn truncation_at_any_offset_is_an_error_naming_the_field_start() {
    let raw = read("tdx/tdx_quote");
    // (cut, offset of the field being read when the input ends)
    let cases = [
        (0, 0),     // header.version
        (1, 0),     // header.version
        (3, 2),     // header.attestation_key_type
        (47, 28),   // header.user_data
        (48, 48),   // td_report.tee_tcb_svn
        (200, 184), // td_report.mrtd
        (631, 568), // td_report.report_data
        (634, 632), // signature_data_len
        (700, 636), // signature data (4300 bytes announced)
        (4935, 636),
    ];
    for (cut, offset) in cases {
        let e = Quote::parse(&raw[..cut]).unwrap_err();
        assert!(is_truncation(&e), "cut {cut}: {e}");
        assert_eq!(e.offset(), offset, "cut {cut}: {e}");
        assert!(
            e.to_string().contains(&format!("byte offset {offset}")),
            "{e}"
        );
    }
    // And nowhere does truncation panic or succeed (the 70 padding bytes aside).
    for cut in 0..raw.len() - 70 {
        assert!(Quote::parse(&raw[..cut]).is_err(), "cut {cut}");
    }
}

#[test]
fn wrong_version_tee_type_body_type() {
    let raw = read("tdx/tdx_quote");
    let mut q = raw.clone();
    q[0] = 3;
    assert_eq!(
        Quote::parse(&q).unwrap_err(),
        QuoteError::UnsupportedVersion(3)
    );
    let mut q = raw.clone();
    q[4] = 0x00; // SGX
    let e = Quote::parse(&q).unwrap_err();
    assert_eq!(e, QuoteError::NotTdx(0));
    assert!(e.to_string().contains("byte offset 4"));

    let v5 = read("tdx/tdx_quote_outdated");
    let mut q = v5.clone();
    q[48] = 4; // TD report 1.5ex: not supported by this parser
    assert_eq!(
        Quote::parse(&q).unwrap_err(),
        QuoteError::UnsupportedBodyType(4)
    );
    let mut q = v5.clone();
    q[50] = 0x49; // body size 584 + ... no longer 648
    let e = Quote::parse(&q).unwrap_err();
    assert_eq!(e.offset(), 50, "{e}");
}

#[test]
fn inconsistent_lengths_are_rejected() {
    let raw = read("tdx/tdx_quote");
    let q = Quote::parse(&raw).unwrap();
    // Signature data length beyond the cap.
    let mut b = raw.clone();
    b[q.signed_len + 3] = 0x7f;
    let e = Quote::parse(&b).unwrap_err();
    assert_eq!(e.offset(), q.signed_len, "{e}");
    // Outer certification data type other than 6.
    let mut b = raw.clone();
    b[q.signed_len + 4 + 128] = 5;
    let e = Quote::parse(&b).unwrap_err();
    assert_eq!(e.offset(), q.signed_len + 4 + 128, "{e}");
    // Non-zero bytes after the signature data.
    let mut b = raw.clone();
    let last = b.len() - 1;
    b[last] = 1;
    assert_eq!(Quote::parse(&b).unwrap_err().offset(), last);
}

#[test]
fn hex_text_forms() {
    let raw = read("tdx/tdx_quote");
    let h = hex::encode(&raw);
    for text in [
        h.clone(),
        format!("0x{h}"),
        format!("  {}\n", h.to_uppercase()),
        h.as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n"),
    ] {
        let (decoded, q) = Quote::parse_file_content(text.as_bytes()).unwrap();
        assert_eq!(decoded, raw);
        assert_eq!(q.header.version, 4);
    }
    let bad = format!("{}zz{}", &h[..100], &h[100..]);
    let e = Quote::parse_file_content(bad.as_bytes()).unwrap_err();
    assert!(matches!(e, QuoteError::Hex { offset: 100, .. }), "{e}");
}

/// A deterministic poor man's fuzz run (the real one is `fuzz/fuzz_targets/quote.rs`):
/// random byte edits, truncations and extensions of both real quotes, raw and as
/// hex text, never panic, and every error points inside the input.
#[test]
fn mutated_quotes_never_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for name in ["tdx/tdx_quote", "tdx/tdx_quote_outdated"] {
        let base = read(name);
        for _ in 0..800 {
            let mut b = base.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            match next() % 3 {
                0 => b.truncate((next() as usize) % (b.len() + 1)),
                1 => b.extend((0..next() % 64).map(|_| next() as u8)),
                _ => {}
            }
            match Quote::parse(&b) {
                Ok(q) => assert!(q.signed_len <= b.len()),
                Err(e) => {
                    assert!(e.offset() <= b.len().max(cocoon_measurements::quote::MAX_QUOTE_BYTES))
                }
            }
            let text = hex::encode(&b);
            let _ = Quote::parse_file_content(text.as_bytes());
        }
    }
}
