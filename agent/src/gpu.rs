//! The GPU step of the boot sequence (issue 6, item 3).
//!
//! With the `nvidia` feature and a GPU: refuse unless confidential computing is on
//! and developer-tools mode is off, collect each GPU's attestation report with the
//! nonce bound to our TLS key (`measurements::gpu::nonce_for_tls_spki`) and its
//! certificate chain, then mark the GPUs ready to accept work. The evidence is served
//! in `/attestation` as NVIDIA's evidence JSON, and its SHA-384 goes into the claims.
//!
//! Without the feature, or without a GPU when none is required: skip, say so in the
//! log, and serve `gpu_evidence: null` (claims without a GPU digest).

#[cfg(feature = "nvidia")]
mod nvidia;

use cocoon_measurements::Digest48;

/// Why the GPU step refuses to continue.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// `gpu.required` but no attestable GPU.
    #[error("gpu.required is set but {0}")]
    Required(String),
    /// A GPU whose CC settings make its evidence worthless.
    #[error("GPU {index}: {why}")]
    Unsafe { index: u32, why: String },
    #[error("NVML: {0}")]
    Nvml(String),
}

/// Evidence of the attested GPUs.
#[derive(Debug, Clone)]
pub struct GpuEvidence {
    /// NVIDIA's evidence JSON: `[{"arch", "certificate", "evidence", "nonce"}]`.
    pub json: serde_json::Value,
    /// SHA-384 of the canonical form of `json` (`measurements::gpu::digest`): the
    /// claims' `gpu_evidence_digest`.
    pub digest: Digest48,
}

impl GpuEvidence {
    pub fn new(json: serde_json::Value) -> Self {
        let digest = cocoon_measurements::gpu::digest::evidence_digest(&json);
        GpuEvidence { json, digest }
    }
}

/// What the step did.
#[derive(Debug, Clone)]
pub enum GpuOutcome {
    Attested(GpuEvidence),
    /// Skipped, with the reason logged and reported.
    Skipped(String),
}

impl GpuOutcome {
    pub fn evidence(&self) -> Option<&GpuEvidence> {
        match self {
            GpuOutcome::Attested(e) => Some(e),
            GpuOutcome::Skipped(_) => None,
        }
    }
}

/// Run the GPU step for the TLS key `tls_spki_der`.
pub fn attest(required: bool, tls_spki_der: &[u8]) -> Result<GpuOutcome, GpuError> {
    let nonce = cocoon_measurements::gpu::nonce_for_tls_spki(tls_spki_der);
    let outcome = probe(&nonce)?;
    match (&outcome, required) {
        (GpuOutcome::Skipped(why), true) => Err(GpuError::Required(why.clone())),
        (GpuOutcome::Skipped(why), false) => {
            tracing::warn!(reason = %why, "GPU step skipped: gpu_evidence will be null");
            Ok(outcome)
        }
        (GpuOutcome::Attested(_), _) => Ok(outcome),
    }
}

#[cfg(feature = "nvidia")]
fn probe(nonce: &[u8; 32]) -> Result<GpuOutcome, GpuError> {
    nvidia::attest_all(nonce)
}

#[cfg(not(feature = "nvidia"))]
fn probe(_nonce: &[u8; 32]) -> Result<GpuOutcome, GpuError> {
    Ok(GpuOutcome::Skipped(
        "built without the `nvidia` feature".to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "nvidia"))]
    #[test]
    fn without_feature_skip_unless_required() {
        assert!(matches!(attest(false, b"spki"), Ok(GpuOutcome::Skipped(_))));
        let e = attest(true, b"spki").unwrap_err();
        assert!(e.to_string().contains("nvidia"), "{e}");
    }

    #[test]
    fn digest_is_the_verifiers() {
        let e = GpuEvidence::new(serde_json::json!([{"nonce": "00", "arch": "HOPPER"}]));
        assert_eq!(
            e.digest,
            Digest48::sha384(br#"[{"arch":"HOPPER","nonce":"00"}]"#)
        );
    }
}
