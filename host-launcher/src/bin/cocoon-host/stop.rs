//! `cocoon-host stop`: end a supervisor (which powers its guest down through QMP).

use std::time::{Duration, Instant};

use cocoon_host::run::prepare::PidFile;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Serialize;

use crate::common::ConfigArgs;
use crate::output::{Outcome, Status};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Seconds to wait for the supervisor to exit (default: restart.stop_timeout_secs + 20).
    #[arg(long)]
    timeout: Option<u64>,
}

#[derive(Serialize)]
struct Report {
    was_running: bool,
    pid: Option<i32>,
    stopped: bool,
}

pub fn run(args: &Args) -> anyhow::Result<Outcome> {
    let cfg = args.config.load()?;
    let state = cfg.state_dir(args.config.mode());
    let Some(pid) = PidFile::live_pid(&state) else {
        let report = Report {
            was_running: false,
            pid: None,
            stopped: true,
        };
        return Outcome::new(
            Status::Ok,
            &report,
            format!("no supervisor running in {}", state.display()),
        );
    };
    kill(Pid::from_raw(pid), Signal::SIGTERM)?;
    let wait = Duration::from_secs(
        args.timeout
            .unwrap_or(cfg.restart.stop_timeout_secs.saturating_add(20)),
    );
    let until = Instant::now() + wait;
    let mut gone = false;
    while Instant::now() < until {
        if kill(Pid::from_raw(pid), None).is_err() {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let report = Report {
        was_running: true,
        pid: Some(pid),
        stopped: gone,
    };
    if gone {
        Outcome::new(Status::Ok, &report, format!("stopped supervisor {pid}"))
    } else {
        Outcome::new(
            Status::Failed,
            &report,
            format!("supervisor {pid} still running after {} s", wait.as_secs()),
        )
    }
}
