//! `cocoon-host preflight`.

use std::path::PathBuf;

use cocoon_host::config::{Mode, WorkerConfig};
use cocoon_host::preflight::{all_passed, run as run_checks, CheckStatus, PreflightInput};
use cocoon_host::sysroot::SysRoot;
use serde::Serialize;

use crate::output::{Outcome, Status};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Worker config: adds the GPU, memory and firmware checks. Without it only the host is checked.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Read /sys, /proc, /dev and /boot under this directory instead of / (fixture trees).
    #[arg(long, default_value = "/")]
    root: PathBuf,
}

#[derive(Serialize)]
struct Report<'a> {
    ok: bool,
    passed: usize,
    failed: usize,
    unknown: usize,
    failed_ids: Vec<&'static str>,
    checks: &'a [cocoon_host::preflight::Check],
}

pub fn run(args: &Args) -> anyhow::Result<Outcome> {
    let root = SysRoot::new(&args.root);
    let input = match &args.config {
        Some(path) => PreflightInput::from_config(root, &WorkerConfig::load(path, Mode::Td)?),
        None => PreflightInput::host_only(root),
    };
    let checks = run_checks(&input);
    let count = |s| checks.iter().filter(|c| c.status == s).count();
    let ok = all_passed(&checks);
    let report = Report {
        ok,
        passed: count(CheckStatus::Pass),
        failed: count(CheckStatus::Fail),
        unknown: count(CheckStatus::Unknown),
        failed_ids: checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .map(|c| c.id)
            .collect(),
        checks: &checks,
    };
    let mut text: String = checks.iter().map(|c| c.render() + "\n").collect();
    text.push_str(&format!(
        "preflight: {} passed, {} failed, {} unknown: {}\n",
        report.passed,
        report.failed,
        report.unknown,
        if ok { "host ready" } else { "host NOT ready" }
    ));
    let status = if ok { Status::Ok } else { Status::Failed };
    Outcome::new(status, &report, text)
}
