//! The agent's TOML configuration.
//!
//! The config file is measured into RTMR3 (its SHA-256 is the first runtime event), so
//! every knob that changes what the worker does must live here and nowhere else: no
//! environment variables, no command-line overrides. Unknown keys are errors (fail
//! closed: a misspelt security setting must not silently fall back to a default), and
//! every error names the offending field as a dotted path (`engine.known_answer.prompt`).
//!
//! `agent/README.md` documents every field in a table; `tests/config_doc.rs` checks that
//! table against the doc comments of the structs below so the two cannot drift.

mod engine;
mod error;
mod host;
mod tee;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use engine::{EngineConfig, EngineKind, KnownAnswer, RestartPolicy};
pub use error::ConfigError;
pub use host::{
    merge as merge_host_settings, HostOutcome, HostSettingsConfig, MAX_HOST_SETTINGS_BYTES,
};
pub use tee::{SimTeeConfig, TdxTeeConfig, TeeConfig, TeeKind};

use crate::accounting::Pricing;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Address and port of the RA-TLS listener (TLS 1.3 only).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Directory holding the receipt ledger; the image mounts the `cocoon-data` disk here.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Which TEE produces quotes and holds RTMR3.
    pub tee: TeeConfig,
    /// The inference engine the agent supervises and forwards to.
    pub engine: EngineConfig,
    /// Where the model digest (runtime event `model`) comes from.
    #[serde(default)]
    pub model: ModelConfig,
    /// TON address the worker's earnings are paid out to (raw `0:<hex>` or user-friendly base64, CRC checked).
    pub owner_address: String,
    /// Token prices and the worker/proxy split used for receipts.
    #[serde(default)]
    pub pricing: Pricing,
    /// Request body and concurrency limits.
    #[serde(default)]
    pub limits: Limits,
    /// GPU attestation step.
    #[serde(default)]
    pub gpu: GpuConfig,
    /// TLS certificate options.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Host-supplied `owner_address` and `[pricing]` merged in before the config is measured; omitted = this file's values only.
    #[serde(default)]
    pub host_settings: Option<HostSettingsConfig>,
}

/// How the model that the engine serves is identified in the runtime event log.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// `verity` (dm-verity root hash of the model disk), `manifest` (SHA-256 manifest of `engine.model_dir`) or `none`.
    #[serde(default)]
    pub digest: ModelDigestSource,
    /// File holding the hex dm-verity root hash the image opened the model disk with (used when `digest = "verity"`).
    #[serde(default)]
    pub verity_root_hash_file: Option<PathBuf>,
}

/// Source of the `model` runtime event's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ModelDigestSource {
    /// `verity:<root hash hex>`.
    Verity,
    /// `manifest-sha256:<hex>` over the model directory's files.
    Manifest,
    /// `none`: no model (engine `none`) or an unpinned dev model.
    #[default]
    None,
}

/// Request limits enforced before anything reaches the engine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted request body in bytes; larger requests get a JSON 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    /// Requests forwarded to the engine at once; more get a JSON 429.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent_requests: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: default_max_body(),
            max_concurrent_requests: default_max_concurrent(),
        }
    }
}

/// NVIDIA confidential-computing GPU step.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GpuConfig {
    /// Refuse to start unless a CC-mode GPU was attested (needs the `nvidia` build feature).
    #[serde(default)]
    pub required: bool,
}

/// Options of the RA-TLS certificate.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Extra subject alternative names (DNS names or IP addresses) beside `localhost` and `127.0.0.1`.
    #[serde(default)]
    pub extra_sans: Vec<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 8443))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/cocoon")
}
fn default_max_body() -> u64 {
    1024 * 1024
}
fn default_max_concurrent() -> u32 {
    256
}

/// A parsed and validated configuration together with the exact text it came from:
/// the text is what RTMR3 measures and what `/attestation` serves as `config_toml`.
/// With `host_settings`, it is the file's text with the host's values merged in.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: AgentConfig,
    pub text: String,
    pub path: PathBuf,
    /// What became of `host_settings` (`None`: not configured).
    pub host: Option<HostOutcome>,
}

impl LoadedConfig {
    /// SHA-256 of the measured text: the payload of the `config` runtime event.
    pub fn sha256(&self) -> [u8; 32] {
        use sha2::Digest as _;
        sha2::Sha256::digest(self.text.as_bytes()).into()
    }
}

/// Read, parse and validate a config file, then merge in the host's settings when the
/// file names them (`host_settings`). The merged text is parsed and validated again,
/// so what is measured is exactly what is in force.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let config = parse(&text)?;
    let Some(hs) = config.host_settings.clone() else {
        return Ok(LoadedConfig {
            config,
            text,
            path: path.to_path_buf(),
            host: None,
        });
    };
    match host::read(&hs.path)? {
        Some(host_text) => {
            let (merged, instance) = host::merge(&text, &host_text, &hs.path)?;
            let config = parse(&merged)?;
            Ok(LoadedConfig {
                config,
                text: merged,
                path: path.to_path_buf(),
                host: Some(HostOutcome::Applied { instance }),
            })
        }
        None if hs.required => Err(ConfigError::HostSettings {
            path: hs.path.clone(),
            why: "missing, and host_settings.required = true (is the qemu_fw_cfg module \
                  loaded, and did the host pass -fw_cfg name=opt/cocoon/worker.toml?)"
                .into(),
        }),
        None => Ok(LoadedConfig {
            config,
            text,
            path: path.to_path_buf(),
            host: Some(HostOutcome::Missing),
        }),
    }
}

/// Parse and validate config text.
pub fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
    let config: AgentConfig = toml::from_str(text).map_err(|e| ConfigError::from_toml(text, &e))?;
    config.validate()?;
    Ok(config)
}

impl AgentConfig {
    /// Checks serde cannot express: cross-field requirements and value ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.tee.validate()?;
        self.engine.validate()?;
        if self.model.digest == ModelDigestSource::Verity
            && self.model.verity_root_hash_file.is_none()
        {
            return Err(ConfigError::invalid(
                "model.verity_root_hash_file",
                "required when model.digest = \"verity\"",
            ));
        }
        if self.model.digest == ModelDigestSource::Manifest && self.engine.model_dir.is_none() {
            return Err(ConfigError::invalid(
                "engine.model_dir",
                "required when model.digest = \"manifest\"",
            ));
        }
        crate::ton::parse_owner_address(&self.owner_address)
            .map_err(|e| ConfigError::invalid("owner_address", e.to_string()))?;
        self.pricing
            .validate()
            .map_err(|e| ConfigError::invalid("pricing", e.to_string()))?;
        if self.limits.max_body_bytes == 0 {
            return Err(ConfigError::invalid("limits.max_body_bytes", "must be > 0"));
        }
        if self.limits.max_concurrent_requests == 0 {
            return Err(ConfigError::invalid(
                "limits.max_concurrent_requests",
                "must be > 0",
            ));
        }
        for (i, san) in self.tls.extra_sans.iter().enumerate() {
            if san.is_empty() || san.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigError::invalid(
                    "tls.extra_sans",
                    format!("entry {i} ({san:?}) is not a DNS name or IP address"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
