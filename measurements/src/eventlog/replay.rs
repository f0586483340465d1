//! Replay: fold each event's SHA-384 digest into its register, from 48 zero bytes,
//! as TDG.MR.RTMR.EXTEND does (and as a TPM extends its SHA-384 PCR bank).
#![deny(clippy::arithmetic_side_effects)]

use std::collections::BTreeMap;

use serde::Serialize;

use crate::digest::{Digest48, Register};
use crate::event::MeasuredEvent;

use super::{EventLog, EventLogError, LogFormat, TPM_ALG_SHA256, TPM_ALG_SHA384};
use sha2::{Digest as _, Sha256};

/// A register's value after the replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterValue {
    pub register: Register,
    /// `None` for MRTD, which is not an extend chain.
    pub value: Option<Digest48>,
    /// How many log events extend this register.
    pub events: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A TPM PCR's SHA-384 bank value after the replay (TPM logs only), to compare
/// with what the guest reads from `/sys/class/tpm/tpm0/pcr-sha384/N`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PcrValue {
    pub pcr: u32,
    pub sha384: Digest48,
    /// The SHA-256 bank's value (hex), when the log carries SHA-256 digests: a second
    /// bank to check against other tools and `pcr-sha256`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub events: usize,
}

/// An event extended into a TDX register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayedEvent {
    /// Position in the log (0 is the header).
    pub log_index: usize,
    /// Position among the events of its register.
    pub register_index: usize,
    /// Absolute byte offset of the event.
    pub offset: usize,
    /// Length of the raw event data.
    pub data_length: usize,
    #[serde(flatten)]
    pub event: MeasuredEvent,
}

/// An event no TDX register receives, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotReplayed {
    pub log_index: usize,
    pub offset: usize,
    /// PCRIndex or MrIndex as written.
    pub index: u32,
    pub event_type_name: String,
    pub description: String,
    pub reason: String,
}

/// The outcome of a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replay {
    pub format: LogFormat,
    /// Every TDX register, MRTD first.
    pub registers: Vec<RegisterValue>,
    /// SHA-384 PCR values, for TPM logs; empty for CCEL logs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pcrs: Vec<PcrValue>,
    /// The locality a StartupLocality event sets PCR 0's initial value to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_locality: Option<u8>,
    /// Events extended into TDX registers, in log order.
    pub events: Vec<ReplayedEvent>,
    /// Events that no TDX register receives.
    pub not_replayed: Vec<NotReplayed>,
}

impl Replay {
    /// The replayed value of `register` (`None` for MRTD).
    pub fn value(&self, register: Register) -> Option<Digest48> {
        self.registers
            .iter()
            .find(|r| r.register == register)
            .and_then(|r| r.value)
    }

    /// The SHA-384 value of a PCR (TPM logs), when the log extends it.
    pub fn pcr(&self, pcr: u32) -> Option<Digest48> {
        self.pcrs.iter().find(|p| p.pcr == pcr).map(|p| p.sha384)
    }

    /// The replayed events of one register, in order.
    pub fn events_of(&self, register: Register) -> impl Iterator<Item = &ReplayedEvent> {
        self.events
            .iter()
            .filter(move |e| e.event.register == register)
    }
}

pub(super) fn replay(log: &EventLog) -> Result<Replay, EventLogError> {
    if log.spec_id.digest_size(TPM_ALG_SHA384).is_none() {
        return Err(EventLogError::NoSha384Bank {
            algorithms: log.spec_id.algorithm_names(),
        });
    }
    let mut values: BTreeMap<Register, (Digest48, usize)> = BTreeMap::new();
    let mut pcrs: BTreeMap<u32, (Digest48, usize)> = BTreeMap::new();
    let has_sha256 = log.spec_id.digest_size(TPM_ALG_SHA256).is_some();
    let mut pcrs256: BTreeMap<u32, Option<[u8; 32]>> = BTreeMap::new();
    let startup_locality = startup_locality(log);
    let mut events = Vec::new();
    let mut not_replayed = Vec::new();

    for e in &log.events {
        let skip = |reason: String| NotReplayed {
            log_index: e.log_index,
            offset: e.offset,
            index: e.index,
            event_type_name: e.event_type_name.clone(),
            description: e.description.clone(),
            reason,
        };
        if !e.is_extended() {
            not_replayed.push(skip("EV_NO_ACTION: logged, never extended".into()));
            continue;
        }
        let digest = e.sha384.ok_or(EventLogError::MissingSha384 {
            index: e.log_index,
            offset: e.offset,
        })?;
        if log.format == LogFormat::Tpm {
            let start = pcr_initial_value(e.index, startup_locality);
            let (v, n) = pcrs.entry(e.index).or_insert((start, 0));
            v.extend(&digest);
            *n = n.saturating_add(1);
            if has_sha256 {
                let start = Some(pcr_initial_value(e.index, startup_locality).0)
                    .and_then(|v| <[u8; 32]>::try_from(v.get(16..)?).ok());
                let slot = pcrs256.entry(e.index).or_insert(start);
                *slot = extend_sha256(*slot, e);
            }
        }
        let Some(register) = e.register else {
            not_replayed.push(skip(format!(
                "PCR {} has no TDX register (only PCR 0-15 map)",
                e.index
            )));
            continue;
        };
        let (v, n) = values.entry(register).or_insert((Digest48::ZERO, 0));
        v.extend(&digest);
        let register_index = *n;
        *n = n.saturating_add(1);
        if let Some(event) = e.measured(log.format) {
            events.push(ReplayedEvent {
                log_index: e.log_index,
                register_index,
                offset: e.offset,
                data_length: e.data_length,
                event,
            });
        }
    }

    let registers = Register::ALL
        .into_iter()
        .map(|register| {
            let (value, count) = values
                .get(&register)
                .copied()
                .unwrap_or((Digest48::ZERO, 0));
            if register == Register::Mrtd {
                RegisterValue {
                    register,
                    value: None,
                    events: count,
                    note: Some(mrtd_note(log.format, count)),
                }
            } else {
                RegisterValue {
                    register,
                    value: Some(value),
                    events: count,
                    note: None,
                }
            }
        })
        .collect();

    Ok(Replay {
        format: log.format,
        registers,
        pcrs: pcrs
            .into_iter()
            .map(|(pcr, (sha384, events))| PcrValue {
                pcr,
                sha384,
                sha256: pcrs256.get(&pcr).copied().flatten().map(hex::encode),
                events,
            })
            .collect(),
        startup_locality,
        events,
        not_replayed,
    })
}

/// `value = SHA256(value || digest)` with the event's SHA-256 digest; `None` once an
/// event lacks one (the bank cannot be replayed then).
fn extend_sha256(value: Option<[u8; 32]>, e: &super::LogEvent) -> Option<[u8; 32]> {
    let v = value?;
    let d = e
        .digests
        .iter()
        .find(|d| d.algorithm_id == TPM_ALG_SHA256)?;
    let mut h = Sha256::new();
    h.update(v);
    h.update(&d.digest);
    Some(h.finalize().into())
}

/// The locality of a StartupLocality EV_NO_ACTION event in PCR 0 (PC Client spec
/// §10.4.5.3), which a TPM started by an H-CRTM or from locality 3 logs.
fn startup_locality(log: &EventLog) -> Option<u8> {
    log.events
        .iter()
        .filter(|e| !e.is_extended() && e.index == 0)
        .find_map(|e| e.data.strip_prefix(b"StartupLocality\0")?.first().copied())
}

/// PCR 0 of a TPM started from locality 3 or 4 resets to that locality in its last
/// byte instead of zero (PC Client spec §3.3.4.2); every other PCR here starts at zero.
fn pcr_initial_value(pcr: u32, locality: Option<u8>) -> Digest48 {
    let mut v = Digest48::ZERO;
    if let (0, Some(loc), Some(last)) = (pcr, locality, v.0.last_mut()) {
        *last = loc;
    }
    v
}

fn mrtd_note(format: LogFormat, count: usize) -> String {
    let why = "MRTD is the TDX module's hash of the initial TD memory, not an extend chain; \
               compute it from the firmware (cocoon-measure mrtd)";
    match format {
        LogFormat::Tpm => format!("{why}. PCR 0 (firmware code) maps to it: {count} event(s)"),
        LogFormat::Ccel => format!("{why}. {count} event(s) name it"),
    }
}
