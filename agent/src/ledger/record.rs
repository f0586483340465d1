//! Ledger records and their exact byte encoding.
//!
//! One record per line of `ledger.jsonl`, each line a JSON object ending in `\n`. Three
//! kinds:
//! - `epoch`: written at every open; names this boot's receipt key and is signed with it.
//! - `receipt`: one served request. Not signed on its own line.
//! - `seal`: written after every batch of receipts (one write and one fsync hold the
//!   batch and its seal), signed with the epoch's key. Its `prev` is the hash of the last
//!   receipt, whose `prev` is the hash of the one before, and so on: one signature over
//!   the chain head authenticates every line before it (the signed tree head of
//!   Certificate Transparency, on a list). `receipts` says how many receipts it closes.
//!   Signing per batch instead of per receipt took the Ed25519 signature (a quarter of
//!   the agent's CPU per answer in the proxy benchmark) off the per-request path.
//!
//! **Canonical bytes** of a record: `serde_json::to_vec` of the [`Body`] — the object
//! with `kind` first, then the struct's fields in declaration order, no whitespace,
//! strings escaped the way serde_json escapes them, `attestation` with object keys
//! sorted (so verifiers built with or without serde_json's `preserve_order` read it back
//! identically). A receipt's line is its canonical bytes. An epoch's or seal's `sig`
//! signs its canonical bytes, and its line is those bytes with `,"sig":"<hex>"` inserted
//! before the closing brace. A line is canonical iff re-encoding its parsed fields gives
//! the same bytes; verifiers check that too.
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
pub const FORMAT: &str = "cocoon-ledger/v2";
/// `prev` of the first line: hex of 32 zero bytes.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A record without its signature. `S` is the receipt's string type: owned when read,
/// borrowed (`Body<&str>`) when the writer encodes a receipt straight into its batch
/// buffer, which gives the same bytes without copying the strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body<S = String> {
    Epoch(EpochBody),
    Receipt(ReceiptBody<S>),
    Seal(SealBody),
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
pub struct ReceiptBody<S = String> {
    pub seq: u64,
    pub prev: S,
    pub request_id: S,
    pub model: S,
    /// API path served, e.g. `/v1/chat/completions`.
    pub endpoint: S,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub nanoton_per_token: u64,
    /// `(prompt_tokens + completion_tokens) * nanoton_per_token`.
    pub total_nanoton: u64,
    pub worker_nanoton: u64,
    pub proxy_nanoton: u64,
    pub owner_address: S,
    /// Wall-clock time the receipt was written, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// Closes a batch of receipts: signs the chain head (module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealBody {
    pub seq: u64,
    /// Hash of the batch's last receipt line.
    pub prev: String,
    /// Receipts in the batch: the lines between the previous seal (or epoch) and this one.
    pub receipts: u64,
}

impl Body {
    pub fn seq(&self) -> u64 {
        match self {
            Body::Epoch(e) => e.seq,
            Body::Receipt(r) => r.seq,
            Body::Seal(s) => s.seq,
        }
    }

    pub fn prev(&self) -> &str {
        match self {
            Body::Epoch(e) => &e.prev,
            Body::Receipt(r) => &r.prev,
            Body::Seal(s) => &s.prev,
        }
    }

    /// Epochs and seals carry a signature; receipts do not.
    pub fn is_signed(&self) -> bool {
        !matches!(self, Body::Receipt(_))
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

/// The line bytes (no `\n`) of `body`: signed with `key` for an epoch or seal, the
/// canonical bytes alone for a receipt.
pub fn sign_line(body: &Body, key: &ReceiptSigner) -> Result<Vec<u8>, String> {
    let canonical = body.canonical().map_err(|e| e.to_string())?;
    if !body.is_signed() {
        return Ok(canonical);
    }
    let sig = key.sign(&canonical)?;
    Ok(encode_line(&canonical, &sig))
}

/// Lower-case hex of a 32-byte hash, through a stack buffer: `hex::encode` goes char by
/// char through an iterator, and two of these per receipt showed in the profile.
pub fn hex32(bytes: &[u8; 32]) -> String {
    let mut buf = [0u8; 64];
    hex32_in(bytes, &mut buf).map_or_else(|| hex::encode(bytes), str::to_owned)
}

/// [`hex32`] written into `buf`, for a caller that only borrows it (`None` cannot
/// happen: the buffer has exactly the size hex needs).
pub fn hex32_in<'a>(bytes: &[u8; 32], buf: &'a mut [u8; 64]) -> Option<&'a str> {
    hex::encode_to_slice(bytes, buf).ok()?;
    std::str::from_utf8(buf).ok()
}

/// SHA-256 of a line's bytes, the next line's `prev`.
pub fn line_hash(line: &[u8]) -> [u8; 32] {
    Sha256::digest(line).into()
}

/// A parsed line.
#[derive(Debug, Clone)]
pub struct ParsedLine {
    pub body: Body,
    /// `None` for a receipt (which must not carry one).
    pub sig: Option<Signature>,
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
    #[error("a receipt line carries a `sig`; receipts are signed by the seal after them")]
    UnexpectedSig,
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
        let sig = match map.remove("sig") {
            None => None,
            Some(Value::String(s)) => {
                let sig_bytes: [u8; 64] = hex::decode(&s)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or(LineError::BadSigEncoding)?;
                Some(Signature::from_bytes(&sig_bytes))
            }
            Some(_) => return Err(LineError::MissingSig),
        };
        let body: Body = serde_json::from_value(Value::Object(map))
            .map_err(|e| LineError::BadFields(e.to_string()))?;
        match (body.is_signed(), sig.is_some()) {
            (true, false) => return Err(LineError::MissingSig),
            (false, true) => return Err(LineError::UnexpectedSig),
            _ => {}
        }
        let canonical = body
            .canonical()
            .map_err(|e| LineError::BadFields(e.to_string()))?;
        let is_canonical = match &sig {
            Some(sig) => encode_line(&canonical, sig) == line,
            None => canonical == line,
        };
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
        self.sig
            .as_ref()
            .is_some_and(|sig| key.verify_strict(&self.canonical, sig).is_ok())
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
    fn borrowed_receipt_line_encodes_like_the_body() {
        // Escapes, unicode and a control character in the strings.
        let Body::Receipt(mut b) = receipt() else {
            unreachable!()
        };
        b.request_id = "r\"1\\\u{1}é".into();
        b.model = "m\n\u{2028}".into();
        b.time_ms = u64::MAX;
        let borrowed: Body<&str> = Body::Receipt(ReceiptBody {
            seq: b.seq,
            prev: &b.prev,
            request_id: &b.request_id,
            model: &b.model,
            endpoint: &b.endpoint,
            prompt_tokens: b.prompt_tokens,
            completion_tokens: b.completion_tokens,
            nanoton_per_token: b.nanoton_per_token,
            total_nanoton: b.total_nanoton,
            worker_nanoton: b.worker_nanoton,
            proxy_nanoton: b.proxy_nanoton,
            owner_address: &b.owner_address,
            time_ms: b.time_ms,
        });
        let bytes = serde_json::to_vec(&borrowed).unwrap();
        assert_eq!(bytes, Body::Receipt(b.clone()).canonical().unwrap());
        let p = ParsedLine::parse(&bytes).unwrap();
        assert!(p.is_canonical);
        assert_eq!(p.body, Body::Receipt(b));
    }

    fn seal() -> Body {
        Body::Seal(SealBody {
            seq: 2,
            prev: "ab".repeat(32),
            receipts: 1,
        })
    }

    #[test]
    fn receipt_line_is_its_canonical_bytes() {
        let line = sign_line(&receipt(), &ReceiptSigner::new(&key()).unwrap()).unwrap();
        assert_eq!(line, receipt().canonical().unwrap());
        let p = ParsedLine::parse(&line).unwrap();
        assert!(p.is_canonical);
        assert!(p.sig.is_none());
        assert_eq!(p.body, receipt());
        assert!(!p.signature_valid(&key().verifying_key()));
    }

    #[test]
    fn seal_round_trip_and_signature() {
        let line = sign_line(&seal(), &ReceiptSigner::new(&key()).unwrap()).unwrap();
        let s = String::from_utf8(line.clone()).unwrap();
        assert!(
            s.starts_with(r#"{"kind":"seal","seq":2,"prev":"abab"#),
            "{s}"
        );
        assert!(s.contains(r#""receipts":1,"sig":""#), "{s}");
        let p = ParsedLine::parse(&line).unwrap();
        assert!(p.is_canonical);
        assert_eq!(p.body, seal());
        assert!(p.signature_valid(&key().verifying_key()));
        assert!(!p.signature_valid(&SigningKey::from_bytes(&[8u8; 32]).verifying_key()));
        // Whitespace changes the bytes but not the fields: still signed, not canonical.
        let spaced = s.replacen(",", ", ", 1);
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
        assert!(matches!(
            ParsedLine::parse(br#"{"kind":"receipt"}"#),
            Err(LineError::BadFields(_))
        ));
        assert_eq!(
            ParsedLine::parse(br#"{"sig":"00"}"#).unwrap_err(),
            LineError::BadSigEncoding
        );
        assert_eq!(
            ParsedLine::parse(br#"{"sig":7}"#).unwrap_err(),
            LineError::MissingSig
        );
        let sig = "00".repeat(64);
        let extra = format!(r#"{{"kind":"nope","sig":"{sig}"}}"#);
        assert!(matches!(
            ParsedLine::parse(extra.as_bytes()),
            Err(LineError::BadFields(_))
        ));
        // A seal without its signature; a receipt with one.
        let bare = seal().canonical().unwrap();
        assert_eq!(ParsedLine::parse(&bare).unwrap_err(), LineError::MissingSig);
        let signed_receipt = encode_line(
            &receipt().canonical().unwrap(),
            &Signature::from_bytes(&[0; 64]),
        );
        assert_eq!(
            ParsedLine::parse(&signed_receipt).unwrap_err(),
            LineError::UnexpectedSig
        );
        // Unknown field inside a known kind.
        let signer = ReceiptSigner::new(&key()).unwrap();
        let mut v: Value = serde_json::from_slice(&sign_line(&seal(), &signer).unwrap()).unwrap();
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
