//! `cocoon-measure`: a thin CLI over the `cocoon_measurements` library.
//!
//! Exit codes: 0 ok/accepted, 1 verified and rejected, 2 bad input or usage.
//! With `--json`, exactly one JSON object is printed on stdout, errors included.

mod compute;
mod connect;
mod eventlog;
mod gpu;
mod mrtd;
mod output;
mod policy;
mod quote;
mod simpki;

use clap::{Parser, Subcommand};

use output::Outcome;

#[derive(Parser, Debug)]
#[command(
    name = "cocoon-measure",
    version,
    about = "Recompute, replay, verify and pin the measurements of a COCOON TDX worker",
    long_about = "Recompute the measurements (MRTD, RTMR0-2) a TDX worker's quote must carry from \
the published image artefacts, replay event logs, verify TDX quotes and NVIDIA GPU evidence \
offline, and check them against a pinned policy.\n\nExit codes: 0 ok/accepted, 1 verified and \
rejected, 2 bad input or usage."
)]
struct Cli {
    /// Print exactly one JSON object on stdout (errors too) instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compute MRTD from an OVMF/TDVF firmware image.
    Mrtd(mrtd::Args),
    /// Compute MRTD, RTMR1, RTMR2 (and RTMR0 when ACPI tables are given) with their events.
    Compute(compute::Args),
    /// Replay or diff a TCG2 event log (CCEL or TPM binary_bios_measurements).
    #[command(subcommand)]
    Eventlog(eventlog::Command),
    /// Inspect or verify a TDX quote.
    #[command(subcommand)]
    Quote(quote::Command),
    /// Create and inspect verification policies.
    #[command(subcommand)]
    Policy(policy::Command),
    /// Verify NVIDIA GPU confidential-computing evidence offline.
    #[command(subcommand)]
    Gpu(gpu::Command),
    /// Connect to a worker over RA-TLS, verify its certificate and a fresh attestation.
    ///
    /// Exit 0 accepted, 1 rejected (every failed check is listed), 2 bad input or
    /// connection failure.
    Connect(connect::Args),
    /// Write a simulated TEE's PKI (root CA, collateral, platform keys) from a seed.
    SimPki(simpki::Args),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap exits 2 on usage errors and 0 on --help/--version.
            e.exit();
        }
    };
    let json = cli.json;
    let result = match &cli.command {
        Command::Mrtd(a) => mrtd::run(a),
        Command::Compute(a) => compute::run(a),
        Command::Eventlog(c) => eventlog::run(c),
        Command::Quote(c) => quote::run(c),
        Command::Policy(c) => policy::run(c),
        Command::Gpu(c) => gpu::run(c),
        Command::Connect(a) => connect::run(a),
        Command::SimPki(a) => simpki::run(a),
    };
    let code = match result {
        Ok(outcome) => outcome.print(json),
        Err(err) => output::print_error(&err, json),
    };
    std::process::exit(code);
}

#[allow(dead_code)]
fn _assert_outcome_type(_: Outcome) {}
