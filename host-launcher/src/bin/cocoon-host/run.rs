//! `cocoon-host run`: dry-run, foreground supervision, or `--until-ready` (start a
//! detached supervisor and return once the agent serves).

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use cocoon_host::config::{Mode, WorkerConfig};
use cocoon_host::qemu::{tpm_dir, LaunchSpec};
use cocoon_host::run::prepare::prepare;
use cocoon_host::run::ready::{ready_text, SerialWatch};
use cocoon_host::run::supervisor::{Event, Finish, Observer, Supervisor};
use cocoon_host::run::{signals, RunError};
use cocoon_host::sysroot::SysRoot;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::common::ConfigArgs;
use crate::output::{Outcome, Status};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Print the QEMU command line, one argument per line, and exit.
    #[arg(long)]
    dry_run: bool,
    /// Where GPU BARs are read to size the MMIO window (fixture trees in tests).
    #[arg(long, default_value = "/")]
    root: PathBuf,
    /// Show progress until the agent prints `cocoon-agent: ready` on the serial console, then keep supervising.
    #[arg(long)]
    wait_ready: bool,
    /// Start the supervisor in the background, return once the agent is ready (for scripts; stop it with `cocoon-host stop`).
    #[arg(long, conflicts_with = "dry_run")]
    until_ready: bool,
    /// Seconds the agent has to become ready (with --wait-ready / --until-ready).
    #[arg(long, default_value_t = 600)]
    ready_timeout: u64,
}

impl Args {
    /// True when this invocation stays in the foreground supervising QEMU.
    pub fn supervises(&self) -> bool {
        !self.dry_run && !self.until_ready
    }
}

#[derive(Serialize)]
struct DryRun<'a> {
    mode: Mode,
    program: &'a Path,
    args: &'a [String],
    spec: &'a LaunchSpec,
}

#[derive(Serialize)]
struct Finished {
    finish: Finish,
    ready_line: Option<String>,
}

#[derive(Serialize)]
struct Ready {
    ready_line: String,
    seconds: f64,
    supervisor_pid: u32,
    state_dir: PathBuf,
    serial_log: PathBuf,
    supervisor_log: PathBuf,
    qmp_socket: PathBuf,
    host_address: String,
    host_port: u16,
}

pub fn run(args: &Args, json: bool) -> anyhow::Result<Outcome> {
    let cfg = args.config.load()?;
    let mode = args.config.mode();
    if mode == Mode::Dev && !cfg.gpus.is_empty() {
        tracing::warn!("dev mode passes no GPU; ignoring `gpus`");
    }
    let spec = LaunchSpec::from_config(&cfg, mode, &SysRoot::new(&args.root));
    if args.dry_run {
        let qemu_args = spec.args();
        let mut text = format!("{}\n", spec.qemu.display());
        for a in &qemu_args {
            text.push_str(a);
            text.push('\n');
        }
        let report = DryRun {
            mode,
            program: &spec.qemu,
            args: &qemu_args,
            spec: &spec,
        };
        return Outcome::new(Status::Ok, &report, text);
    }
    if args.until_ready {
        return until_ready(args, &cfg, mode, &spec);
    }
    signals::install().context("cannot install signal handlers")?;
    let _pid = prepare(&cfg, &spec, mode)?;
    tracing::info!(
        mode = ?mode,
        serial_log = %spec.serial_log.display(),
        host = %format!("{}:{}", spec.host_address, spec.host_port),
        "cocoon-host supervising {}", spec.name
    );
    let sup = Supervisor {
        spec: spec.clone(),
        policy: cfg.restart.clone(),
        dev: (mode == Mode::Dev).then(|| cfg.dev.clone()),
        tpm_dir: tpm_dir(&cfg.state_dir(mode)),
        watch_ready: args.wait_ready,
        ready_timeout: args
            .wait_ready
            .then(|| Duration::from_secs(args.ready_timeout)),
        stop_requested: Box::new(signals::stop_requested),
    };
    let mut obs = LogObserver::new(args.wait_ready && !json);
    let finish = sup.run(&mut obs)?;
    let report = Finished {
        finish,
        ready_line: obs.ready_line.clone(),
    };
    Outcome::new(Status::Ok, &report, String::new())
}

/// Logs supervisor events; shows a spinner with the last serial line while waiting.
struct LogObserver {
    spinner: Option<ProgressBar>,
    ready_line: Option<String>,
}

impl LogObserver {
    fn new(progress: bool) -> Self {
        let spinner = progress.then(|| {
            let pb = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed}] waiting for cocoon-agent: {wide_msg}",
            ) {
                pb.set_style(style);
            }
            pb.enable_steady_tick(Duration::from_millis(200));
            pb
        });
        Self {
            spinner,
            ready_line: None,
        }
    }
}

impl Observer for LogObserver {
    fn on(&mut self, event: Event<'_>) {
        match event {
            Event::Starting { run, program, args } => {
                tracing::info!(run, "starting {}", program.display());
                tracing::debug!(?args, "QEMU arguments");
            }
            Event::Started { run, pid, tpm_pid } => {
                tracing::info!(run, pid, ?tpm_pid, "QEMU running")
            }
            Event::SerialLine(line) => {
                if let Some(pb) = &self.spinner {
                    pb.set_message(line.chars().take(120).collect::<String>());
                }
            }
            Event::Ready { run, line, after } => {
                if let Some(pb) = self.spinner.take() {
                    pb.finish_and_clear();
                }
                tracing::info!(run, seconds = after.as_secs(), "{line}");
                self.ready_line = Some(line.to_string());
            }
            Event::Exited {
                run,
                status,
                ran_for,
            } => {
                tracing::warn!(run, %status, seconds = ran_for.as_secs(), "QEMU exited")
            }
            Event::Restarting {
                delay,
                fast_failures,
            } => {
                tracing::info!(
                    delay_ms = delay.as_millis() as u64,
                    fast_failures,
                    "restarting"
                )
            }
            Event::Stopping { run } => {
                tracing::info!(run, "stopping: system_powerdown through QMP")
            }
            Event::Stopped { method } => {
                if let Some(pb) = self.spinner.take() {
                    pb.finish_and_clear();
                }
                tracing::info!(?method, "stopped")
            }
        }
    }
}

/// Start `cocoon-host run` detached (own session, logs to `<state>/supervisor.log`)
/// and wait here for the agent's ready line on the serial console.
fn until_ready(
    args: &Args,
    cfg: &WorkerConfig,
    mode: Mode,
    spec: &LaunchSpec,
) -> anyhow::Result<Outcome> {
    let state = cfg.state_dir(mode);
    std::fs::create_dir_all(&state)
        .with_context(|| format!("cannot create {}", state.display()))?;
    let log_path = state.join("supervisor.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let offset = SerialWatch::len_of(&spec.serial_log);
    let exe = std::env::current_exe().context("cannot find this binary's path")?;
    let mut cmd = Command::new(exe);
    cmd.arg("run");
    if let Some(c) = &args.config.config {
        cmd.arg("--config").arg(std::path::absolute(c)?);
    }
    if args.config.dev {
        cmd.arg("--dev");
    }
    cmd.arg("--image-dir").arg(&cfg.image_dir);
    cmd.arg("--state-dir").arg(&state);
    cmd.arg("--root").arg(std::path::absolute(&args.root)?);
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; a new session detaches the supervisor from
    // this terminal, so the caller's exit or Ctrl-C does not reach it.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .context("cannot start the background supervisor")?;
    let pid = child.id();
    let started = Instant::now();
    let timeout = Duration::from_secs(args.ready_timeout);
    let mut watch = SerialWatch::new(&spec.serial_log, offset);
    let pb = ProgressBar::new_spinner();
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} [{elapsed}] waiting for cocoon-agent: {wide_msg}")
    {
        pb.set_style(style);
    }
    pb.enable_steady_tick(Duration::from_millis(200));
    loop {
        for line in watch.poll().unwrap_or_default() {
            if let Some(ready) = ready_text(&line) {
                pb.finish_and_clear();
                let report = Ready {
                    ready_line: ready.to_string(),
                    seconds: started.elapsed().as_secs_f64(),
                    supervisor_pid: pid,
                    state_dir: state.clone(),
                    serial_log: spec.serial_log.clone(),
                    supervisor_log: log_path.clone(),
                    qmp_socket: spec.qmp_socket.clone(),
                    host_address: spec.host_address.clone(),
                    host_port: spec.host_port,
                };
                let text = format!(
                    "{ready}\nready after {:.0} s; supervisor pid {pid} (stop: cocoon-host stop{} --state-dir {})\n",
                    report.seconds,
                    if mode == Mode::Dev { " --dev" } else { "" },
                    state.display()
                );
                return Outcome::new(Status::Ok, &report, text);
            }
            pb.set_message(line.chars().take(120).collect::<String>());
        }
        if let Ok(Some(status)) = child.try_wait() {
            pb.finish_and_clear();
            let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            anyhow::bail!(
                "the supervisor exited ({status}) before the agent was ready; {}:\n{}",
                log_path.display(),
                tail.join("\n")
            );
        }
        if started.elapsed() > timeout {
            pb.finish_and_clear();
            if let Ok(p) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let until = Instant::now()
                + Duration::from_secs(cfg.restart.stop_timeout_secs.saturating_add(20));
            while Instant::now() < until && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            return Err(RunError::ReadyTimeout {
                secs: args.ready_timeout,
                last_line: watch.last_line().to_string(),
                serial_log: spec.serial_log.clone(),
            }
            .into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
