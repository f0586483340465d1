//! The supervision loop: start swtpm (dev) and QEMU, watch the serial log for the
//! agent's ready line, restart with backoff when QEMU exits, and on a stop request
//! power the guest down through QMP (`system_powerdown`, then `quit`).

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::backoff::{Backoff, Decision};
use super::ready::{ready_text, SerialWatch};
use super::swtpm::Swtpm;
use super::RunError;
use crate::config::{DevSettings, OnGuestExit, RestartPolicy};
use crate::qemu::LaunchSpec;
use crate::qmp::Qmp;

const POLL: Duration = Duration::from_millis(100);

/// How QEMU ended when we stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMethod {
    /// The guest powered off after `system_powerdown` (ACPI power button).
    Powerdown,
    /// The guest ignored the power button; QEMU obeyed `quit`.
    Quit,
    /// QMP did not answer; QEMU was killed.
    Killed,
    /// QEMU was not running (stop arrived during a restart delay).
    NotRunning,
}

/// How supervision ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// A stop signal (or request) ended it.
    Stopped(StopMethod),
    /// The guest powered off and `restart.on_guest_exit = "stop"`.
    GuestPoweredOff,
}

/// What the supervisor reports as it goes (logging and progress live in the caller).
#[derive(Debug)]
pub enum Event<'a> {
    Starting {
        run: u32,
        program: &'a PathBuf,
        args: &'a [String],
    },
    Started {
        run: u32,
        pid: u32,
        tpm_pid: Option<u32>,
    },
    SerialLine(&'a str),
    Ready {
        run: u32,
        line: &'a str,
        after: Duration,
    },
    Exited {
        run: u32,
        status: &'a str,
        ran_for: Duration,
    },
    Restarting {
        delay: Duration,
        fast_failures: u32,
    },
    Stopping {
        run: u32,
    },
    Stopped {
        method: StopMethod,
    },
}

/// Receives [`Event`]s.
pub trait Observer {
    fn on(&mut self, event: Event<'_>);
}

/// Everything one supervision needs.
pub struct Supervisor {
    pub spec: LaunchSpec,
    pub policy: RestartPolicy,
    /// Dev mode's swtpm (`None` for a TD).
    pub dev: Option<DevSettings>,
    /// Where swtpm keeps its state (dev mode).
    pub tpm_dir: PathBuf,
    /// Watch the serial log for `cocoon-agent: ready`.
    pub watch_ready: bool,
    /// Fail when a boot is not ready within this time (only with `watch_ready`).
    pub ready_timeout: Option<Duration>,
    /// Polled; true means stop now (signal handler flag in the binary).
    pub stop_requested: Box<dyn Fn() -> bool>,
}

impl Supervisor {
    /// Run until stopped, given up, or (with `on_guest_exit = "stop"`) powered off.
    pub fn run(&self, obs: &mut dyn Observer) -> Result<Finish, RunError> {
        let mut backoff = Backoff::new(self.policy.clone());
        let args = self.spec.args();
        let mut run: u32 = 0;
        loop {
            run = run.saturating_add(1);
            let mut tpm = match (&self.dev, &self.spec.tpm_socket) {
                (Some(dev), Some(sock)) => Some(Swtpm::start(dev, &self.tpm_dir, sock)?),
                _ => None,
            };
            let _ = std::fs::remove_file(&self.spec.qmp_socket);
            let offset = SerialWatch::len_of(&self.spec.serial_log);
            obs.on(Event::Starting {
                run,
                program: &self.spec.qemu,
                args: &args,
            });
            let mut child = match spawn_qemu(&self.spec.qemu, &args) {
                Ok(c) => c,
                Err(e) => {
                    if let Some(t) = tpm.as_mut() {
                        t.stop();
                    }
                    return Err(e);
                }
            };
            obs.on(Event::Started {
                run,
                pid: child.id(),
                tpm_pid: tpm.as_ref().map(Swtpm::pid),
            });
            let started = Instant::now();
            let mut watch = self
                .watch_ready
                .then(|| SerialWatch::new(&self.spec.serial_log, offset));
            let (status, clean): (String, bool) = loop {
                if (self.stop_requested)() {
                    obs.on(Event::Stopping { run });
                    let method =
                        graceful_stop(&mut child, &self.spec.qmp_socket, self.stop_timeout());
                    if let Some(t) = tpm.as_mut() {
                        t.stop();
                    }
                    obs.on(Event::Stopped { method });
                    return Ok(Finish::Stopped(method));
                }
                match child.try_wait() {
                    Ok(Some(st)) => break (describe(st), st.success()),
                    Ok(None) => {}
                    Err(e) => break (format!("cannot wait for QEMU: {e}"), false),
                }
                if let Some(why) = tpm.as_mut().and_then(Swtpm::exited) {
                    // QEMU tells swtpm to shut down as the guest powers off, so swtpm
                    // may exit a moment before QEMU does: give QEMU time to follow.
                    if wait_exit(&mut child, Duration::from_secs(5)) {
                        continue;
                    }
                    tracing::error!(%why, "swtpm exited under a running guest; stopping QEMU");
                    graceful_stop(&mut child, &self.spec.qmp_socket, Duration::from_secs(1));
                    break (format!("swtpm exited ({why})"), false);
                }
                if let Some(w) = watch.as_mut() {
                    let lines = w.poll().unwrap_or_default();
                    let mut ready = None;
                    for line in &lines {
                        obs.on(Event::SerialLine(line));
                        if ready.is_none() {
                            ready = ready_text(line).map(str::to_string);
                        }
                    }
                    if let Some(line) = ready {
                        obs.on(Event::Ready {
                            run,
                            line: &line,
                            after: started.elapsed(),
                        });
                        watch = None;
                    } else if self.ready_timeout.is_some_and(|t| started.elapsed() > t) {
                        let last_line = w.last_line().to_string();
                        graceful_stop(&mut child, &self.spec.qmp_socket, Duration::from_secs(1));
                        if let Some(t) = tpm.as_mut() {
                            t.stop();
                        }
                        return Err(RunError::ReadyTimeout {
                            secs: self.ready_timeout.map(|t| t.as_secs()).unwrap_or_default(),
                            last_line,
                            serial_log: self.spec.serial_log.clone(),
                        });
                    }
                }
                std::thread::sleep(POLL);
            };
            if let Some(t) = tpm.as_mut() {
                t.stop();
            }
            let ran_for = started.elapsed();
            obs.on(Event::Exited {
                run,
                status: &status,
                ran_for,
            });
            if clean && self.policy.on_guest_exit == OnGuestExit::Stop {
                return Ok(Finish::GuestPoweredOff);
            }
            match backoff.after_exit(ran_for) {
                Decision::GiveUp { failures } => {
                    return Err(RunError::GaveUp {
                        failures,
                        fast_secs: self.policy.fast_failure_secs,
                        last_exit: status,
                        serial_log: self.spec.serial_log.clone(),
                    })
                }
                Decision::Restart(delay) => {
                    obs.on(Event::Restarting {
                        delay,
                        fast_failures: backoff.fast_failures(),
                    });
                    let until = Instant::now() + delay;
                    while Instant::now() < until {
                        if (self.stop_requested)() {
                            obs.on(Event::Stopped {
                                method: StopMethod::NotRunning,
                            });
                            return Ok(Finish::Stopped(StopMethod::NotRunning));
                        }
                        std::thread::sleep(
                            POLL.min(until.saturating_duration_since(Instant::now())),
                        );
                    }
                }
            }
        }
    }

    fn stop_timeout(&self) -> Duration {
        Duration::from_secs(self.policy.stop_timeout_secs)
    }
}

fn describe(st: ExitStatus) -> String {
    st.to_string()
}

fn spawn_qemu(program: &PathBuf, args: &[String]) -> Result<Child, RunError> {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).process_group(0);
    // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
    // Its own process group keeps a terminal's Ctrl-C away from QEMU (the supervisor
    // stops it gracefully); PDEATHSIG ends it if the supervisor is killed outright.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd.spawn().map_err(|source| RunError::Spawn {
        program: program.clone(),
        source,
    })
}

fn wait_exit(child: &mut Child, within: Duration) -> bool {
    let until = Instant::now() + within;
    loop {
        if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Power the guest off: ACPI power button through QMP (the guest flushes its
/// ledger and unmounts), then QMP `quit`, then SIGTERM/SIGKILL.
pub fn graceful_stop(child: &mut Child, qmp: &std::path::Path, timeout: Duration) -> StopMethod {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return StopMethod::NotRunning;
    }
    let io_timeout = Duration::from_secs(5);
    match Qmp::connect(qmp, io_timeout).and_then(|mut q| q.execute("system_powerdown")) {
        Ok(_) => {
            tracing::info!(timeout_s = timeout.as_secs(), "sent system_powerdown");
            if wait_exit(child, timeout) {
                return StopMethod::Powerdown;
            }
            tracing::warn!("guest did not power off in time; sending quit");
        }
        Err(e) => tracing::warn!(error = %e, "system_powerdown failed; sending quit"),
    }
    match Qmp::connect(qmp, io_timeout).and_then(|mut q| q.execute("quit")) {
        Ok(_) | Err(crate::qmp::QmpError::Closed) => {
            if wait_exit(child, Duration::from_secs(10)) {
                return StopMethod::Quit;
            }
        }
        Err(e) => tracing::warn!(error = %e, "quit failed; killing QEMU"),
    }
    terminate(child, Duration::from_secs(5));
    StopMethod::Killed
}

/// SIGTERM, wait up to `grace`, then SIGKILL; always reaps.
pub fn terminate(child: &mut Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    if !wait_exit(child, grace) {
        let _ = child.kill();
    }
    let _ = child.wait();
}
