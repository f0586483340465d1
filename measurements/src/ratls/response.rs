//! The JSON answer of `GET /attestation?nonce=HEX` (interface contract, section 5).

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::cert::TeeKind;
use super::runtime::RuntimeEvent;
use crate::claims::{Claims, ClaimsError};
use crate::quote::MAX_QUOTE_BYTES;
use crate::verify::QuoteCollateralV3;

/// The response format version this crate writes and reads.
pub const RESPONSE_VERSION: u32 = 1;
/// Largest boot event log accepted (a CCEL log area is 64 KiB, TPM logs are similar).
pub const MAX_BOOT_LOG_BYTES: usize = 4 * 1024 * 1024;

/// Format of the boot event log carried in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BootLogFormat {
    /// The TD's CCEL log (ACPI CCEL table's log area).
    Ccel,
    /// A TPM `binary_bios_measurements` log (sim TEE under swtpm).
    Tpm,
}

/// `GET /attestation` response. Byte fields are hex or base64 strings as named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttestationResponse {
    /// Always [`RESPONSE_VERSION`].
    pub version: u32,
    pub tee: TeeKind,
    /// A fresh quote whose REPORTDATA = SHA-512 of the claims below.
    pub quote_hex: String,
    /// `Claims::encode()` with the client's nonce.
    pub claims_hex: String,
    /// Collateral for the quote, when the worker has it.
    pub collateral: Option<QuoteCollateralV3>,
    /// The RTMR3 events, in extension order.
    pub runtime_event_log: Vec<RuntimeEvent>,
    /// Whether RTMR3 was really extended with these events (sim: always).
    pub rtmr3_extended: bool,
    /// Raw boot event log (CCEL or TPM), base64.
    pub boot_event_log_b64: Option<String>,
    pub boot_event_log_format: Option<BootLogFormat>,
    /// GPU evidence as the GPU verifier reads it, when a GPU is attached.
    pub gpu_evidence: Option<serde_json::Value>,
    /// The measured configuration text (its SHA-256 is the `config` event payload).
    pub config_toml: String,
    pub wallet_address: String,
    /// Ed25519 receipt public key, 32 bytes hex.
    pub receipt_public_key_hex: String,
}

/// A response field that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("attestation response: version {0} is not supported (expected {RESPONSE_VERSION})")]
    Version(u32),
    #[error("attestation response: {field} is not hex: {why}")]
    Hex { field: &'static str, why: String },
    #[error("attestation response: {field} is {len} bytes, more than the limit of {max}")]
    TooLarge {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("attestation response: boot_event_log_b64 is not base64: {0}")]
    Base64(String),
    #[error("attestation response: receipt_public_key_hex is {0} bytes, expected 32")]
    ReceiptKeyLength(usize),
    #[error("attestation response: claims_hex: {0}")]
    Claims(ClaimsError),
}

fn hex_field(field: &'static str, text: &str, max: usize) -> Result<Vec<u8>, ResponseError> {
    // Two hex digits per byte: refuse before decoding anything oversized.
    if text.len() / 2 > max {
        return Err(ResponseError::TooLarge {
            field,
            len: text.len() / 2,
            max,
        });
    }
    hex::decode(text.trim()).map_err(|e| ResponseError::Hex {
        field,
        why: e.to_string(),
    })
}

impl AttestationResponse {
    /// Ok for the version this crate reads.
    pub fn check_version(&self) -> Result<(), ResponseError> {
        if self.version == RESPONSE_VERSION {
            Ok(())
        } else {
            Err(ResponseError::Version(self.version))
        }
    }

    /// The raw quote bytes.
    pub fn quote(&self) -> Result<Vec<u8>, ResponseError> {
        hex_field("quote_hex", &self.quote_hex, MAX_QUOTE_BYTES)
    }

    /// The claims encoding, decoded.
    pub fn claims(&self) -> Result<Claims, ResponseError> {
        let bytes = hex_field(
            "claims_hex",
            &self.claims_hex,
            super::cert::MAX_CLAIMS_BYTES,
        )?;
        Claims::decode(&bytes).map_err(ResponseError::Claims)
    }

    /// The receipt public key.
    pub fn receipt_public_key(&self) -> Result<[u8; 32], ResponseError> {
        let v = hex_field("receipt_public_key_hex", &self.receipt_public_key_hex, 32)?;
        let len = v.len();
        v.try_into()
            .map_err(|_| ResponseError::ReceiptKeyLength(len))
    }

    /// The boot event log bytes, when present.
    pub fn boot_event_log(&self) -> Result<Option<Vec<u8>>, ResponseError> {
        let Some(b64) = &self.boot_event_log_b64 else {
            return Ok(None);
        };
        // Four base64 characters per three bytes.
        let len = (b64.len() / 4).saturating_mul(3);
        if len > MAX_BOOT_LOG_BYTES {
            return Err(ResponseError::TooLarge {
                field: "boot_event_log_b64",
                len,
                max: MAX_BOOT_LOG_BYTES,
            });
        }
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map(Some)
            .map_err(|e| ResponseError::Base64(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::example_claims;
    use crate::ratls::runtime::{replay, EVENT_MODEL};

    fn sample() -> AttestationResponse {
        let log = vec![RuntimeEvent::new(EVENT_MODEL, b"none".to_vec())];
        let mut claims = example_claims();
        claims.runtime_event_log_digest = replay(&log);
        AttestationResponse {
            version: RESPONSE_VERSION,
            tee: TeeKind::Sim,
            quote_hex: hex::encode([1u8, 2, 3]),
            claims_hex: hex::encode(claims.encode()),
            collateral: None,
            runtime_event_log: log,
            rtmr3_extended: true,
            boot_event_log_b64: Some("AAEC".into()),
            boot_event_log_format: Some(BootLogFormat::Tpm),
            gpu_evidence: None,
            config_toml: "listen = \"0.0.0.0:8443\"\n".into(),
            wallet_address: claims.wallet_address.clone(),
            receipt_public_key_hex: hex::encode(claims.receipt_public_key),
        }
    }

    #[test]
    fn json_shape_and_round_trip() {
        let r = sample();
        let v = serde_json::to_value(&r).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        for k in [
            "version",
            "tee",
            "quote_hex",
            "claims_hex",
            "collateral",
            "runtime_event_log",
            "rtmr3_extended",
            "boot_event_log_b64",
            "boot_event_log_format",
            "gpu_evidence",
            "config_toml",
            "wallet_address",
            "receipt_public_key_hex",
        ] {
            assert!(keys.contains(&k.to_string()), "{k}");
        }
        assert_eq!(keys.len(), 13);
        assert_eq!(v["tee"], "sim");
        assert_eq!(v["boot_event_log_format"], "tpm");
        assert!(v["collateral"].is_null());
        let back: AttestationResponse = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.quote().unwrap(), vec![1, 2, 3]);
        assert_eq!(back.claims().unwrap().nonce, Some(vec![0x33; 16]));
        assert_eq!(back.receipt_public_key().unwrap(), [0x22; 32]);
        assert_eq!(back.boot_event_log().unwrap(), Some(vec![0, 1, 2]));
        back.check_version().unwrap();
    }

    #[test]
    fn field_errors_are_named() {
        let mut r = sample();
        r.quote_hex = "zz".into();
        assert!(matches!(
            r.quote(),
            Err(ResponseError::Hex {
                field: "quote_hex",
                ..
            })
        ));
        r.receipt_public_key_hex = "00".into();
        assert_eq!(
            r.receipt_public_key(),
            Err(ResponseError::ReceiptKeyLength(1))
        );
        r.claims_hex = "00".into();
        assert!(matches!(r.claims(), Err(ResponseError::Claims(_))));
        r.boot_event_log_b64 = Some("!!".into());
        assert!(matches!(r.boot_event_log(), Err(ResponseError::Base64(_))));
        r.version = 2;
        assert_eq!(r.check_version(), Err(ResponseError::Version(2)));
    }
}
