//! Start, watch, restart and stop the engine process group.

use std::os::fd::AsFd as _;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use prometheus_client::metrics::counter::Counter;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

use super::{EngineCommand, EngineState, EngineStatus, Probe};
use crate::config::EngineConfig;

/// Consecutive failed liveness probes before a ready engine is restarted: one slow
/// answer under load is not a dead engine.
const LIVENESS_FAILURES: u32 = 3;
/// Poll interval while waiting for readiness.
const READY_POLL: Duration = Duration::from_millis(250);

/// Timing knobs of the supervisor (from `[engine]`).
#[derive(Debug, Clone)]
pub struct Timing {
    pub startup_timeout: Duration,
    pub probe_interval: Duration,
    pub stop_grace: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Timing {
    pub fn from_config(e: &EngineConfig) -> Self {
        Timing {
            startup_timeout: Duration::from_secs(e.startup_timeout_secs),
            probe_interval: Duration::from_secs(e.probe_interval_secs),
            stop_grace: Duration::from_secs(e.stop_grace_secs),
            initial_backoff: Duration::from_millis(e.restart.initial_backoff_ms),
            max_backoff: Duration::from_millis(e.restart.max_backoff_ms),
        }
    }
}

/// Owner's handle: stop the engine (whole group) and wait until it is gone.
pub struct SupervisorHandle {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl SupervisorHandle {
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "engine supervisor task failed");
        }
    }
}

/// Start supervising: spawn the engine now, restart it with backoff whenever it dies
/// or fails a check, until [`SupervisorHandle::stop`].
pub fn spawn_supervisor(
    command: EngineCommand,
    timing: Timing,
    work_dirs: Vec<std::path::PathBuf>,
    probe: Probe,
    status: Arc<EngineStatus>,
    restarts: Counter,
) -> SupervisorHandle {
    let (shutdown, rx) = watch::channel(false);
    let sup = Supervisor {
        command,
        timing,
        work_dirs,
        probe,
        status,
        restarts,
        shutdown: rx,
    };
    SupervisorHandle {
        shutdown,
        task: tokio::spawn(sup.run()),
    }
}

struct Supervisor {
    command: EngineCommand,
    timing: Timing,
    work_dirs: Vec<std::path::PathBuf>,
    probe: Probe,
    status: Arc<EngineStatus>,
    restarts: Counter,
    shutdown: watch::Receiver<bool>,
}

/// How one engine run ended.
enum RunEnd {
    Shutdown,
    Failed(String),
}

impl Supervisor {
    async fn run(mut self) {
        let mut backoff = self.timing.initial_backoff;
        loop {
            self.status.set(EngineState::Starting);
            let (end, was_ready) = self.run_once().await;
            let reason = match end {
                RunEnd::Shutdown => {
                    self.status.set(EngineState::Stopped);
                    return;
                }
                RunEnd::Failed(reason) => reason,
            };
            self.restarts.inc();
            if was_ready {
                // It served for a while: this failure starts a fresh backoff series.
                backoff = self.timing.initial_backoff;
            }
            self.status.set(EngineState::Restarting(reason));
            tokio::select! {
                _ = sleep(backoff) => {}
                _ = crate::shutdown::requested(&mut self.shutdown) => {
                    self.status.set(EngineState::Stopped);
                    return;
                }
            }
            backoff = backoff.saturating_mul(2).min(self.timing.max_backoff);
        }
    }

    fn spawn(&self) -> Result<Child, String> {
        for dir in &self.work_dirs {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let (program, args) = self
            .command
            .argv
            .split_first()
            .ok_or_else(|| "empty engine command line".to_string())?;
        // The engine's stdout goes to our stderr: our stdout carries only the ready
        // line that the image's tests and the host launcher wait for.
        let stdout = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| format!("dup stderr: {e}"))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(&self.command.env)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::inherit())
            // Own process group: stop signals go to vLLM and every process it forked.
            .process_group(0)
            .kill_on_drop(true);
        cmd.spawn().map_err(|e| format!("spawn {program}: {e}"))
    }

    /// One engine lifetime: spawn, wait for readiness, watch. The group is gone
    /// when this returns.
    async fn run_once(&mut self) -> (RunEnd, bool) {
        let mut child = match self.spawn() {
            Ok(c) => c,
            Err(why) => return (RunEnd::Failed(why), false),
        };
        let pgid = child.id().and_then(|p| i32::try_from(p).ok());
        tracing::info!(pid = ?pgid, argv = ?self.command.argv, "engine spawned");

        let deadline = Instant::now() + self.timing.startup_timeout;
        let ready = tokio::select! {
            r = wait_ready(&self.probe, deadline) => r,
            status = child.wait() => Err(exit_reason("exited during startup", status)),
            _ = crate::shutdown::requested(&mut self.shutdown) => {
                stop_group(&mut child, pgid, self.timing.stop_grace).await;
                return (RunEnd::Shutdown, false);
            }
        };
        if let Err(why) = ready {
            stop_group(&mut child, pgid, self.timing.stop_grace).await;
            return (RunEnd::Failed(why), false);
        }
        self.status.set(EngineState::Ready);

        let mut failures = 0u32;
        let end = loop {
            tokio::select! {
                status = child.wait() => break RunEnd::Failed(exit_reason("exited", status)),
                _ = sleep(self.timing.probe_interval) => {
                    match self.probe.health().await {
                        Ok(()) => failures = 0,
                        Err(e) => {
                            failures = failures.saturating_add(1);
                            tracing::warn!(error = %e, failures, "engine liveness probe failed");
                            if failures >= LIVENESS_FAILURES {
                                break RunEnd::Failed(format!("{failures} liveness probes failed: {e}"));
                            }
                        }
                    }
                }
                _ = crate::shutdown::requested(&mut self.shutdown) => break RunEnd::Shutdown,
            }
        };
        // Also after a crash: the server's own death leaves its workers running.
        stop_group(&mut child, pgid, self.timing.stop_grace).await;
        (end, true)
    }
}

async fn wait_ready(probe: &Probe, deadline: Instant) -> Result<(), String> {
    let timeout = |what: &str| format!("{what} not reached before engine.startup_timeout_secs");
    loop {
        match probe.health().await {
            Ok(()) => break,
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("{}: {e}", timeout("/health 200")))
            }
            Err(_) => sleep(READY_POLL).await,
        }
    }
    loop {
        match probe.model_listed().await {
            Ok(()) => break,
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("{}: {e}", timeout("model listed")))
            }
            Err(_) => sleep(READY_POLL).await,
        }
    }
    // A wrong answer is not transient: restart rather than poll.
    match probe.known_answer().await {
        Ok(Some(digest)) => tracing::info!(%digest, "engine known-answer check passed"),
        Ok(None) => {
            tracing::warn!("no engine.known_answer configured: engine output is not checked")
        }
        Err(e) => return Err(e.to_string()),
    }
    Ok(())
}

fn exit_reason(what: &str, status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(s) => format!("engine {what} ({s})"),
        Err(e) => format!("engine {what} (wait failed: {e})"),
    }
}

/// SIGTERM the group, wait up to `grace` for the leader and every member to exit,
/// then SIGKILL whatever is left.
async fn stop_group(child: &mut Child, pgid: Option<i32>, grace: Duration) {
    let Some(pgid) = pgid else {
        // Already reaped before we learned its pid: nothing to signal by group.
        let _ = child.kill().await;
        return;
    };
    let group = Pid::from_raw(pgid);
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    let _ = tokio::time::timeout_at(deadline, child.wait()).await;
    // Signal 0 probes whether any member of the group is left.
    while Instant::now() < deadline {
        if killpg(group, None).is_err() {
            tracing::info!(pgid, "engine process group stopped");
            return;
        }
        sleep(Duration::from_millis(50)).await;
    }
    if killpg(group, Signal::SIGKILL).is_ok() {
        tracing::warn!(pgid, "engine process group killed after the grace period");
    }
    let _ = child.wait().await;
}
