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
    /// Parse and validate a config without starting anything.
    CheckConfig {
        path: PathBuf,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
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
        Command::CheckConfig { path, json } => check_config(&path, json),
        Command::Ledger {
            command: LedgerCommand::Verify { dir, json },
        } => ledger_verify(&dir, json),
    }
}

fn run(config_path: PathBuf) -> anyhow::Result<()> {
    let loaded = config::load(&config_path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async move {
        let agent = boot::start(loaded).await.context("boot")?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", agent.ready_line()).context("stdout")?;
            out.flush().context("stdout")?;
        }
        wait_for_signal().await?;
        tracing::info!("shutting down: stopping the engine group and draining connections");
        agent.shutdown().await;
        Ok(())
    })
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
    Ok(())
}

fn check_config(path: &std::path::Path, json: bool) -> ExitCode {
    match config::load(path) {
        Ok(loaded) => {
            let c = &loaded.config;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "status": "ok",
                        "path": path.display().to_string(),
                        "sha256": hex::encode(loaded.sha256()),
                        "tee": c.tee.kind.as_str(),
                        "engine": c.engine.kind.as_str(),
                        "listen": c.listen.to_string(),
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

fn ledger_verify(dir: &std::path::Path, json: bool) -> ExitCode {
    let _ = (dir, json);
    eprintln!("cocoon-agent: ledger verify is not available in this build yet");
    ExitCode::from(2)
}
