//! TCG2 crypto-agile event logs: parse, replay, and diff against a computed
//! expectation.
//!
//! Two sources share one encoding (TCG PC Client Platform Firmware Profile §10.2):
//! - a TPM's log, `/sys/kernel/security/tpm0/binary_bios_measurements`, indexed by
//!   PCR; PCRs map to TDX registers as the UEFI CC measurement protocol does
//!   ([`Register::from_pcr`]);
//! - a TD's log, the CCEL ACPI table's log area (`/sys/firmware/acpi/tables/data/CCEL`),
//!   indexed by CC measurement register (UEFI 2.10 EFI_CC_MEASUREMENT_PROTOCOL,
//!   [`Register::from_cc_mr_index`]), followed by 0xFF padding.
//!
//! The SHA-384 digest of each event is what a TD extends into its RTMR, so replaying
//! those digests gives the register values a quote must report.
#![deny(clippy::arithmetic_side_effects)]

mod ccel;
mod describe;
mod diff;
mod parse;
mod replay;
mod tdview;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::codec::ParseError;
use crate::digest::{Digest48, Register};
use crate::event::event_type::{self, EV_NO_ACTION};
use crate::event::MeasuredEvent;

pub use ccel::{CcelTable, CCEL_TABLE_LEN};
pub use describe::describe;
pub use diff::{
    CompareStatus, DiffReport, DifferenceKind, EventDifference, EventRef, RegisterDiff,
};
pub use parse::{
    algorithm_info, algorithm_name, AlgorithmSize, LogDigest, SpecIdEvent, Trailing,
    MAX_ALGORITHMS, MAX_EVENT_DATA, TPM_ALG_SHA1, TPM_ALG_SHA256, TPM_ALG_SHA384, TPM_ALG_SHA512,
};
pub use replay::{NotReplayed, PcrValue, RegisterValue, Replay, ReplayedEvent};
pub use tdview::TdView;

/// Which index space a log's events use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// TPM PCR indices (binary_bios_measurements).
    Tpm,
    /// CC measurement-register indices (CCEL log area).
    Ccel,
}

impl LogFormat {
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Tpm => "tpm",
            LogFormat::Ccel => "ccel",
        }
    }

    /// The TDX register an index of this format names.
    pub fn register(self, index: u32) -> Option<Register> {
        match self {
            LogFormat::Tpm => Register::from_pcr(index),
            LogFormat::Ccel => Register::from_cc_mr_index(index),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The format to read a log as: detected, or given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FormatChoice {
    #[default]
    Auto,
    Tpm,
    Ccel,
}

impl FromStr for FormatChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(FormatChoice::Auto),
            "tpm" => Ok(FormatChoice::Tpm),
            "ccel" => Ok(FormatChoice::Ccel),
            _ => Err(format!(
                "unknown log format {s:?} (expected auto, tpm or ccel)"
            )),
        }
    }
}

/// Why a log cannot be read or replayed.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// The bytes are not a well-formed TCG2 log (field and absolute offset named).
    #[error("event log: {0}")]
    Parse(#[from] ParseError),
    /// The CCEL ACPI table was given where its log area belongs.
    #[error(
        "the input is the CCEL ACPI table (signature \"CCEL\"), not the event log: give the \
         log area (/sys/firmware/acpi/tables/data/CCEL) as the log and this table separately"
    )]
    CcelTableGivenAsLog,
    /// The CCEL table is malformed (field and offset named).
    #[error("CCEL ACPI table: {0}")]
    CcelTable(ParseError),
    /// A CC log names a measurement register that does not exist.
    #[error(
        "event {index} at byte offset {offset}: CC measurement register index {mr_index} does \
         not exist (0 = MRTD, 1-4 = RTMR0-3); if this is a TPM log, read it with the tpm format"
    )]
    InvalidMrIndex {
        index: usize,
        offset: usize,
        mr_index: u32,
    },
    /// The Spec ID event lists no SHA-384 bank, so no RTMR can be replayed.
    #[error(
        "the log has no SHA-384 digests (its Spec ID event lists {algorithms:?}); RTMRs are \
         SHA-384 registers"
    )]
    NoSha384Bank { algorithms: Vec<String> },
    /// An extended event lacks the SHA-384 digest.
    #[error("event {index} at byte offset {offset} is extended but carries no SHA-384 digest")]
    MissingSha384 { index: usize, offset: usize },
    /// The expectation's register values disagree with its own events.
    #[error("the expected measurements are inconsistent: {0}")]
    InconsistentExpectation(String),
}

/// One event of a log, with the register it extends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEvent {
    /// Position in the log; 0 is the Spec ID header event.
    pub log_index: usize,
    /// Absolute byte offset of the event in the input.
    pub offset: usize,
    /// PCRIndex (TPM) or MrIndex (CCEL) as written.
    pub index: u32,
    /// The TDX register that index maps to, if any.
    pub register: Option<Register>,
    pub event_type: u32,
    pub event_type_name: String,
    pub digests: Vec<LogDigest>,
    /// The SHA-384 digest, when the event carries one.
    pub sha384: Option<Digest48>,
    pub data_length: usize,
    #[serde(skip)]
    pub data: Vec<u8>,
    pub description: String,
}

impl LogEvent {
    /// Whether the event's digest was extended into its PCR/register: every event but
    /// EV_NO_ACTION ones (§10.4.1: "not extended"), which include the header.
    pub fn is_extended(&self) -> bool {
        self.event_type != EV_NO_ACTION
    }

    fn new(raw: parse::RawEvent, log_index: usize, format: LogFormat) -> Self {
        let sha384 = raw
            .digests
            .iter()
            .find(|d| d.algorithm_id == TPM_ALG_SHA384)
            .and_then(|d| <[u8; 48]>::try_from(d.digest.as_slice()).ok())
            .map(Digest48);
        Self {
            log_index,
            offset: raw.offset,
            index: raw.index,
            register: format.register(raw.index),
            event_type: raw.event_type,
            event_type_name: event_type::display(raw.event_type),
            description: describe(raw.event_type, &raw.data),
            data_length: raw.data.len(),
            data: raw.data,
            sha384,
            digests: raw.digests,
        }
    }

    /// The event as extended into a TDX register, when it is one.
    pub fn measured(&self, format: LogFormat) -> Option<MeasuredEvent> {
        if !self.is_extended() {
            return None;
        }
        let register = self.register?;
        let digest = self.sha384?;
        let pcr = (format == LogFormat::Tpm).then_some(self.index);
        Some(MeasuredEvent::new(
            register,
            pcr,
            self.event_type,
            digest,
            self.description.clone(),
            String::new(),
        ))
    }
}

/// A parsed log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventLog {
    pub format: LogFormat,
    /// Why this format: "given" or the evidence auto-detection used.
    pub format_reason: String,
    pub spec_id: SpecIdEvent,
    /// Every event, the header first.
    pub events: Vec<LogEvent>,
    /// Bytes from the start of the log to the end of its last event.
    pub log_length: usize,
    pub trailing: Trailing,
    /// The CCEL ACPI table the log area was located by, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ccel_table: Option<CcelTable>,
    /// Things worth knowing that are not errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl EventLog {
    /// Parse a TPM or CCEL log; `choice` forces the index space or lets the log's
    /// contents decide.
    pub fn parse(bytes: &[u8], choice: FormatChoice) -> Result<Self, EventLogError> {
        if CcelTable::looks_like(bytes) {
            return Err(EventLogError::CcelTableGivenAsLog);
        }
        let raw = parse::parse_raw(bytes)?;
        let (format, format_reason) = match choice {
            FormatChoice::Tpm => (LogFormat::Tpm, "given".to_string()),
            FormatChoice::Ccel => (LogFormat::Ccel, "given".to_string()),
            FormatChoice::Auto => detect(&raw),
        };
        Self::build(raw, format, format_reason)
    }

    /// Parse a CCEL log area located by its ACPI table. The area is LAML bytes long;
    /// the log is read from its start and the rest must be padding.
    pub fn parse_ccel(table: &[u8], log_area: &[u8]) -> Result<Self, EventLogError> {
        let table = CcelTable::parse(table).map_err(EventLogError::CcelTable)?;
        let mut notes = Vec::new();
        let laml = usize::try_from(table.laml).unwrap_or(usize::MAX);
        let area = if log_area.len() > laml {
            notes.push(format!(
                "the log input has {} bytes; only the table's LAML ({laml}) were read",
                log_area.len()
            ));
            log_area.get(..laml).unwrap_or(log_area)
        } else {
            if log_area.len() < laml {
                notes.push(format!(
                    "the log input has {} bytes, fewer than the table's LAML ({laml})",
                    log_area.len()
                ));
            }
            log_area
        };
        if CcelTable::looks_like(area) {
            return Err(EventLogError::CcelTableGivenAsLog);
        }
        let raw = parse::parse_raw(area)?;
        let mut log = Self::build(raw, LogFormat::Ccel, "CCEL ACPI table given".to_string())?;
        log.ccel_table = Some(table);
        log.notes.extend(notes);
        Ok(log)
    }

    fn build(
        raw: parse::RawLog,
        format: LogFormat,
        format_reason: String,
    ) -> Result<Self, EventLogError> {
        let mut events = Vec::with_capacity(raw.events.len().saturating_add(1));
        events.push(LogEvent::new(raw.header, 0, format));
        for (i, e) in raw.events.into_iter().enumerate() {
            events.push(LogEvent::new(e, i.saturating_add(1), format));
        }
        if format == LogFormat::Ccel {
            if let Some(e) = events
                .iter()
                .find(|e| e.is_extended() && e.register.is_none())
            {
                return Err(EventLogError::InvalidMrIndex {
                    index: e.log_index,
                    offset: e.offset,
                    mr_index: e.index,
                });
            }
        }
        let mut notes = Vec::new();
        if let Trailing::OnesPadding {
            bytes,
            all_ones: false,
        } = raw.trailing
        {
            notes.push(format!(
                "the {bytes} bytes after the last event start like 0xFF padding but are not \
                 all 0xFF; they were not read as events"
            ));
        }
        Ok(Self {
            format,
            format_reason,
            spec_id: raw.spec_id,
            events,
            log_length: raw.length,
            trailing: raw.trailing,
            ccel_table: None,
            notes,
        })
    }

    /// Events extended into `register`, in log order.
    pub fn events_of(&self, register: Register) -> impl Iterator<Item = &LogEvent> {
        self.events
            .iter()
            .filter(move |e| e.is_extended() && e.register == Some(register))
    }

    /// Every extended event that maps to a TDX register, as [`MeasuredEvent`]s.
    pub fn measured_events(&self) -> Vec<MeasuredEvent> {
        self.events
            .iter()
            .filter_map(|e| e.measured(self.format))
            .collect()
    }

    /// Replay the SHA-384 digests into the registers (and, for a TPM log, the PCRs).
    pub fn replay(&self) -> Result<Replay, EventLogError> {
        replay::replay(self)
    }

    /// RTMR0-2 as a TD would hold them after this boot: a TPM log's five RTMR1
    /// separators become one (see [`TdView`]); a CCEL log is replayed as is.
    pub fn td_view(&self) -> Result<TdView, EventLogError> {
        tdview::td_view(self)
    }

    /// Compare with an expectation, register by register.
    pub fn diff(
        &self,
        expected: &crate::expected::ExpectedMeasurements,
    ) -> Result<DiffReport, EventLogError> {
        diff::diff(self, expected)
    }
}

/// Tell a TPM log from a CCEL log by what only one of them can contain. The
/// encodings are identical, so the evidence is the indices and what follows the log.
fn detect(raw: &parse::RawLog) -> (LogFormat, String) {
    let extended = || raw.events.iter().filter(|e| e.event_type != EV_NO_ACTION);
    if let Some(e) = extended().find(|e| e.index > 4) {
        return (
            LogFormat::Tpm,
            format!(
                "event at byte offset {} uses index {}, which only a PCR can be (CC indices \
                 are 0-4)",
                e.offset, e.index
            ),
        );
    }
    if let Trailing::OnesPadding { .. } = raw.trailing {
        return (
            LogFormat::Ccel,
            "0xFF padding follows the log, as in a CCEL log area".into(),
        );
    }
    // PCR 0 holds the firmware's own measurements in a TPM log; a TD's firmware
    // never extends MRTD (index 0 of a CC log): edk2's TdTcg2Dxe refuses MrIndex 0
    // ("MRTD cannot be extended in TDVF"), the TDX module measures it.
    if let Some(e) = extended().find(|e| e.index == 0) {
        return (
            LogFormat::Tpm,
            format!(
                "{} event at byte offset {} extends index 0, which a CC log cannot (MRTD is \
                 not extendable)",
                event_type::display(e.event_type),
                e.offset
            ),
        );
    }
    (
        LogFormat::Ccel,
        "all indices are 1-4 and no PCR 5-23 appears (a TPM log has PCR 5 and 7 events)".into(),
    )
}
