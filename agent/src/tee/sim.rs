//! Simulated TEE for machines without TDX.
//!
//! Quotes are real TDX v4 quotes signed by the simulated PKI that
//! `cocoon-measure sim-pki` wrote (`SimPki`), so they go through the production
//! verifier and are accepted only by a verifier explicitly given the sim root. MRTD
//! comes from the image's register file; RTMR0-2 from the boot's TPM event log
//! replayed in its TD view (CONTRACT section 4) when the dev image booted with swtpm,
//! else from the register file; RTMR3 is really extended in memory by the agent's
//! runtime events.

use std::path::Path;
use std::sync::Mutex;

use cocoon_measurements::eventlog::{EventLog, FormatChoice};
use cocoon_measurements::sim::SimPki;
use cocoon_measurements::Digest48;
use serde::Deserialize;

use super::{BootEventLog, BootLogFormat, QuoteCollateralV3, TeeBackend, TeeError, TeeKind};
use crate::config::SimTeeConfig;

/// `tee.sim.registers_file`: `{ "mrtd": hex48, "rtmr0"?: .., "rtmr1"?: .., "rtmr2"?: .. }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimRegisters {
    pub mrtd: Digest48,
    #[serde(default)]
    pub rtmr0: Option<Digest48>,
    #[serde(default)]
    pub rtmr1: Option<Digest48>,
    #[serde(default)]
    pub rtmr2: Option<Digest48>,
}

/// The simulated TD.
pub struct SimBackend {
    pki: SimPki,
    mrtd: Digest48,
    rtmr012: [Digest48; 3],
    /// RTMR3 as the runtime events extended it; behind a lock so a quote never sees
    /// a half-applied extension.
    rtmr3: Mutex<Digest48>,
    boot_log: Option<BootEventLog>,
    collateral: QuoteCollateralV3,
}

impl SimBackend {
    /// Load the PKI, registers and (when present) the TPM log named in `[tee.sim]`.
    pub fn load(cfg: &SimTeeConfig) -> Result<Self, TeeError> {
        let pki = SimPki::load(&cfg.pki_dir)?;
        let regs = read_registers(&cfg.registers_file)?;
        let tpm_log = match std::fs::read(&cfg.tpm_event_log) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(TeeError::io(&cfg.tpm_event_log, e)),
        };
        let rtmr012 = match &tpm_log {
            Some(bytes) => {
                let r = td_view_rtmrs(bytes).map_err(|why| TeeError::Registers {
                    path: cfg.tpm_event_log.clone(),
                    why,
                })?;
                tracing::info!(log = %cfg.tpm_event_log.display(), "sim RTMR0-2 from the TPM event log (TD view)");
                r
            }
            None => {
                tracing::info!(file = %cfg.registers_file.display(), "no TPM event log: sim RTMR0-2 from the register file");
                [
                    regs.rtmr0.unwrap_or(Digest48::ZERO),
                    regs.rtmr1.unwrap_or(Digest48::ZERO),
                    regs.rtmr2.unwrap_or(Digest48::ZERO),
                ]
            }
        };
        let collateral = pki.collateral().clone();
        Ok(SimBackend {
            pki,
            mrtd: regs.mrtd,
            rtmr012,
            rtmr3: Mutex::new(Digest48::ZERO),
            boot_log: tpm_log.map(|bytes| BootEventLog {
                bytes,
                format: BootLogFormat::Tpm,
            }),
            collateral,
        })
    }

    /// A backend from parts (tests, and callers that generate a PKI in memory).
    pub fn from_parts(pki: SimPki, mrtd: Digest48, rtmr012: [Digest48; 3]) -> Self {
        let collateral = pki.collateral().clone();
        SimBackend {
            pki,
            mrtd,
            rtmr012,
            rtmr3: Mutex::new(Digest48::ZERO),
            boot_log: None,
            collateral,
        }
    }

    /// The current RTMR3 value.
    pub fn rtmr3(&self) -> Digest48 {
        *self.rtmr3.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn read_registers(path: &Path) -> Result<SimRegisters, TeeError> {
    let bytes = std::fs::read(path).map_err(|e| TeeError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| TeeError::Registers {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

/// RTMR0-2 a TD booted like this TPM log would have (CONTRACT section 4: the TD
/// view keeps one RTMR1 separator of the TPM log's five).
fn td_view_rtmrs(bytes: &[u8]) -> Result<[Digest48; 3], String> {
    let log = EventLog::parse(bytes, FormatChoice::Tpm).map_err(|e| e.to_string())?;
    let view = log.td_view().map_err(|e| e.to_string())?;
    Ok([view.rtmr0, view.rtmr1, view.rtmr2])
}

impl TeeBackend for SimBackend {
    fn kind(&self) -> TeeKind {
        TeeKind::Sim
    }

    fn quote(&self, report_data: &[u8; 64]) -> Result<Vec<u8>, TeeError> {
        let mut td = self.pki.td_fields();
        td.mr_td = self.mrtd;
        let [r0, r1, r2] = self.rtmr012;
        td.rtmr = [r0, r1, r2, self.rtmr3()];
        td.report_data = *report_data;
        Ok(self.pki.quote(&td)?)
    }

    fn extend_rtmr3(&self, digest: &Digest48) -> Result<bool, TeeError> {
        self.rtmr3
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(digest);
        Ok(true)
    }

    fn boot_event_log(&self) -> Option<BootEventLog> {
        self.boot_log.clone()
    }

    fn collateral(&self) -> Option<QuoteCollateralV3> {
        Some(self.collateral.clone())
    }
}
