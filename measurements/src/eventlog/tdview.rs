//! The TD view of a boot event log: the RTMR0-2 a TD would hold after the same boot.
//!
//! A simulated TEE booted with a TPM (swtpm) reports registers derived from its TPM
//! log. edk2's Tcg2Dxe measures a separator into each of PCR 0-6 at ReadyToBoot, so
//! the PCRs mapping to RTMR1 (2-6) carry five separators, where a TD's TdTcg2Dxe
//! measures one (measurements/README.md, "TPM test boots vs TDX"). The TD view keeps
//! the first RTMR1 separator, drops the others, and maps PCRs to registers with
//! [`Register::from_pcr`]; PCR 0 (MRTD, never an extend chain in a TD) and PCRs
//! above 15 are left out. RTMR1 and RTMR2 then equal the TD-flavour prediction
//! (`boot::LogFlavor::Tdx`). RTMR0 is the TPM firmware's PCR 1/7 contents, which a
//! real TD's RTMR0 (TD HOB, CFV) does not share; a CCEL log is its own TD view.
#![deny(clippy::arithmetic_side_effects)]

use serde::Serialize;

use super::{EventLog, EventLogError, LogFormat};
use crate::digest::{Digest48, Register};
use crate::event::event_type::EV_SEPARATOR;
use crate::event::MeasuredEvent;

/// RTMR0-2 as a TD would report them after the boot a log records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TdView {
    pub rtmr0: Digest48,
    pub rtmr1: Digest48,
    pub rtmr2: Digest48,
    /// The events replayed, in log order.
    pub events: Vec<MeasuredEvent>,
    /// Log indices of the RTMR1 separators the TD view drops (TPM logs: PCR 3-6's).
    pub dropped_separators: Vec<usize>,
}

impl TdView {
    /// The value of RTMR0, 1 or 2; `None` for MRTD and RTMR3.
    pub fn value(&self, register: Register) -> Option<Digest48> {
        match register {
            Register::Rtmr0 => Some(self.rtmr0),
            Register::Rtmr1 => Some(self.rtmr1),
            Register::Rtmr2 => Some(self.rtmr2),
            Register::Mrtd | Register::Rtmr3 => None,
        }
    }
}

pub(super) fn td_view(log: &EventLog) -> Result<TdView, EventLogError> {
    if log.spec_id.digest_size(super::TPM_ALG_SHA384).is_none() {
        return Err(EventLogError::NoSha384Bank {
            algorithms: log.spec_id.algorithm_names(),
        });
    }
    let mut events = Vec::new();
    let mut dropped_separators = Vec::new();
    let mut seen_rtmr1_separator = false;
    let (mut rtmr0, mut rtmr1, mut rtmr2) = (Digest48::ZERO, Digest48::ZERO, Digest48::ZERO);
    for e in log.events.iter().filter(|e| e.is_extended()) {
        let register = match e.register {
            Some(r @ (Register::Rtmr0 | Register::Rtmr1 | Register::Rtmr2)) => r,
            _ => continue,
        };
        let digest = e.sha384.ok_or(EventLogError::MissingSha384 {
            index: e.log_index,
            offset: e.offset,
        })?;
        if log.format == LogFormat::Tpm
            && register == Register::Rtmr1
            && e.event_type == EV_SEPARATOR
        {
            if seen_rtmr1_separator {
                dropped_separators.push(e.log_index);
                continue;
            }
            seen_rtmr1_separator = true;
        }
        match register {
            Register::Rtmr0 => rtmr0.extend(&digest),
            Register::Rtmr1 => rtmr1.extend(&digest),
            _ => rtmr2.extend(&digest),
        }
        if let Some(m) = e.measured(log.format) {
            events.push(m);
        }
    }
    Ok(TdView {
        rtmr0,
        rtmr1,
        rtmr2,
        events,
        dropped_separators,
    })
}
