//! `cocoon-agent`: the COCOON worker's guest agent.
//!
//! Exit codes: 0 ok, 1 verified and rejected (`ledger verify`), 2 bad input or a
//! failed boot (the message names the field or the step).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use cocoon_agent::{boot, config};

#[derive(Parser)]
#[command(
    name = "cocoon-agent",
    version,
    about = "COCOON worker guest agent: attest, launch vLLM, serve over RA-TLS, account tokens"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot and serve: measure config/model/engine into RTMR3, make keys and the RA-TLS
    /// certificate, start the engine, serve until SIGTERM.
    Run {
        /// The agent's TOML config (the image uses /etc/cocoon/agent.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Parse and validate a config (host settings merged in) without starting anything.
    CheckConfig {
        path: PathBuf,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
        /// Print the text that would be measured (RTMR3 `config` event) and served as
        /// `config_toml`, instead of the summary.
        #[arg(long, conflicts_with = "json")]
        measured: bool,
    },
    /// Receipt ledger tools.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Check the ledger's hash chain and every receipt signature.
    Verify {
        /// The ledger directory (the agent's data_dir).
        dir: PathBuf,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => match run(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cocoon-agent: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::CheckConfig {
            path,
            json,
            measured,
        } => check_config(&path, json, measured),
        Command::Ledger {
            command: LedgerCommand::Verify { dir, json },
        } => ledger_verify(&dir, json),
    }
}

fn run(config_path: PathBuf) -> anyhow::Result<()> {
    let loaded = config::load(&config_path)?;
    match (&loaded.host, &loaded.config.host_settings) {
        (Some(config::HostOutcome::Applied { instance }), Some(hs)) => tracing::info!(
            path = %hs.path.display(),
            instance = ?instance,
            owner = %loaded.config.owner_address,
            nanoton_per_token = loaded.config.pricing.nanoton_per_token,
            "host settings applied"
        ),
        (Some(config::HostOutcome::Missing), Some(hs)) => tracing::warn!(
            path = %hs.path.display(),
            "no host settings file: the image config's owner_address and pricing stand"
        ),
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async move {
        // Handlers first: a SIGTERM right after the ready line must still be a clean
        // shutdown, not the default action.
        let signals = Signals::install()?;
        let agent = boot::start(loaded).await.context("boot")?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", agent.ready_line()).context("stdout")?;
            out.flush().context("stdout")?;
        }
        signals.wait().await;
        tracing::info!("shutting down: stopping the engine group and draining connections");
        agent.shutdown().await;
        Ok(())
    })
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("SIGINT handler")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM"),
            _ = self.int.recv() => tracing::info!("SIGINT"),
        }
    }
}

fn check_config(path: &std::path::Path, json: bool, measured: bool) -> ExitCode {
    match config::load(path) {
        Ok(loaded) => {
            let c = &loaded.config;
            if measured {
                print!("{}", loaded.text);
            } else if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "status": "ok",
                        "path": path.display().to_string(),
                        "sha256": hex::encode(loaded.sha256()),
                        "tee": c.tee.kind.as_str(),
                        "engine": c.engine.kind.as_str(),
                        "listen": c.listen.to_string(),
                        "owner_address": c.owner_address,
                        "pricing": c.pricing,
                        "host_settings": match &loaded.host {
                            None => "not configured",
                            Some(config::HostOutcome::Applied { .. }) => "applied",
                            Some(config::HostOutcome::Missing) => "missing",
                        },
                    })
                );
            } else {
                println!(
                    "ok: {} (tee={}, engine={}, listen={}, sha256={})",
                    path.display(),
                    c.tee.kind.as_str(),
                    c.engine.kind.as_str(),
                    c.listen,
                    hex::encode(loaded.sha256())
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "status": "error",
                        "path": path.display().to_string(),
                        "field": e.field(),
                        "message": e.to_string(),
                    })
                );
            }
            eprintln!("cocoon-agent: {e}");
            ExitCode::from(2)
        }
    }
}

/// 0: the chain and every signature check out; 1: problems (each named with its line);
/// 2: the ledger cannot be read.
fn ledger_verify(dir: &std::path::Path, json: bool) -> ExitCode {
    match cocoon_agent::ledger::verify(dir) {
        Ok(report) => {
            if json {
                match serde_json::to_string(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("cocoon-agent: report to JSON: {e}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                println!(
                    "{}: {} records, {} epochs, {} prompt + {} completion tokens, head {}",
                    report.path,
                    report.records,
                    report.epochs.len(),
                    report.totals.prompt_tokens,
                    report.totals.completion_tokens,
                    report.head_hash
                );
                for w in &report.warnings {
                    println!("warning: {w}");
                }
                for p in &report.problems {
                    println!("problem: {p}");
                }
                println!("{}", if report.ok { "ok" } else { "REJECTED" });
            }
            if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "path": dir.display().to_string(), "error": e.to_string()})
                );
            }
            eprintln!("cocoon-agent: {e}");
            ExitCode::from(2)
        }
    }
}
