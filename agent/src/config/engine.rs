//! `[engine]`: the supervised inference engine.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;

/// `[engine]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// `vllm` (supervised vLLM OpenAI server) or `none` (no engine: API routes answer JSON 503).
    pub kind: EngineKind,
    /// Python interpreter that runs vLLM (a venv's `bin/python`).
    #[serde(default = "default_python")]
    pub python: PathBuf,
    /// Model directory passed to vLLM as `--model`.
    #[serde(default)]
    pub model_dir: Option<PathBuf>,
    /// Model name clients use and `/v1/models` must list (`--served-model-name`).
    #[serde(default)]
    pub served_model_name: Option<String>,
    /// Extra vLLM arguments appended after the ones the agent sets (measured with the command line).
    #[serde(default)]
    pub extra_args: Vec<String>,
    /// Loopback port vLLM listens on.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Extra environment variables for vLLM (the agent sets HF_HUB_OFFLINE, VLLM_USE_V2_MODEL_RUNNER, VLLM_CACHE_ROOT, TMPDIR itself).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Seconds from spawn until the engine must be ready (health, model, known answer) before it is restarted.
    #[serde(default = "default_startup_timeout")]
    pub startup_timeout_secs: u64,
    /// Seconds between liveness probes of a ready engine.
    #[serde(default = "default_probe_interval")]
    pub probe_interval_secs: u64,
    /// Seconds between SIGTERM and SIGKILL to the engine's process group on stop.
    #[serde(default = "default_stop_grace")]
    pub stop_grace_secs: u64,
    /// Known-answer check run before the engine is declared ready; omitted = no check (logged).
    #[serde(default)]
    pub known_answer: Option<KnownAnswer>,
    /// Backoff between restarts of a failed engine.
    #[serde(default)]
    pub restart: RestartPolicy,
}

/// The engine kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Vllm,
    None,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Vllm => "vllm",
            EngineKind::None => "none",
        }
    }
}

/// `[engine.known_answer]`: a greedy completion whose output is pinned.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownAnswer {
    /// Prompt sent to `/v1/completions` with temperature 0.
    pub prompt: String,
    /// `max_tokens` of the check's completion.
    #[serde(default = "default_ka_tokens")]
    pub max_tokens: u32,
    /// Hex SHA-256 of the completion's text (`choices[0].text`) that a correct engine returns.
    pub expected_sha256: String,
}

/// `[engine.restart]`: exponential backoff.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    /// Milliseconds before the first restart.
    #[serde(default = "default_initial_backoff")]
    pub initial_backoff_ms: u64,
    /// Upper bound of the doubling backoff, milliseconds.
    #[serde(default = "default_max_backoff")]
    pub max_backoff_ms: u64,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial_backoff_ms: default_initial_backoff(),
            max_backoff_ms: default_max_backoff(),
        }
    }
}

fn default_python() -> PathBuf {
    PathBuf::from("python3")
}
fn default_port() -> u16 {
    8000
}
fn default_startup_timeout() -> u64 {
    600
}
fn default_probe_interval() -> u64 {
    5
}
fn default_stop_grace() -> u64 {
    10
}
fn default_ka_tokens() -> u32 {
    16
}
fn default_initial_backoff() -> u64 {
    1000
}
fn default_max_backoff() -> u64 {
    60_000
}

/// Variables the agent owns; a config that sets them would silently change what was
/// measured (e.g. re-enable the V2 runner that returns wrong output under GPU CC).
pub const RESERVED_ENV: &[&str] = &[
    "VLLM_USE_V2_MODEL_RUNNER",
    "HF_HUB_OFFLINE",
    "VLLM_CACHE_ROOT",
    "TMPDIR",
];

impl EngineConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.validate_common()?;
        if self.kind == EngineKind::None {
            return Ok(());
        }
        if self.model_dir.is_none() {
            return Err(ConfigError::invalid(
                "engine.model_dir",
                "required when engine.kind = \"vllm\"",
            ));
        }
        match &self.served_model_name {
            None => {
                return Err(ConfigError::invalid(
                    "engine.served_model_name",
                    "required when engine.kind = \"vllm\"",
                ))
            }
            Some(n) if n.is_empty() => {
                return Err(ConfigError::invalid(
                    "engine.served_model_name",
                    "must not be empty",
                ))
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Rules that hold whatever the kind: a dev config switched to `vllm` later must
    /// not carry a latent bad value.
    fn validate_common(&self) -> Result<(), ConfigError> {
        if self.port == 0 {
            return Err(ConfigError::invalid("engine.port", "must be 1..=65535"));
        }
        if self.startup_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "engine.startup_timeout_secs",
                "must be > 0",
            ));
        }
        if self.probe_interval_secs == 0 {
            return Err(ConfigError::invalid(
                "engine.probe_interval_secs",
                "must be > 0",
            ));
        }
        for key in self.env.keys() {
            if RESERVED_ENV.contains(&key.as_str()) {
                return Err(ConfigError::invalid(
                    "engine.env",
                    format!("{key} is set by the agent and may not be overridden"),
                ));
            }
        }
        if let Some(ka) = &self.known_answer {
            let ok = ka.expected_sha256.len() == 64
                && ka.expected_sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !ok {
                return Err(ConfigError::invalid(
                    "engine.known_answer.expected_sha256",
                    "must be 64 hex digits",
                ));
            }
            if ka.max_tokens == 0 {
                return Err(ConfigError::invalid(
                    "engine.known_answer.max_tokens",
                    "must be > 0",
                ));
            }
        }
        let r = &self.restart;
        if r.initial_backoff_ms == 0 || r.max_backoff_ms < r.initial_backoff_ms {
            return Err(ConfigError::invalid(
                "engine.restart",
                "need 0 < initial_backoff_ms <= max_backoff_ms",
            ));
        }
        Ok(())
    }
}
