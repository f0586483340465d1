//! The forms GPU evidence arrives in: raw bytes, hex text (NVIDIA tools' `.txt`),
//! PEM or DER chains, and the JSON NVIDIA's attestation services exchange:
//! `[{"arch": "HOPPER", "certificate": base64(PEM chain), "evidence":
//! base64(report), "nonce": hex}]` (a single object is accepted too).
#![deny(clippy::arithmetic_side_effects)]

use base64::Engine as _;
use serde::Deserialize;

use super::certs::{self, Cert, CertError};

/// Largest evidence file we read (a JSON of 8 GPUs is ~100 KiB).
pub const MAX_EVIDENCE_BYTES: usize = 4 << 20;

/// Input that is not readable evidence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("{what} is {len} bytes, over the limit of {max}")]
    TooLarge {
        what: String,
        len: usize,
        max: usize,
    },
    #[error("{what} is empty")]
    Empty { what: String },
    #[error("evidence JSON: {0}")]
    Json(String),
    #[error("evidence JSON entry {index}: field {field}: {why}")]
    Field {
        index: usize,
        field: &'static str,
        why: String,
    },
    #[error("evidence JSON has {count} GPUs; choose one (index 0..{count})")]
    AmbiguousGpu { count: usize },
    #[error("evidence JSON has {count} GPUs, no index {index}")]
    NoSuchGpu { count: usize, index: usize },
    #[error("{what}: odd-length or invalid hex at character {offset}")]
    Hex { what: String, offset: usize },
    #[error("certificate chain: {0}")]
    Chain(#[from] CertError),
}

/// One GPU's evidence from NVIDIA's JSON form.
#[derive(Debug, Clone)]
pub struct JsonEvidence {
    /// `arch`, e.g. "HOPPER".
    pub arch: String,
    /// The decoded report (request || response).
    pub report: Vec<u8>,
    /// The decoded certificate chain, leaf first.
    pub chain: Vec<Cert>,
    /// `nonce`, as the producer claims it (unauthenticated: the report's own
    /// request nonce is what the signature covers).
    pub nonce: Option<[u8; 32]>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    arch: Option<String>,
    certificate: String,
    evidence: String,
    nonce: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawJson {
    Many(Vec<RawEntry>),
    One(RawEntry),
}

fn check_size(what: &str, bytes: &[u8]) -> Result<(), EvidenceError> {
    if bytes.len() > MAX_EVIDENCE_BYTES {
        return Err(EvidenceError::TooLarge {
            what: what.into(),
            len: bytes.len(),
            max: MAX_EVIDENCE_BYTES,
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(EvidenceError::Empty { what: what.into() });
    }
    Ok(())
}

fn looks_like_json(bytes: &[u8]) -> bool {
    matches!(
        bytes.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{') | Some(b'[')
    )
}

/// Hex text with optional whitespace, if the whole input is that.
fn as_hex(bytes: &[u8], what: &str) -> Result<Option<Vec<u8>>, EvidenceError> {
    let compact: Vec<u8> = bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() || !compact.iter().all(u8::is_ascii_hexdigit) {
        return Ok(None);
    }
    hex::decode(&compact)
        .map(Some)
        .map_err(|e| EvidenceError::Hex {
            what: what.into(),
            offset: match e {
                hex::FromHexError::InvalidHexCharacter { index, .. } => index,
                _ => compact.len(),
            },
        })
}

/// Parse NVIDIA's evidence JSON: every GPU entry it lists.
pub fn parse_json(bytes: &[u8]) -> Result<Vec<JsonEvidence>, EvidenceError> {
    check_size("evidence JSON", bytes)?;
    let raw: RawJson =
        serde_json::from_slice(bytes).map_err(|e| EvidenceError::Json(e.to_string()))?;
    let entries = match raw {
        RawJson::Many(v) => v,
        RawJson::One(e) => vec![e],
    };
    if entries.is_empty() {
        return Err(EvidenceError::Empty {
            what: "evidence JSON array".into(),
        });
    }
    entries
        .into_iter()
        .enumerate()
        .map(|(index, e)| {
            let field = |field, why: String| EvidenceError::Field { index, field, why };
            let report = decode_text_field(&e.evidence).map_err(|w| field("evidence", w))?;
            let pem = decode_text_field(&e.certificate).map_err(|w| field("certificate", w))?;
            let chain = certs::parse_chain(&pem)?;
            let nonce = match e.nonce {
                None => None,
                Some(n) => Some(parse_nonce(&n).map_err(|w| field("nonce", w))?),
            };
            Ok(JsonEvidence {
                arch: e.arch.unwrap_or_default(),
                report,
                chain,
                nonce,
            })
        })
        .collect()
}

/// Pick one GPU out of a JSON evidence list.
pub fn select(
    mut all: Vec<JsonEvidence>,
    index: Option<usize>,
) -> Result<JsonEvidence, EvidenceError> {
    let count = all.len();
    match index {
        None if count == 1 => all.pop().ok_or(EvidenceError::AmbiguousGpu { count }),
        None => Err(EvidenceError::AmbiguousGpu { count }),
        Some(i) if i < count => Ok(all.swap_remove(i)),
        Some(index) => Err(EvidenceError::NoSuchGpu { count, index }),
    }
}

/// A JSON string field holding base64 (or, leniently, hex) bytes.
fn decode_text_field(s: &str) -> Result<Vec<u8>, String> {
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err("empty".into());
    }
    if compact.len() % 2 == 0 && compact.chars().all(|c| c.is_ascii_hexdigit()) {
        return hex::decode(&compact).map_err(|e| e.to_string());
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| format!("not base64: {e}"))
}

/// A 32-byte nonce in hex.
pub fn parse_nonce(s: &str) -> Result<[u8; 32], String> {
    let v = hex::decode(s.trim()).map_err(|e| format!("not hex: {e}"))?;
    v.try_into()
        .map_err(|v: Vec<u8>| format!("{} bytes, a nonce is 32", v.len()))
}

/// A report file: raw bytes, hex text, or evidence JSON (its one GPU's `evidence`).
pub fn decode_report(bytes: &[u8]) -> Result<Vec<u8>, EvidenceError> {
    check_size("report", bytes)?;
    if looks_like_json(bytes) {
        return Ok(select(parse_json(bytes)?, None)?.report);
    }
    Ok(as_hex(bytes, "report")?.unwrap_or_else(|| bytes.to_vec()))
}

/// A chain file: PEM, concatenated DER, hex of either, or evidence JSON (its one
/// GPU's `certificate`).
pub fn decode_chain(bytes: &[u8]) -> Result<Vec<Cert>, EvidenceError> {
    check_size("certificate chain", bytes)?;
    if looks_like_json(bytes) {
        return Ok(select(parse_json(bytes)?, None)?.chain);
    }
    match as_hex(bytes, "certificate chain")? {
        Some(decoded) => Ok(certs::parse_chain(&decoded)?),
        None => Ok(certs::parse_chain(bytes)?),
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_raw_reports_decode_to_the_same_bytes() {
        assert_eq!(
            decode_report(b"11e0 01ff\n").unwrap(),
            vec![0x11, 0xe0, 0x01, 0xff]
        );
        assert_eq!(decode_report(&[0x11, 0xe0]).unwrap(), vec![0x11, 0xe0]);
        assert!(matches!(
            decode_report(b"abc"),
            Err(EvidenceError::Hex { .. })
        ));
        assert!(matches!(
            decode_report(b" \n"),
            Err(EvidenceError::Empty { .. })
        ));
    }

    #[test]
    fn bad_json_is_an_error_naming_the_field() {
        let e =
            parse_json(br#"[{"arch":"HOPPER","certificate":"!!","evidence":"00"}]"#).unwrap_err();
        assert!(e.to_string().contains("certificate"), "{e}");
        let e = parse_json(br#"{"evidence":"00"}"#).unwrap_err();
        assert!(matches!(e, EvidenceError::Json(_)), "{e}");
        let e = parse_json(b"[]").unwrap_err();
        assert!(matches!(e, EvidenceError::Empty { .. }), "{e}");
    }

    #[test]
    fn nonce_must_be_32_bytes() {
        assert!(parse_nonce(&"00".repeat(32)).is_ok());
        assert!(parse_nonce(&"00".repeat(31)).is_err());
        assert!(parse_nonce("zz").is_err());
    }
}
