//! `cocoon-host install-units`.

use std::path::PathBuf;

use anyhow::Context;
use cocoon_host::config::{Mode, WorkerConfig};
use cocoon_host::units::{render, unit_name};
use serde::Serialize;

use crate::output::{Outcome, Status};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Worker configs, one per instance (repeat for each GPU/instance).
    #[arg(long, short = 'c', required = true)]
    config: Vec<PathBuf>,
    /// Directory the units are written to.
    #[arg(long, default_value = "/etc/systemd/system")]
    dir: PathBuf,
    /// The cocoon-host binary the units run (default: this one).
    #[arg(long)]
    binary: Option<PathBuf>,
}

#[derive(Serialize)]
struct Written {
    instance: u32,
    unit: String,
    path: PathBuf,
    config: PathBuf,
}

pub fn run(args: &Args) -> anyhow::Result<Outcome> {
    let binary = match &args.binary {
        Some(b) => std::path::absolute(b)?,
        None => std::env::current_exe().context("cannot find this binary's path")?,
    };
    let mut units: Vec<(WorkerConfig, PathBuf)> = Vec::new();
    for path in &args.config {
        let abs = std::path::absolute(path)?;
        let cfg = WorkerConfig::load(&abs, Mode::Td)?;
        if let Some((_, other)) = units.iter().find(|(c, _)| c.instance == cfg.instance) {
            anyhow::bail!(
                "{} and {} both use instance {} (fix: give each config its own `instance`)",
                other.display(),
                abs.display(),
                cfg.instance
            );
        }
        units.push((cfg, abs));
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let mut written = Vec::new();
    for (cfg, config) in &units {
        let unit = unit_name(cfg.instance);
        let path = args.dir.join(&unit);
        std::fs::write(&path, render(cfg, config, &binary))
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(Written {
            instance: cfg.instance,
            unit,
            path,
            config: config.clone(),
        });
    }
    let mut text: String = written
        .iter()
        .map(|w| format!("wrote {}\n", w.path.display()))
        .collect();
    text.push_str(&format!(
        "enable with: systemctl daemon-reload && systemctl enable --now {}\n",
        written
            .iter()
            .map(|w| w.unit.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    Outcome::new(Status::Ok, &written, text)
}
