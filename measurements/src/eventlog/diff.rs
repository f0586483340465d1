//! Diff a log against an expectation: walk each register's log events beside the
//! expected events and name the first that differs. Only digests decide: they are
//! what the register folds in; types and descriptions are shown to identify events.
#![deny(clippy::arithmetic_side_effects)]

use serde::Serialize;

use crate::digest::{Digest48, Register};
use crate::event::{replay_register, MeasuredEvent};
use crate::expected::ExpectedMeasurements;

use super::{EventLog, EventLogError, LogFormat, ReplayedEvent};

/// The verdict for one register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareStatus {
    Match,
    Mismatch,
    NotCompared,
}

/// How the first difference shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// Both have an event at this position, with different digests.
    Digest,
    /// The log has an event the expectation does not (after all expected ones).
    Extra,
    /// The expectation has an event the log does not (after all logged ones).
    Missing,
}

/// One side of a compared event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventRef {
    /// Position among the events of its register.
    pub register_index: usize,
    /// Position in the log, for log events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcr: Option<u32>,
    pub event_type: u32,
    pub event_type_name: String,
    pub description: String,
    pub digest: Digest48,
}

impl EventRef {
    fn expected(register_index: usize, e: &MeasuredEvent) -> Self {
        Self {
            register_index,
            log_index: None,
            pcr: e.pcr,
            event_type: e.event_type,
            event_type_name: e.event_type_name.clone(),
            description: e.description.clone(),
            digest: e.digest,
        }
    }

    fn found(e: &ReplayedEvent) -> Self {
        Self {
            register_index: e.register_index,
            log_index: Some(e.log_index),
            pcr: e.event.pcr,
            event_type: e.event.event_type,
            event_type_name: e.event.event_type_name.clone(),
            description: e.event.description.clone(),
            digest: e.event.digest,
        }
    }
}

/// The first event at which a register's log and expectation part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventDifference {
    pub register: Register,
    pub kind: DifferenceKind,
    /// Position among the register's events.
    pub register_index: usize,
    /// Position in the log of the log's event there, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<EventRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<EventRef>,
}

impl EventDifference {
    /// One line naming the event, for text output and reasons.
    pub fn summary(&self) -> String {
        let at = match self.log_index {
            Some(l) => format!("event {} (log event {l})", self.register_index),
            None => format!("event {} (past the end of the log)", self.register_index),
        };
        let show = |e: &EventRef| format!("{} {}", e.event_type_name, e.description);
        match (&self.expected, &self.found) {
            (Some(x), Some(f)) => format!(
                "{}: {at}: expected {} with digest {}, found {} with digest {}",
                self.register,
                show(x),
                x.digest,
                show(f),
                f.digest
            ),
            (None, Some(f)) => format!(
                "{}: {at}: extra event {} with digest {} (the expectation ends before it)",
                self.register,
                show(f),
                f.digest
            ),
            (Some(x), None) => format!(
                "{}: {at}: missing event {} with digest {}",
                self.register,
                show(x),
                x.digest
            ),
            (None, None) => format!("{}: {at}", self.register),
        }
    }
}

/// One register's comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterDiff {
    pub register: Register,
    pub status: CompareStatus,
    /// Why the register was not compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_value: Option<Digest48>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_value: Option<Digest48>,
    pub expected_events: usize,
    pub log_events: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_difference: Option<EventDifference>,
    /// How many aligned positions differ in digest (the first is `first_difference`).
    #[serde(skip_serializing_if = "is_zero")]
    pub differing_events: usize,
    /// Log events past the expectation's last event.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_events: Vec<EventRef>,
    /// Expected events past the log's last event for this register.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_events: Vec<EventRef>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The outcome of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffReport {
    /// "match" when every compared register matches, else "mismatch".
    pub verdict: String,
    pub format: LogFormat,
    /// Every TDX register, compared or with the reason it was not.
    pub registers: Vec<RegisterDiff>,
    /// The first difference of each mismatching register.
    pub first_differences: Vec<EventDifference>,
    /// Every failed check, one line each.
    pub reasons: Vec<String>,
}

impl DiffReport {
    pub fn is_match(&self) -> bool {
        self.registers
            .iter()
            .all(|r| r.status != CompareStatus::Mismatch)
    }
}

pub(super) fn diff(
    log: &EventLog,
    expected: &ExpectedMeasurements,
) -> Result<DiffReport, EventLogError> {
    check_consistent(expected)?;
    let replay = log.replay()?;
    let mut registers = Vec::new();
    let mut reasons = Vec::new();
    let mut firsts = Vec::new();

    for register in Register::ALL {
        let want: Vec<&MeasuredEvent> = expected.events_of(register).collect();
        let got: Vec<&ReplayedEvent> = replay.events_of(register).collect();
        let log_value = replay.value(register);
        if let Some(reason) = not_compared(register, log, expected, want.len(), got.len()) {
            registers.push(RegisterDiff {
                register,
                status: CompareStatus::NotCompared,
                reason: Some(reason),
                expected_value: expected_value(expected, register),
                log_value,
                expected_events: want.len(),
                log_events: got.len(),
                first_difference: None,
                differing_events: 0,
                extra_events: Vec::new(),
                missing_events: Vec::new(),
            });
            continue;
        }
        let d = compare(register, &want, &got);
        let mut status = if d.first.is_none() {
            CompareStatus::Match
        } else {
            CompareStatus::Mismatch
        };
        let want_value = expected_value(expected, register);
        // Equal event lists replay to equal values, and the expectation was checked
        // consistent; this guards the invariant rather than trusting it.
        if status == CompareStatus::Match && want_value.is_some() && want_value != log_value {
            status = CompareStatus::Mismatch;
            reasons.push(format!(
                "{register}: the events agree but the values differ (expected {}, log {})",
                fmt_opt(want_value),
                fmt_opt(log_value)
            ));
        }
        if let Some(first) = &d.first {
            reasons.push(first.summary());
            if d.differing > 1 {
                reasons.push(format!(
                    "{register}: {} of the {} aligned events differ",
                    d.differing,
                    want.len().min(got.len())
                ));
            }
            if !d.extra.is_empty() && first.kind != DifferenceKind::Extra {
                reasons.push(format!(
                    "{register}: the log has {} more event(s) than expected",
                    d.extra.len()
                ));
            }
            if !d.missing.is_empty() && first.kind != DifferenceKind::Missing {
                reasons.push(format!(
                    "{register}: the log has {} fewer event(s) than expected",
                    d.missing.len()
                ));
            }
            firsts.push(first.clone());
        }
        registers.push(RegisterDiff {
            register,
            status,
            reason: None,
            expected_value: want_value,
            log_value,
            expected_events: want.len(),
            log_events: got.len(),
            first_difference: d.first,
            differing_events: d.differing,
            extra_events: d.extra,
            missing_events: d.missing,
        });
    }
    let mut report = DiffReport {
        verdict: String::new(),
        format: log.format,
        registers,
        first_differences: firsts,
        reasons,
    };
    report.verdict = if report.is_match() {
        "match"
    } else {
        "mismatch"
    }
    .to_string();
    Ok(report)
}

fn fmt_opt(d: Option<Digest48>) -> String {
    d.map_or_else(|| "none".into(), |d| d.to_hex())
}

fn expected_value(expected: &ExpectedMeasurements, register: Register) -> Option<Digest48> {
    match register {
        Register::Mrtd => Some(expected.mrtd),
        Register::Rtmr0 => expected.rtmr0,
        Register::Rtmr1 => Some(expected.rtmr1),
        Register::Rtmr2 => Some(expected.rtmr2),
        Register::Rtmr3 => None,
    }
}

/// Why a register is left out of the comparison, or `None` to compare it. RTMR1 and
/// RTMR2 are always compared: the expectation always predicts them.
fn not_compared(
    register: Register,
    log: &EventLog,
    expected: &ExpectedMeasurements,
    want: usize,
    got: usize,
) -> Option<String> {
    match register {
        Register::Rtmr1 | Register::Rtmr2 => None,
        _ if want > 0 => None,
        Register::Mrtd => Some(match log.format {
            LogFormat::Tpm => format!(
                "MRTD is not an extend chain: a TPM log's PCR 0 ({got} firmware event(s)) maps \
                 to it, but the TDX module measures the firmware itself; compare the quote's \
                 MRTD with the expectation's"
            ),
            LogFormat::Ccel => "MRTD is not extended through the log; compare the quote's MRTD \
                 with the expectation's"
                .to_string(),
        }),
        Register::Rtmr0 => Some(format!(
            "the expectation does not model RTMR0 ({}); the log has {got} event(s) for it",
            expected
                .rtmr0_note
                .as_deref()
                .unwrap_or("no RTMR0 events in it")
        )),
        Register::Rtmr3 => Some(format!(
            "RTMR3 is extended at run time, not at boot; the log has {got} event(s) for it"
        )),
    }
}

/// Each register's value must equal the replay of its events, or a diff of events
/// would not explain a diff of values.
fn check_consistent(expected: &ExpectedMeasurements) -> Result<(), EventLogError> {
    let mut checks = vec![
        (Register::Rtmr1, Some(expected.rtmr1)),
        (Register::Rtmr2, Some(expected.rtmr2)),
    ];
    if expected.events_of(Register::Rtmr0).next().is_some() {
        checks.push((Register::Rtmr0, expected.rtmr0));
    }
    for (register, value) in checks {
        let replayed = replay_register(&expected.events, register);
        if let Some(v) = value {
            if v != replayed {
                return Err(EventLogError::InconsistentExpectation(format!(
                    "{register} is {v} but its events replay to {replayed}"
                )));
            }
        }
    }
    Ok(())
}

struct Compared {
    first: Option<EventDifference>,
    differing: usize,
    extra: Vec<EventRef>,
    missing: Vec<EventRef>,
}

fn compare(register: Register, want: &[&MeasuredEvent], got: &[&ReplayedEvent]) -> Compared {
    let mut first = None;
    let mut differing = 0usize;
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        if w.digest != g.event.digest {
            differing = differing.saturating_add(1);
            if first.is_none() {
                first = Some(EventDifference {
                    register,
                    kind: DifferenceKind::Digest,
                    register_index: i,
                    log_index: Some(g.log_index),
                    expected: Some(EventRef::expected(i, w)),
                    found: Some(EventRef::found(g)),
                });
            }
        }
    }
    let extra: Vec<EventRef> = got
        .iter()
        .skip(want.len())
        .map(|g| EventRef::found(g))
        .collect();
    let missing: Vec<EventRef> = want
        .iter()
        .enumerate()
        .skip(got.len())
        .map(|(i, w)| EventRef::expected(i, w))
        .collect();
    if first.is_none() {
        if let Some(e) = extra.first() {
            first = Some(EventDifference {
                register,
                kind: DifferenceKind::Extra,
                register_index: e.register_index,
                log_index: e.log_index,
                expected: None,
                found: Some(e.clone()),
            });
        } else if let Some(m) = missing.first() {
            first = Some(EventDifference {
                register,
                kind: DifferenceKind::Missing,
                register_index: m.register_index,
                log_index: None,
                expected: Some(m.clone()),
                found: None,
            });
        }
    }
    Compared {
        first,
        differing,
        extra,
        missing,
    }
}
