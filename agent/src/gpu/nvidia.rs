//! NVML side of the GPU step (Hopper confidential computing).

use base64::Engine as _;
use nvml_wrapper::Nvml;

use super::{GpuError, GpuEvidence, GpuOutcome};

fn nvml_err(e: nvml_wrapper::error::NvmlError) -> GpuError {
    GpuError::Nvml(e.to_string())
}

pub(super) fn attest_all(nonce: &[u8; 32]) -> Result<GpuOutcome, GpuError> {
    let nvml = match Nvml::init() {
        Ok(n) => n,
        // No driver / no library: there is no GPU this TD could use.
        Err(e) => return Ok(GpuOutcome::Skipped(format!("NVML unavailable: {e}"))),
    };
    let count = nvml.device_count().map_err(nvml_err)?;
    if count == 0 {
        return Ok(GpuOutcome::Skipped("no NVIDIA GPU".to_string()));
    }
    let mut entries = Vec::new();
    let mut first = None;
    for index in 0..count {
        let dev = nvml.device_by_index(index).map_err(nvml_err)?;
        // CC on and dev tools off are system-wide settings in NVML; checking them per
        // device keeps the error tied to the GPU an operator would look at.
        if !dev.is_cc_enabled().map_err(nvml_err)? {
            return Err(GpuError::Unsafe {
                index,
                why: "confidential computing mode is off".into(),
            });
        }
        if dev.is_cc_dev_mode_enabled().map_err(nvml_err)? {
            return Err(GpuError::Unsafe {
                index,
                why: "developer-tools mode is on (GPU memory is debuggable)".into(),
            });
        }
        let report = dev
            .confidential_compute_gpu_attestation_report(*nonce)
            .map_err(nvml_err)?;
        let certs = dev
            .confidential_compute_gpu_certificate()
            .map_err(nvml_err)?;
        let arch = dev
            .architecture()
            .map(|a| a.to_string().to_ascii_uppercase())
            .unwrap_or_else(|_| "HOPPER".to_string());
        let b64 = base64::engine::general_purpose::STANDARD;
        entries.push(serde_json::json!({
            "arch": arch,
            "certificate": b64.encode(&certs.attestation_cert_chain),
            "evidence": b64.encode(&report.attestation_report),
            "nonce": hex::encode(nonce),
        }));
        first.get_or_insert(dev);
    }
    // Only after every GPU passed: let them accept work (NVML ready state).
    if let Some(dev) = first {
        dev.set_confidential_compute_state(true).map_err(nvml_err)?;
    }
    tracing::info!(gpus = count, "GPU evidence collected, GPUs set ready");
    Ok(GpuOutcome::Attested(GpuEvidence::new(
        serde_json::Value::Array(entries),
    )))
}
