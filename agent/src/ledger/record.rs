//! Ledger records and their exact byte encoding.
//!
//! One record per line of `ledger.jsonl`, each line a JSON object ending in `\n`.
//!
//! **Canonical bytes** of a record (what its `sig` signs): `serde_json::to_vec` of the
//! [`Body`] — the object with `kind` first, then the struct's fields in declaration
//! order, no whitespace, strings escaped the way serde_json escapes them, `attestation`
//! with object keys sorted (so verifiers built with or without serde_json's
//! `preserve_order` read it back identically). The line is the canonical bytes with
//! `,"sig":"<hex>"` inserted before the closing brace, so a line is canonical iff
//! re-encoding its parsed fields gives the same bytes; verifiers check that too.
//!
//! **Chain**: `prev` is the hex SHA-256 of the previous line's bytes without its `\n`
//! (the first line: 64 zeros). `seq` counts lines from 0.
#![deny(clippy::arithmetic_side_effects)]

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::accounting::Pricing;

/// File name of the ledger inside its directory.
pub const LEDGER_FILE: &str = "ledger.jsonl";
/// Value of an epoch's `format` field; bumped on any change of the encoding.
pub const FORMAT: &str = "cocoon-ledger/v1";
/// `prev` of the first line: hex of 32 zero bytes.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A record without its signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    Epoch(EpochBody),
    Receipt(ReceiptBody),
}

/// Written at every open: introduces the key that signs the receipts after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochBody {
    pub seq: u64,
    pub prev: String,
    /// Encoding version, [`FORMAT`].
    pub format: String,
    /// Hex Ed25519 public key (32 bytes) of this boot's receipt key. The record is
    /// signed with the matching secret key, which exists only in the TEE's memory.
    pub receipt_public_key: String,
    /// The worker's wallet address (derived from a key generated inside the TEE).
    pub worker_address: String,
    /// The owner's payout address, repeated in every receipt.
    pub owner_address: String,
    /// Pricing in force for this epoch; every receipt's amounts derive from it.
    pub pricing: Pricing,
    /// Opaque evidence binding `receipt_public_key` to a TEE quote (the agent stores
    /// its RA-TLS quote and claims here); `null` when none.
    pub attestation: Option<Value>,
    /// Wall-clock time of the open, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// One served request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptBody {
    pub seq: u64,
    pub prev: String,
    pub request_id: String,
    pub model: String,
    /// API path served, e.g. `/v1/chat/completions`.
    pub endpoint: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub nanoton_per_token: u64,
    /// `(prompt_tokens + completion_tokens) * nanoton_per_token`.
    pub total_nanoton: u64,
    pub worker_nanoton: u64,
    pub proxy_nanoton: u64,
    pub owner_address: String,
    /// Wall-clock time the receipt was written, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

impl Body {
    pub fn seq(&self) -> u64 {
        match self {
            Body::Epoch(e) => e.seq,
            Body::Receipt(r) => r.seq,
        }
    }

    pub fn prev(&self) -> &str {
        match self {
            Body::Epoch(e) => &e.prev,
            Body::Receipt(r) => &r.prev,
        }
    }

    /// The canonical bytes (module docs).
    pub fn canonical(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// A signed line (without `\n`): the canonical bytes with `sig` spliced in last.
pub fn encode_line(canonical: &[u8], sig: &Signature) -> Vec<u8> {
    let body = canonical.strip_suffix(b"}").unwrap_or(canonical);
    let sig_hex = hex::encode(sig.to_bytes());
    let mut line = Vec::with_capacity(body.len().saturating_add(sig_hex.len()).saturating_add(10));
    line.extend_from_slice(body);
    line.extend_from_slice(b",\"sig\":\"");
    line.extend_from_slice(sig_hex.as_bytes());
    line.extend_from_slice(b"\"}");
    line
}

/// The receipt key in the form that signs fastest. Ed25519 is deterministic (RFC 8032),
/// so aws-lc's signature is bit for bit the one ed25519-dalek would make; aws-lc makes it
/// in about half the time (`cargo bench --bench ledger -- sign_`: 10.6 vs 22.0 us here),
/// and one signature per answered request sits on the proxy's hot path.
pub struct ReceiptSigner {
    key: aws_lc_rs::signature::Ed25519KeyPair,
    public: ed25519_dalek::VerifyingKey,
}

impl ReceiptSigner {
    /// From a dalek key (how the agent generates and passes keys around).
    pub fn new(key: &SigningKey) -> Result<Self, String> {
        let public = key.verifying_key();
        let key = aws_lc_rs::signature::Ed25519KeyPair::from_seed_and_public_key(
            key.as_bytes(),
            public.as_bytes(),
        )
        .map_err(|e| format!("aws-lc refused the Ed25519 key: {e}"))?;
        Ok(ReceiptSigner { key, public })
    }

    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Signature, String> {
        Signature::from_slice(self.key.sign(msg).as_ref()).map_err(|e| e.to_string())
    }
}

/// Signs `body` and returns the line bytes (no `\n`).
pub fn sign_line(body: &Body, key: &ReceiptSigner) -> Result<Vec<u8>, String> {
    let canonical = body.canonical().map_err(|e| e.to_string())?;
    let sig = key.sign(&canonical)?;
    Ok(encode_line(&canonical, &sig))
}

/// SHA-256 of a line's bytes, the next line's `prev`.
pub fn line_hash(line: &[u8]) -> [u8; 32] {
    Sha256::digest(line).into()
}

/// A parsed line.
#[derive(Debug, Clone)]
pub struct ParsedLine {
    pub body: Body,
    pub sig: Signature,
    /// The canonical bytes re-encoded from the parsed fields (what `sig` must sign).
    pub canonical: Vec<u8>,
    /// The line is byte-for-byte the canonical encoding.
    pub is_canonical: bool,
}

/// Why a line is not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a JSON object")]
    NotObject,
    #[error("`sig` missing or not a string")]
    MissingSig,
    #[error("`sig` is not 64 bytes of hex")]
    BadSigEncoding,
    #[error("fields do not form an epoch or receipt record: {0}")]
    BadFields(String),
}

impl ParsedLine {
    pub fn parse(line: &[u8]) -> Result<ParsedLine, LineError> {
        let value: Value =
            serde_json::from_slice(line).map_err(|e| LineError::NotJson(e.to_string()))?;
        let Value::Object(mut map) = value else {
            return Err(LineError::NotObject);
        };
        let sig_hex = match map.remove("sig") {
            Some(Value::String(s)) => s,
            _ => return Err(LineError::MissingSig),
        };
        let sig_bytes: [u8; 64] = hex::decode(&sig_hex)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(LineError::BadSigEncoding)?;
        let sig = Signature::from_bytes(&sig_bytes);
        let body: Body = serde_json::from_value(Value::Object(map))
            .map_err(|e| LineError::BadFields(e.to_string()))?;
        let canonical = body
            .canonical()
            .map_err(|e| LineError::BadFields(e.to_string()))?;
        let is_canonical = encode_line(&canonical, &sig) == line;
        Ok(ParsedLine {
            body,
            sig,
            canonical,
            is_canonical,
        })
    }

    /// Checks `sig` over the canonical bytes with `key`. Strict verification (dalek's
    /// `verify_strict`): also rejects weak (small-order) keys and signatures, so one
    /// signature cannot be valid for two different records.
    pub fn signature_valid(&self, key: &VerifyingKey) -> bool {
        key.verify_strict(&self.canonical, &self.sig).is_ok()
    }
}

/// Parses a hex Ed25519 public key.
pub fn parse_public_key(hex_key: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = hex::decode(hex_key).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// `value` with every object's keys in sorted order (module docs: why).
pub fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn receipt() -> Body {
        Body::Receipt(ReceiptBody {
            seq: 1,
            prev: GENESIS_PREV.into(),
            request_id: "r\"1".into(),
            model: "tiny".into(),
            endpoint: "/v1/completions".into(),
            prompt_tokens: 3,
            completion_tokens: 4,
            nanoton_per_token: 20,
            total_nanoton: 140,
            worker_nanoton: 133,
            proxy_nanoton: 7,
            owner_address: "0:00".into(),
            time_ms: 5,
        })
    }

    #[test]
    fn canonical_layout() {
        let c = receipt().canonical().unwrap();
        let s = String::from_utf8(c).unwrap();
        assert!(
            s.starts_with(r#"{"kind":"receipt","seq":1,"prev":"0000"#),
            "{s}"
        );
        assert!(s.ends_with(r#""owner_address":"0:00","time_ms":5}"#), "{s}");
        assert!(!s.contains(' '));
    }

    #[test]
    fn line_round_trip_and_signature() {
        let line = sign_line(&receipt(), &ReceiptSigner::new(&key()).unwrap()).unwrap();
        let p = ParsedLine::parse(&line).unwrap();
        assert!(p.is_canonical);
        assert_eq!(p.body, receipt());
        assert!(p.signature_valid(&key().verifying_key()));
        assert!(!p.signature_valid(&SigningKey::from_bytes(&[8u8; 32]).verifying_key()));
        // Whitespace changes the bytes but not the fields: still signed, not canonical.
        let spaced = String::from_utf8(line.clone())
            .unwrap()
            .replacen(",", ", ", 1);
        let p = ParsedLine::parse(spaced.as_bytes()).unwrap();
        assert!(!p.is_canonical);
        assert!(p.signature_valid(&key().verifying_key()));
    }

    #[test]
    fn line_errors() {
        assert!(matches!(
            ParsedLine::parse(b"{"),
            Err(LineError::NotJson(_))
        ));
        assert_eq!(ParsedLine::parse(b"[]").unwrap_err(), LineError::NotObject);
        assert_eq!(
            ParsedLine::parse(br#"{"kind":"receipt"}"#).unwrap_err(),
            LineError::MissingSig
        );
        assert_eq!(
            ParsedLine::parse(br#"{"sig":"00"}"#).unwrap_err(),
            LineError::BadSigEncoding
        );
        let sig = "00".repeat(64);
        let extra = format!(r#"{{"kind":"nope","sig":"{sig}"}}"#);
        assert!(matches!(
            ParsedLine::parse(extra.as_bytes()),
            Err(LineError::BadFields(_))
        ));
        // Unknown field inside a known kind.
        let signer = ReceiptSigner::new(&key()).unwrap();
        let mut v: Value =
            serde_json::from_slice(&sign_line(&receipt(), &signer).unwrap()).unwrap();
        v["bonus"] = Value::from(1);
        let line = serde_json::to_vec(&v).unwrap();
        assert!(matches!(
            ParsedLine::parse(&line),
            Err(LineError::BadFields(e)) if e.contains("bonus")
        ));
    }

    #[test]
    fn attestation_keys_sorted() {
        let v = serde_json::json!({"b": 1, "a": {"d": [ {"z":1,"y":2} ], "c": 3}});
        let s = serde_json::to_string(&sort_keys(v)).unwrap();
        assert_eq!(s, r#"{"a":{"c":3,"d":[{"y":2,"z":1}]},"b":1}"#);
    }

    #[test]
    fn aws_lc_signs_exactly_as_dalek() {
        use ed25519_dalek::Signer as _;
        for seed in [[0u8; 32], [7; 32], [0xff; 32]] {
            let dalek = SigningKey::from_bytes(&seed);
            let signer = ReceiptSigner::new(&dalek).unwrap();
            assert_eq!(signer.verifying_key(), dalek.verifying_key());
            for msg in [&b""[..], b"{}", &receipt().canonical().unwrap()] {
                assert_eq!(signer.sign(msg).unwrap(), dalek.sign(msg), "seed {seed:?}");
            }
        }
    }
}
