//! `cocoon-host`: prepare a host, launch and supervise a COCOON worker VM.
//!
//! Exit codes: 0 ok, 1 a check failed / the supervisor gave up / the agent was not
//! ready in time, 2 bad input or usage. With `--json`, exactly one JSON object is
//! printed on stdout, errors included; logs then go to stderr.

mod common;
mod gpu;
mod output;
mod preflight;
mod run;
mod stop;
mod units;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cocoon-host",
    version,
    about = "Check a TDX + GPU host, launch a COCOON worker VM on it and keep it running",
    long_about = "Check that a host can run a confidential COCOON worker (preflight), move its \
GPUs to vfio-pci (gpu bind), build the QEMU command line of the TDX trust domain from a worker \
config and run it under supervision (run), or boot the same image without TDX and GPU under \
TCG with a software TPM (run --dev).\n\nExit codes: 0 ok, 1 a check failed or the worker could \
not be kept running, 2 bad input or usage."
)]
struct Cli {
    /// Print exactly one JSON object on stdout (errors too) instead of text; logs go to stderr.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check the host: kernel, KVM TDX, QEMU, IOMMU, GPUs, memory, firmware.
    Preflight(preflight::Args),
    /// Move a GPU to vfio-pci (bind) or back to its previous driver (unbind).
    #[command(subcommand)]
    Gpu(gpu::Command),
    /// Launch and supervise the worker VM (`--dry-run` prints the QEMU command line).
    Run(run::Args),
    /// Stop a supervisor started in the background (`run --until-ready`).
    Stop(stop::Args),
    /// Validate a worker config and print it with every default filled in.
    CheckConfig(common::ConfigArgs),
    /// Write one systemd unit per worker instance (`cocoon-host@N.service`).
    InstallUnits(units::Args),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let json = cli.json;
    // A foreground supervisor logs to stdout (journald reads a unit's stdout); every
    // other command keeps stdout for its result and logs to stderr.
    let supervises = matches!(&cli.command, Command::Run(a) if a.supervises());
    common::init_logging(supervises && !json);
    let result = match &cli.command {
        Command::Preflight(a) => preflight::run(a),
        Command::Gpu(c) => gpu::run(c),
        Command::Run(a) => run::run(a, json),
        Command::Stop(a) => stop::run(a),
        Command::CheckConfig(a) => common::check_config(a),
        Command::InstallUnits(a) => units::run(a),
    };
    let code = match result {
        Ok(outcome) => outcome.print(json),
        Err(err) => output::print_error(&err, json),
    };
    std::process::exit(code);
}
