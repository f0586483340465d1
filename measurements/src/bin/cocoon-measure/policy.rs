//! `cocoon-measure policy from-measurements|check`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::json;

use cocoon_measurements::expected::ExpectedMeasurements;
use cocoon_measurements::policy::Policy;

use crate::output::{Outcome, Status};
use crate::quote::read_capped;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Write a policy pinning an image's measurements (MRTD, RTMR1, RTMR2, and
    /// RTMR0 when computed) from the build's measurements JSON.
    FromMeasurements {
        /// measurements.json (the output of `cocoon-measure compute --json`).
        file: PathBuf,
        /// Write the policy here instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Load a policy file, report whether it is valid, and print it normalised.
    Check {
        /// The policy (TOML).
        file: PathBuf,
    },
}

pub fn run(cmd: &Command) -> anyhow::Result<Outcome> {
    match cmd {
        Command::FromMeasurements { file, out } => from_measurements(file, out.as_deref()),
        Command::Check { file } => check(file),
    }
}

fn from_measurements(file: &Path, out: Option<&Path>) -> anyhow::Result<Outcome> {
    let bytes = read_capped(file, 64 * 1024 * 1024, "measurements")?;
    let m: ExpectedMeasurements = serde_json::from_slice(&bytes)
        .with_context(|| format!("measurements {}", file.display()))?;
    let policy = Policy::from_measurements(&m);
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.display().to_string());
    let text = policy.to_toml(Some(&name))?;
    // What we write must load back as the same policy.
    let back = Policy::from_toml(&text).context("generated policy does not load back")?;
    anyhow::ensure!(back == policy, "generated policy does not round-trip");

    let summary = if let Some(o) = out {
        std::fs::write(o, &text).with_context(|| format!("cannot write {}", o.display()))?;
        format!("wrote {}\n", o.display())
    } else {
        text.clone()
    };
    let report = json!({
        "source": file.display().to_string(),
        "out": out.map(|o| o.display().to_string()),
        "pinned": {
            "mrtd": true,
            "rtmr0": m.rtmr0.is_some(),
            "rtmr1": true,
            "rtmr2": true,
            "rtmr3": false,
        },
        "policy": policy,
        "policy_toml": text,
    });
    Outcome::new(Status::Ok, &report, summary)
}

fn check(file: &Path) -> anyhow::Result<Outcome> {
    let bytes = read_capped(file, 1024 * 1024, "policy")?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("policy {} is not UTF-8", file.display()))?;
    let policy = Policy::from_toml(&text).with_context(|| file.display().to_string())?;
    let report = json!({
        "file": file.display().to_string(),
        "valid": true,
        "registers_pinned": policy.pins_registers(),
        "policy": policy,
    });
    let summary = format!("{}: valid policy\n", file.display());
    Outcome::new(Status::Ok, &report, summary)
}
