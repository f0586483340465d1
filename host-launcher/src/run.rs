//! `cocoon-host run`: prepare the state directory, start QEMU (and swtpm in dev
//! mode), watch for the agent's ready line, restart with backoff, stop gracefully.

pub mod backoff;
pub mod prepare;
pub mod ready;
pub mod signals;
pub mod supervisor;
pub mod swtpm;

use std::path::PathBuf;

/// Why a run could not start or ended in failure.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A file the launch needs is missing; `field` is the config field that names it.
    #[error("`{field}`: {} does not exist (fix: {fix})", .path.display())]
    Missing {
        field: &'static str,
        path: PathBuf,
        fix: String,
    },
    #[error("{what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {}: {source} (fix: install it or set its path in the worker config)", .program.display())]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("swtpm: {0}")]
    Swtpm(String),
    #[error("another supervisor (pid {pid}) runs in {} (fix: `cocoon-host stop` it first)", .state_dir.display())]
    AlreadyRunning { pid: i32, state_dir: PathBuf },
    #[error("gave up after {failures} consecutive fast failures (runs shorter than {fast_secs} s); last exit: {last_exit}; see {}", .serial_log.display())]
    GaveUp {
        failures: u32,
        fast_secs: u64,
        last_exit: String,
        serial_log: PathBuf,
    },
    #[error("the agent did not print `cocoon-agent: ready` within {secs} s (last serial line: {last_line:?}); see {}", .serial_log.display())]
    ReadyTimeout {
        secs: u64,
        last_line: String,
        serial_log: PathBuf,
    },
}
