//! What a worker's quote vouches for: REPORTDATA = SHA-512 over the claims.
//!
//! The TD writes 64 bytes of REPORTDATA into its quote. COCOON fills them with the
//! SHA-512 of an encoding of the worker's claims (TLS key, receipt key, GPU evidence,
//! runtime event log, wallet, nonce), so a verifier holding the claims can check
//! that this very TD made them. The encoding (documented with a worked example in
//! `measurements/README.md (policy section)`):
//!
//! ```text
//! "cocoon-ra-tls-claims/v1"                       23 ASCII bytes, no terminator
//! then each present field, in ascending tag order:
//!   tag    u16 big-endian
//!   length u32 big-endian
//!   value  `length` bytes
//! ```
//!
//! | tag | field                          | length  | presence |
//! |-----|--------------------------------|---------|----------|
//! | 1   | TLS public key, SPKI DER       | 1..=16384 | required |
//! | 2   | receipt public key, Ed25519    | 32      | required |
//! | 3   | GPU evidence digest, SHA-384   | 48      | optional |
//! | 4   | runtime event log digest, SHA-384 | 48   | required |
//! | 5   | worker wallet address, UTF-8   | 1..=256 | required |
//! | 6   | nonce                          | 1..=256 | optional |
//!
//! An absent optional field is left out entirely (no tag). Every field has a length
//! prefix and a fixed position, so two different claim sets never share an encoding;
//! the label keeps this hash from colliding with any other use of SHA-512 in a quote.
#![deny(clippy::arithmetic_side_effects)]

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha512};

use crate::codec::{ParseError, Reader};
use crate::digest::Digest48;

/// Domain-separation label that starts every encoding.
pub const CLAIMS_LABEL: &[u8] = b"cocoon-ra-tls-claims/v1";

/// Field tags, in encoding order.
pub mod tag {
    pub const TLS_SPKI: u16 = 1;
    pub const RECEIPT_KEY: u16 = 2;
    pub const GPU_EVIDENCE_DIGEST: u16 = 3;
    pub const EVENT_LOG_DIGEST: u16 = 4;
    pub const WALLET_ADDRESS: u16 = 5;
    pub const NONCE: u16 = 6;
}

/// Largest SPKI accepted (an RSA-8192 SPKI is about 1.1 KiB).
pub const MAX_SPKI_LEN: usize = 16 * 1024;
pub const MAX_WALLET_LEN: usize = 256;
pub const MAX_NONCE_LEN: usize = 256;

/// Why claims could not be decoded or do not match a REPORTDATA.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("claims: {0}")]
    Malformed(#[from] ParseError),
    /// A field value breaks its rule (length, emptiness, UTF-8).
    #[error("claims field {field}: {why}")]
    InvalidField { field: &'static str, why: String },
    /// REPORTDATA is not the SHA-512 of these claims.
    #[error("REPORTDATA {found} is not SHA-512 of the claims ({expected})")]
    Mismatch { expected: String, found: String },
}

fn ser_hex<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

fn de_hex<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    hex::decode(s.trim().trim_start_matches("0x")).map_err(serde::de::Error::custom)
}

fn de_hex32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
    let v = de_hex(d)?;
    v.try_into().map_err(|v: Vec<u8>| {
        serde::de::Error::custom(format!("expected 32 bytes, got {}", v.len()))
    })
}

fn ser_opt_hex<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&hex::encode(b)),
        None => s.serialize_none(),
    }
}

fn de_opt_hex<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    de_hex(d).map(Some)
}

/// The claims a worker's REPORTDATA commits to. JSON form: byte fields as hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The worker's TLS public key (DER SubjectPublicKeyInfo) of the RA-TLS certificate.
    #[serde(serialize_with = "ser_hex", deserialize_with = "de_hex")]
    pub tls_spki_der: Vec<u8>,
    /// Ed25519 public key that signs the worker's receipts (32 raw bytes).
    #[serde(serialize_with = "ser_hex", deserialize_with = "de_hex32")]
    pub receipt_public_key: [u8; 32],
    /// SHA-384 of the GPU attestation evidence, when a GPU is attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_evidence_digest: Option<Digest48>,
    /// SHA-384 of the runtime event log (what was extended into RTMR3).
    pub runtime_event_log_digest: Digest48,
    /// The worker's wallet address, as text.
    pub wallet_address: String,
    /// Verifier-chosen freshness nonce, when the quote answers a challenge.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_hex",
        deserialize_with = "de_opt_hex"
    )]
    pub nonce: Option<Vec<u8>>,
}

fn put(out: &mut Vec<u8>, tag: u16, value: &[u8]) {
    out.extend_from_slice(&tag.to_be_bytes());
    // validate() keeps every field far below 4 GiB; saturation is unreachable.
    let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}

impl Claims {
    /// Check each field against its rule (see the module documentation).
    pub fn validate(&self) -> Result<(), ClaimsError> {
        let bad = |field, why: String| Err(ClaimsError::InvalidField { field, why });
        if self.tls_spki_der.is_empty() || self.tls_spki_der.len() > MAX_SPKI_LEN {
            return bad(
                "tls_spki_der",
                format!(
                    "{} bytes (must be 1..={MAX_SPKI_LEN})",
                    self.tls_spki_der.len()
                ),
            );
        }
        if self.wallet_address.is_empty() || self.wallet_address.len() > MAX_WALLET_LEN {
            return bad(
                "wallet_address",
                format!(
                    "{} bytes (must be 1..={MAX_WALLET_LEN})",
                    self.wallet_address.len()
                ),
            );
        }
        if let Some(n) = &self.nonce {
            if n.is_empty() || n.len() > MAX_NONCE_LEN {
                return bad(
                    "nonce",
                    format!("{} bytes (must be 1..={MAX_NONCE_LEN})", n.len()),
                );
            }
        }
        Ok(())
    }

    /// The canonical encoding hashed into REPORTDATA.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            CLAIMS_LABEL
                .len()
                .saturating_add(self.tls_spki_der.len())
                .saturating_add(256),
        );
        out.extend_from_slice(CLAIMS_LABEL);
        put(&mut out, tag::TLS_SPKI, &self.tls_spki_der);
        put(&mut out, tag::RECEIPT_KEY, &self.receipt_public_key);
        if let Some(g) = &self.gpu_evidence_digest {
            put(&mut out, tag::GPU_EVIDENCE_DIGEST, g.as_bytes());
        }
        put(
            &mut out,
            tag::EVENT_LOG_DIGEST,
            self.runtime_event_log_digest.as_bytes(),
        );
        put(
            &mut out,
            tag::WALLET_ADDRESS,
            self.wallet_address.as_bytes(),
        );
        if let Some(n) = &self.nonce {
            put(&mut out, tag::NONCE, n);
        }
        out
    }

    /// REPORTDATA for these claims: SHA-512 of [`Claims::encode`].
    pub fn report_data(&self) -> [u8; 64] {
        Sha512::digest(self.encode()).into()
    }

    /// Ok when `report_data` is the SHA-512 of these claims.
    pub fn verify_report_data(&self, report_data: &[u8; 64]) -> Result<(), ClaimsError> {
        let expected = self.report_data();
        if &expected == report_data {
            Ok(())
        } else {
            Err(ClaimsError::Mismatch {
                expected: hex::encode(expected),
                found: hex::encode(report_data),
            })
        }
    }

    /// Decode an encoding produced by [`Claims::encode`]. Strict: the label must
    /// match, tags must be known, ascending and not repeated, lengths exact, required
    /// fields present and nothing may follow the last field, so that decoding and
    /// re-encoding gives back the same bytes.
    pub fn decode(bytes: &[u8]) -> Result<Claims, ClaimsError> {
        let mut r = Reader::new(bytes);
        let label_at = r.offset();
        if r.take(CLAIMS_LABEL.len(), "claims.label")? != CLAIMS_LABEL {
            return Err(ParseError::invalid(
                "claims.label",
                label_at,
                "not \"cocoon-ra-tls-claims/v1\"",
            )
            .into());
        }
        let mut spki = None;
        let mut receipt = None;
        let mut gpu = None;
        let mut event_log = None;
        let mut wallet = None;
        let mut nonce = None;
        let mut last_tag = 0u16;
        while !r.is_empty() {
            let tag_at = r.offset();
            let t = r.u16_be("claims.field.tag")?;
            if t <= last_tag {
                return Err(ParseError::invalid(
                    "claims.field.tag",
                    tag_at,
                    format!("tag {t} after tag {last_tag} (tags must ascend)"),
                )
                .into());
            }
            last_tag = t;
            let len_at = r.offset();
            let len = r.u32_be("claims.field.length")?;
            let len = crate::codec::check_len(
                "claims.field.length",
                len_at,
                u64::from(len),
                MAX_SPKI_LEN,
            )?;
            let value_at = r.offset();
            let v = r.take(len, "claims.field.value")?;
            let exact = |n: usize, field: &str| -> Result<(), ParseError> {
                if v.len() == n {
                    Ok(())
                } else {
                    Err(ParseError::invalid(
                        field,
                        value_at,
                        format!("{} bytes, expected {n}", v.len()),
                    ))
                }
            };
            match t {
                tag::TLS_SPKI => spki = Some(v.to_vec()),
                tag::RECEIPT_KEY => {
                    exact(32, "claims.receipt_public_key")?;
                    let mut k = [0u8; 32];
                    k.copy_from_slice(v);
                    receipt = Some(k);
                }
                tag::GPU_EVIDENCE_DIGEST => {
                    exact(48, "claims.gpu_evidence_digest")?;
                    gpu = Some(digest48(v));
                }
                tag::EVENT_LOG_DIGEST => {
                    exact(48, "claims.runtime_event_log_digest")?;
                    event_log = Some(digest48(v));
                }
                tag::WALLET_ADDRESS => {
                    let s = std::str::from_utf8(v).map_err(|e| {
                        ParseError::invalid("claims.wallet_address", value_at, e.to_string())
                    })?;
                    wallet = Some(s.to_string());
                }
                tag::NONCE => nonce = Some(v.to_vec()),
                other => {
                    return Err(ParseError::invalid(
                        "claims.field.tag",
                        tag_at,
                        format!("unknown tag {other}"),
                    )
                    .into())
                }
            }
        }
        let end = r.offset();
        let missing = |field: &str| ParseError::invalid(field, end, "required field is missing");
        let claims = Claims {
            tls_spki_der: spki.ok_or_else(|| missing("claims.tls_spki_der"))?,
            receipt_public_key: receipt.ok_or_else(|| missing("claims.receipt_public_key"))?,
            gpu_evidence_digest: gpu,
            runtime_event_log_digest: event_log
                .ok_or_else(|| missing("claims.runtime_event_log_digest"))?,
            wallet_address: wallet.ok_or_else(|| missing("claims.wallet_address"))?,
            nonce,
        };
        claims.validate()?;
        Ok(claims)
    }
}

fn digest48(v: &[u8]) -> Digest48 {
    let mut d = [0u8; 48];
    d.copy_from_slice(v);
    Digest48(d)
}

/// The claims of the worked example in `measurements/README.md (policy section)` (fixed, synthetic values).
pub fn example_claims() -> Claims {
    // A P-256 SPKI: the fixed DER prefix of id-ecPublicKey/prime256v1, then an
    // uncompressed point (synthetic coordinates; the encoding does not parse keys).
    let mut spki =
        hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap_or_default();
    spki.push(0x04);
    spki.extend_from_slice(&[0x11; 64]);
    Claims {
        tls_spki_der: spki,
        receipt_public_key: [0x22; 32],
        gpu_evidence_digest: Some(Digest48::sha384(b"gpu evidence")),
        runtime_event_log_digest: Digest48::sha384(b"runtime event log"),
        wallet_address: "UQBvW8Z5huBkMJYdnfAEM5JqTNkuWX3diqYENkWsIL0XggGG".to_string(),
        nonce: Some(vec![0x33; 16]),
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn encoding_layout_and_round_trip() {
        let c = example_claims();
        let e = c.encode();
        assert!(e.starts_with(CLAIMS_LABEL));
        // First field: tag 1, length 91 (a P-256 SPKI).
        assert_eq!(&e[23..29], &[0, 1, 0, 0, 0, 91]);
        let total = 23 + 6 * 6 + 91 + 32 + 48 + 48 + c.wallet_address.len() + 16;
        assert_eq!(e.len(), total);
        assert_eq!(Claims::decode(&e).unwrap(), c);
        assert!(c.verify_report_data(&c.report_data()).is_ok());
        let mut other = c.report_data();
        other[0] ^= 1;
        assert!(matches!(
            c.verify_report_data(&other),
            Err(ClaimsError::Mismatch { .. })
        ));
    }

    /// The worked example of measurements/README.md (policy section); the digest was computed independently
    /// (Python hashlib/struct over the same field values).
    #[test]
    fn worked_example_vector() {
        let c = example_claims();
        let e = c.encode();
        assert_eq!(e.len(), 342);
        assert_eq!(
            hex::encode(&e[..29]),
            "636f636f6f6e2d72612d746c732d636c61696d732f763100010000005b"
        );
        assert_eq!(
            hex::encode(c.report_data()),
            "dfab4b6271ac8b0f9ddd1661192bbacae830d44b49e395e5b73a7a3ad73dfaf7\
             c9eb6360d9e3387c403f6eedf7e64700e0d1dccf7858498b93da7decd7480f81"
        );
    }

    #[test]
    fn optional_fields_change_the_digest() {
        let c = example_claims();
        let mut no_gpu = c.clone();
        no_gpu.gpu_evidence_digest = None;
        let mut no_nonce = c.clone();
        no_nonce.nonce = None;
        assert_ne!(c.report_data(), no_gpu.report_data());
        assert_ne!(c.report_data(), no_nonce.report_data());
        assert_ne!(no_gpu.report_data(), no_nonce.report_data());
        assert_eq!(Claims::decode(&no_gpu.encode()).unwrap(), no_gpu);
    }

    #[test]
    fn decode_is_strict() {
        let e = example_claims().encode();
        // Every truncation fails, except the one that drops the whole (optional,
        // last) nonce field: that is a valid claim set without a nonce.
        let nonce_start = e.len() - (6 + 16);
        for cut in 0..e.len() {
            let r = Claims::decode(&e[..cut]);
            if cut == nonce_start {
                assert_eq!(r.unwrap().nonce, None);
            } else {
                assert!(r.is_err(), "cut {cut}");
            }
        }
        // Trailing garbage fails (read as a tag that does not ascend / is unknown).
        let mut t = e.clone();
        t.extend_from_slice(&[0, 7, 0, 0, 0, 0]);
        assert!(Claims::decode(&t).is_err());
        // Wrong label.
        let mut l = e.clone();
        l[0] = b'x';
        assert!(Claims::decode(&l)
            .unwrap_err()
            .to_string()
            .contains("offset 0"));
    }

    #[test]
    fn json_round_trip() {
        let c = example_claims();
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Claims>(&j).unwrap(), c);
    }
}
