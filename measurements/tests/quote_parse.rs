//! The quote parser on the real quotes of `testdata/tdx`.
mod common;

use cocoon_measurements::quote::{BodyKind, Quote, QuoteError};

fn read(name: &str) -> Vec<u8> {
    std::fs::read(common::testdata(name)).unwrap()
}

#[test]
fn parses_v4_quote() {
    let raw = read("tdx/tdx_quote");
    let q = Quote::parse(&raw).unwrap();
    println!("{}", serde_json::to_string_pretty(&q).unwrap());
    assert_eq!(q.header.version, 4);
    assert_eq!(q.body_kind, BodyKind::TdReport10);
}

#[test]
fn parses_v5_quote() {
    let raw = read("tdx/tdx_quote_outdated");
    let q = Quote::parse(&raw).unwrap();
    println!("{}", serde_json::to_string_pretty(&q).unwrap());
    assert_eq!(q.header.version, 5);
    assert_eq!(q.body_kind, BodyKind::TdReport15);
    let _: Option<QuoteError> = None;
}
