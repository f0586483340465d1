//! `cocoon-measure eventlog replay|diff`: read a TPM or CCEL event log, replay it
//! into RTMR values, or diff it against the expected measurements of an image.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use cocoon_measurements::boot::{self, ComputeInputs, LogFlavor};
use cocoon_measurements::event::event_type::EV_SEPARATOR;
use cocoon_measurements::eventlog::{
    CompareStatus, DiffReport, EventLog, FormatChoice, LogFormat, Replay, Trailing,
};
use cocoon_measurements::expected::ExpectedMeasurements;
use cocoon_measurements::Register;
use serde::Serialize;

use crate::output::{Outcome, Status};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Replay a log: the RTMR values its SHA-384 digests produce, and its events.
    Replay(ReplayArgs),
    /// Compare a log with expected measurements; exit 1 and name the first differing
    /// event of each register when they differ.
    Diff(DiffArgs),
}

#[derive(clap::Args, Debug)]
pub struct LogArgs {
    /// The log: /sys/kernel/security/tpm0/binary_bios_measurements (TPM) or
    /// /sys/firmware/acpi/tables/data/CCEL (TD).
    pub file: PathBuf,
    /// Index space of the log: tpm (PCRs), ccel (CC measurement registers), or auto.
    #[arg(long, default_value = "auto", value_parser = parse_format)]
    pub format: FormatChoice,
    /// The CCEL ACPI table (/sys/firmware/acpi/tables/CCEL); FILE is then its log area
    /// and the format is ccel.
    #[arg(long, value_name = "TABLE", conflicts_with = "format")]
    pub ccel_table: Option<PathBuf>,
}

fn parse_format(s: &str) -> Result<FormatChoice, String> {
    s.parse()
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// Expected measurements (the JSON `cocoon-measure compute --json` prints).
    #[arg(long, value_name = "JSON", required_unless_present = "firmware", conflicts_with_all = ["firmware", "uki"])]
    pub expected: Option<PathBuf>,
    /// Compute the expectation from this OVMF/TDVF firmware (with --uki).
    #[arg(long, requires = "uki")]
    pub firmware: Option<PathBuf>,
    /// Compute the expectation from this UKI (with --firmware).
    #[arg(long, requires = "firmware")]
    pub uki: Option<PathBuf>,
}

pub fn run(cmd: &Command) -> anyhow::Result<Outcome> {
    match cmd {
        Command::Replay(a) => replay(a),
        Command::Diff(a) => diff(a),
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))
}

fn load(args: &LogArgs) -> anyhow::Result<EventLog> {
    let bytes = read(&args.file, "event log")?;
    let log = match &args.ccel_table {
        Some(t) => EventLog::parse_ccel(&read(t, "CCEL table")?, &bytes),
        None => EventLog::parse(&bytes, args.format),
    };
    log.with_context(|| format!("parsing {}", args.file.display()))
}

#[derive(Serialize)]
struct ReplayReport<'a> {
    file: String,
    format: &'a str,
    format_reason: &'a str,
    algorithms: Vec<String>,
    event_count: usize,
    log_length: usize,
    trailing: Trailing,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    notes: &'a [String],
    #[serde(flatten)]
    replay: &'a Replay,
}

fn replay(args: &ReplayArgs) -> anyhow::Result<Outcome> {
    let log = load(&args.log)?;
    let replay = log
        .replay()
        .with_context(|| format!("replaying {}", args.log.file.display()))?;
    let report = ReplayReport {
        file: args.log.file.display().to_string(),
        format: log.format.name(),
        format_reason: &log.format_reason,
        algorithms: log.spec_id.algorithm_names(),
        event_count: log.events.len(),
        log_length: log.log_length,
        trailing: log.trailing,
        notes: &log.notes,
        replay: &replay,
    };
    let text = replay_text(&log, &replay);
    Outcome::new(Status::Ok, &report, text)
}

fn short(d: &cocoon_measurements::Digest48) -> String {
    d.to_hex().chars().take(16).collect()
}

fn header_text(out: &mut String, log: &EventLog) {
    let _ = writeln!(out, "format: {} ({})", log.format, log.format_reason);
    let _ = writeln!(
        out,
        "algorithms: {}",
        log.spec_id.algorithm_names().join(", ")
    );
    let trailing = match log.trailing {
        Trailing::None => "none".to_string(),
        Trailing::OnesPadding { bytes, .. } => format!("{bytes} bytes of 0xFF padding"),
        Trailing::ZeroPadding { bytes } => format!("{bytes} bytes of zero padding"),
    };
    let _ = writeln!(
        out,
        "events: {} in {} bytes; after the log: {trailing}",
        log.events.len(),
        log.log_length
    );
    for n in &log.notes {
        let _ = writeln!(out, "note: {n}");
    }
}

fn replay_text(log: &EventLog, replay: &Replay) -> String {
    let mut out = String::new();
    header_text(&mut out, log);
    let _ = writeln!(out, "\nregisters:");
    for r in &replay.registers {
        match (&r.value, &r.note) {
            (Some(v), _) => {
                let _ = writeln!(out, "  {:<6} {v}  ({} events)", r.register.name(), r.events);
            }
            (None, note) => {
                let _ = writeln!(
                    out,
                    "  {:<6} not replayed: {}",
                    r.register.name(),
                    note.as_deref().unwrap_or("")
                );
            }
        }
    }
    if !replay.pcrs.is_empty() {
        let _ = writeln!(out, "\nPCRs (SHA-384 bank):");
        for p in &replay.pcrs {
            let _ = writeln!(out, "  {:>2} {}  ({} events)", p.pcr, p.sha384, p.events);
        }
    }
    let _ = writeln!(
        out,
        "\nevents (log index, index, register, type, sha384, data):"
    );
    for e in &log.events {
        let reg = e
            .register
            .filter(|_| e.is_extended())
            .map_or("-".to_string(), |r| r.to_string());
        let digest = e.sha384.map_or("-".to_string(), |d| short(&d));
        let _ = writeln!(
            out,
            "  {:>3} {:>2} {:<6} {:<34} {digest}… {}",
            e.log_index, e.index, reg, e.event_type_name, e.description
        );
    }
    out
}

fn diff(args: &DiffArgs) -> anyhow::Result<Outcome> {
    let mut log = load(&args.log)?;
    let (expected, source) = match (&args.expected, &args.firmware, &args.uki) {
        (Some(path), _, _) => {
            let bytes = read(path, "expected measurements")?;
            let e: ExpectedMeasurements = serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing expected measurements {}", path.display()))?;
            (e, path.display().to_string())
        }
        (None, Some(firmware), Some(uki)) => {
            let inputs = ComputeInputs {
                firmware: firmware.clone(),
                uki: uki.clone(),
                acpi: Vec::new(),
                page_order: Default::default(),
                // Predict the log this is: a TPM log (swtpm test boot) carries one
                // separator per PCR 2-6 where a TD's CCEL log has one for RTMR1.
                flavor: match log.format {
                    LogFormat::Tpm => LogFlavor::Tpm,
                    LogFormat::Ccel => LogFlavor::Tdx,
                },
            };
            let e = boot::compute(&inputs).context("computing the expected measurements")?;
            (
                e,
                format!("computed from {} and {}", firmware.display(), uki.display()),
            )
        }
        _ => anyhow::bail!("give --expected JSON, or --firmware and --uki"),
    };
    // A TPM log (swtpm test boot) compared with a TD-flavour expectation (what
    // measurements.json publishes): edk2's Tcg2Dxe measures one separator into each of
    // PCR 2-6, TdTcg2Dxe one into RTMR1, so keep the log's first RTMR1 separator and drop
    // the others (the log's TD view, CONTRACT 4). Every other RTMR1/RTMR2 event is still
    // compared; the dropped ones are listed.
    let td_view_dropped = if log.format == LogFormat::Tpm && rtmr1_separators(&expected) == 1 {
        drop_extra_rtmr1_separators(&mut log)
    } else {
        Vec::new()
    };
    let report = log
        .diff(&expected)
        .with_context(|| format!("comparing {} with {source}", args.log.file.display()))?;
    let mut text = diff_text(&log, &report, &source);
    if !td_view_dropped.is_empty() {
        let _ = writeln!(
            text,
            "td view: TPM log against a TD-flavour expectation; dropped the TPM-only RTMR1 \
             separators at log events {td_view_dropped:?} (PCR 3-6)"
        );
    }
    #[derive(Serialize)]
    struct Out<'a> {
        file: String,
        expected: &'a str,
        /// Log indices of the TPM-only RTMR1 separators left out (TD view), if any.
        #[serde(skip_serializing_if = "<[usize]>::is_empty")]
        td_view_dropped: &'a [usize],
        #[serde(flatten)]
        report: &'a DiffReport,
    }
    let out = Out {
        file: args.log.file.display().to_string(),
        expected: &source,
        td_view_dropped: &td_view_dropped,
        report: &report,
    };
    Outcome::new(Status::from_accepted(report.is_match()), &out, text)
}

/// EV_SEPARATOR events the expectation has in RTMR1: 1 for the TD flavour, 5 for TPM.
fn rtmr1_separators(expected: &ExpectedMeasurements) -> usize {
    expected
        .events_of(Register::Rtmr1)
        .filter(|e| e.event_type == EV_SEPARATOR)
        .count()
}

/// Remove every RTMR1 separator of the log after the first; returns their log indices.
fn drop_extra_rtmr1_separators(log: &mut EventLog) -> Vec<usize> {
    let mut seen = false;
    let mut dropped = Vec::new();
    log.events.retain(|e| {
        if e.register != Some(Register::Rtmr1) || e.event_type != EV_SEPARATOR {
            return true;
        }
        if seen {
            dropped.push(e.log_index);
            return false;
        }
        seen = true;
        true
    });
    dropped
}

fn diff_text(log: &EventLog, report: &DiffReport, source: &str) -> String {
    let mut out = String::new();
    header_text(&mut out, log);
    let _ = writeln!(out, "expected: {source}\n");
    for r in &report.registers {
        match r.status {
            CompareStatus::NotCompared => {
                let _ = writeln!(
                    out,
                    "{}: not compared: {}",
                    r.register,
                    r.reason.as_deref().unwrap_or("")
                );
            }
            CompareStatus::Match => {
                let _ = writeln!(
                    out,
                    "{}: match ({} events) {}",
                    r.register,
                    r.log_events,
                    r.log_value.map(|v| v.to_hex()).unwrap_or_default()
                );
            }
            CompareStatus::Mismatch => {
                let _ = writeln!(
                    out,
                    "{}: MISMATCH (expected {} events, log has {})",
                    r.register, r.expected_events, r.log_events
                );
                if let Some(v) = r.expected_value {
                    let _ = writeln!(out, "  expected value {v}");
                }
                if let Some(v) = r.log_value {
                    let _ = writeln!(out, "  log value      {v}");
                }
            }
        }
    }
    if !report.reasons.is_empty() {
        let _ = writeln!(out, "\ndifferences:");
        for reason in &report.reasons {
            let _ = writeln!(out, "  - {reason}");
        }
    }
    let _ = writeln!(out, "\nverdict: {}", report.verdict);
    out
}
