//! `GET /attestation?nonce=HEX`: a fresh quote over claims that include the client's
//! nonce (CONTRACT section 5).
//!
//! Everything but the claims' nonce and the quote is fixed at boot, so it is prepared
//! once; a request costs one quote and one JSON serialisation.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use cocoon_measurements::claims::{Claims, MAX_NONCE_LEN};
use cocoon_measurements::ratls::{AttestationResponse, BootLogFormat, RESPONSE_VERSION};

use crate::gpu::GpuEvidence;
use crate::keys::AgentKeys;
use crate::runtime_log::LogSnapshot;
use crate::tee::{QuoteCollateralV3, TeeBackend, TeeError};

#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error("nonce: {0}")]
    Nonce(String),
    #[error("quote: {0}")]
    Quote(#[from] TeeError),
    #[error("claims: {0}")]
    Claims(#[from] cocoon_measurements::claims::ClaimsError),
    #[error("quote task failed: {0}")]
    Join(String),
}

/// The boot-time facts an attestation answer repeats.
pub struct Attestor {
    tee: Arc<dyn TeeBackend>,
    tls_spki_der: Vec<u8>,
    receipt_public_key: [u8; 32],
    wallet_address: String,
    gpu: Option<GpuEvidence>,
    log: LogSnapshot,
    config_toml: String,
    boot_log_b64: Option<String>,
    boot_log_format: Option<BootLogFormat>,
    collateral: Option<QuoteCollateralV3>,
}

impl Attestor {
    pub fn new(
        tee: Arc<dyn TeeBackend>,
        keys: &AgentKeys,
        gpu: Option<GpuEvidence>,
        log: LogSnapshot,
        config_toml: String,
    ) -> Self {
        let boot = tee.boot_event_log();
        let collateral = tee.collateral();
        Attestor {
            tls_spki_der: keys.tls_spki_der(),
            receipt_public_key: keys.receipt_public_key(),
            wallet_address: keys.wallet_address(),
            gpu,
            log,
            config_toml,
            boot_log_b64: boot
                .as_ref()
                .map(|b| base64::engine::general_purpose::STANDARD.encode(&b.bytes)),
            boot_log_format: boot.map(|b| b.format),
            collateral,
            tee,
        }
    }

    /// The worker's claims; `nonce` only for challenge answers.
    pub fn claims(&self, nonce: Option<Vec<u8>>) -> Claims {
        Claims {
            tls_spki_der: self.tls_spki_der.clone(),
            receipt_public_key: self.receipt_public_key,
            gpu_evidence_digest: self.gpu.as_ref().map(|g| g.digest),
            runtime_event_log_digest: self.log.digest,
            wallet_address: self.wallet_address.clone(),
            nonce,
        }
    }

    /// Parse the `nonce` query parameter: hex, 1..=256 bytes.
    pub fn parse_nonce(query: Option<&str>) -> Result<Vec<u8>, AttestError> {
        let hexed = query
            .unwrap_or_default()
            .split('&')
            .find_map(|kv| kv.strip_prefix("nonce="))
            .ok_or_else(|| AttestError::Nonce("missing ?nonce=HEX".into()))?;
        let nonce = hex::decode(hexed).map_err(|e| AttestError::Nonce(e.to_string()))?;
        if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
            return Err(AttestError::Nonce(format!(
                "{} bytes (must be 1..={MAX_NONCE_LEN})",
                nonce.len()
            )));
        }
        Ok(nonce)
    }

    /// A fresh answer; returns it with the time the quote took.
    pub async fn respond(
        &self,
        nonce: Vec<u8>,
    ) -> Result<(AttestationResponse, std::time::Duration), AttestError> {
        let claims = self.claims(Some(nonce));
        claims.validate()?;
        let report_data = claims.report_data();
        let tee = self.tee.clone();
        let started = Instant::now();
        // Quoting blocks (configfs I/O and a host round trip, or ECDSA in sim).
        let quote = tokio::task::spawn_blocking(move || tee.quote(&report_data))
            .await
            .map_err(|e| AttestError::Join(e.to_string()))??;
        let took = started.elapsed();
        Ok((
            AttestationResponse {
                version: RESPONSE_VERSION,
                tee: self.tee.kind(),
                quote_hex: hex::encode(&quote),
                claims_hex: hex::encode(claims.encode()),
                collateral: self.collateral.clone(),
                runtime_event_log: self.log.events.clone(),
                rtmr3_extended: self.log.rtmr3_extended,
                boot_event_log_b64: self.boot_log_b64.clone(),
                boot_event_log_format: self.boot_log_format,
                gpu_evidence: self.gpu.as_ref().map(|g| g.json.clone()),
                config_toml: self.config_toml.clone(),
                wallet_address: self.wallet_address.clone(),
                receipt_public_key_hex: hex::encode(self.receipt_public_key),
            },
            took,
        ))
    }
}
