//! Config loading shared by the subcommands, and logging.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context;
use cocoon_host::config::{Mode, WorkerConfig};

use crate::output::{Outcome, Status};

/// Where the worker config comes from.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArgs {
    /// Worker config (TOML; fields in host-launcher/README.md). Optional with --dev.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Dev mode: no TDX, no GPU; TCG with a software TPM. The owner address is optional.
    #[arg(long)]
    pub dev: bool,
    /// Image directory (overrides `image_dir`; dev default without a config: build/dev).
    #[arg(long)]
    pub image_dir: Option<PathBuf>,
    /// State directory (overrides `state_dir`).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

impl ConfigArgs {
    pub fn mode(&self) -> Mode {
        if self.dev {
            Mode::Dev
        } else {
            Mode::Td
        }
    }

    /// Load and validate the config with the command-line overrides applied.
    pub fn load(&self) -> anyhow::Result<WorkerConfig> {
        let mode = self.mode();
        let mut cfg = match (&self.config, mode) {
            (Some(path), _) => WorkerConfig::load(path, mode)?,
            (None, Mode::Dev) => WorkerConfig::dev_default(
                self.image_dir.clone().unwrap_or_else(|| PathBuf::from("build/dev")),
            ),
            (None, Mode::Td) => anyhow::bail!(
                "`--config` is required without --dev (fix: write a worker config, see host-launcher/README.md)"
            ),
        };
        if let Some(d) = &self.image_dir {
            cfg.image_dir = d.clone();
        }
        if let Some(d) = &self.state_dir {
            cfg.state_dir = Some(d.clone());
        }
        // Absolute paths: the supervisor may run detached from this directory.
        cfg.image_dir = std::path::absolute(&cfg.image_dir).context("image_dir")?;
        if let Some(d) = &cfg.state_dir {
            cfg.state_dir = Some(std::path::absolute(d).context("state_dir")?);
        }
        Ok(cfg)
    }
}

pub fn check_config(args: &ConfigArgs) -> anyhow::Result<Outcome> {
    let cfg = args.load()?;
    let text = toml::to_string(&cfg).context("cannot render the config")?;
    Outcome::new(Status::Ok, &cfg, format!("config OK\n{text}"))
}

/// tracing to stdout (a foreground supervisor) or stderr (everything else).
pub fn init_logging(to_stdout: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COCOON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // Colours only on a terminal: journald and log files get plain text.
    if to_stdout {
        let ansi = std::io::stdout().is_terminal();
        builder.with_ansi(ansi).with_writer(std::io::stdout).init();
    } else {
        let ansi = std::io::stderr().is_terminal();
        builder.with_ansi(ansi).with_writer(std::io::stderr).init();
    }
}
