//! The inference engine: vLLM as a supervised child process (issue 6, item 4).
//!
//! A child process, not an embedded interpreter, so an engine crash cannot take the
//! attestation keys or the ledger with it. It runs in its own process group and is
//! always stopped as a group: vLLM's engine-core processes survive a SIGKILL of the
//! API server alone (`shared/ENGINE.md`). The proxy consults [`EngineStatus`] before
//! forwarding; anything but `Ready` is a JSON 503 to the client.

mod command;
mod probe;
mod status;
mod supervisor;

pub use command::{cmdline_payload, engine_argv, engine_env, EngineCommand};
pub use probe::{known_answer_digest, Probe, ProbeError};
pub use status::{EngineState, EngineStatus};
pub use supervisor::{spawn_supervisor, SupervisorHandle, Timing};

/// Supervisor timing from `[engine]`.
pub fn supervisor_timing_from_config(e: &crate::config::EngineConfig) -> Timing {
    Timing::from_config(e)
}
