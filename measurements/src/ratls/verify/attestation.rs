//! `/attestation` responses: a fresh quote over the client's nonce, the runtime
//! event log, and the boot event log (interface contract, sections 3 and 5).

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::{check_rtmr3, check_spki, judge_quote, sha256_hex, QuoteCase, RaTlsVerifierConfig};
use crate::claims::Claims;
use crate::digest::{Digest48, Register};
use crate::eventlog::{EventLog, FormatChoice};
use crate::policy::{Reason, ReasonCode};
use crate::ratls::cert::TeeKind;
use crate::ratls::response::{AttestationResponse, BootLogFormat};
use crate::ratls::runtime::{replay, verify_log, EVENT_CONFIG};
use crate::verify::Verdict;

/// The outcome of verifying an attestation response.
#[derive(Debug, Clone, Serialize)]
pub struct AttestationReport {
    pub accepted: bool,
    /// Verification time (Unix seconds).
    pub at: u64,
    pub tee: TeeKind,
    /// The nonce the client sent, hex.
    pub nonce: String,
    pub rtmr3_extended: bool,
    /// Replay of the runtime log's recorded digests.
    pub runtime_log_replay: Digest48,
    /// Names of the runtime events, in order.
    pub runtime_events: Vec<String>,
    pub claims: Option<Claims>,
    /// The quote's verdict (registers, TCB), when the quote could be verified.
    pub quote: Option<Verdict>,
    /// The worker's measured configuration text (`config_toml`): what the proxy pays
    /// under (owner address, pricing). Bound to RTMR3 only when `reasons` is empty.
    pub config_toml: String,
    /// TON wallet address the worker signs receipts for.
    pub wallet_address: String,
    /// Ed25519 receipt public key, hex.
    pub receipt_public_key_hex: String,
    /// RTMR0-2 replayed from the boot event log (TD view), when one was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_log_registers: Option<[Digest48; 3]>,
    /// Every failed check; empty when accepted.
    pub reasons: Vec<Reason>,
}

impl AttestationReport {
    /// The reasons' codes, for tests and scripts.
    pub fn codes(&self) -> Vec<&'static str> {
        self.reasons.iter().map(Reason::code).collect()
    }
}

fn format_reason(message: impl Into<String>) -> Reason {
    Reason::new(ReasonCode::AttestationFormat, message)
}

/// Verify `response` as the answer to `nonce` on a connection whose server key is
/// `presented_spki` (DER SubjectPublicKeyInfo of the handshake's certificate).
pub fn verify_attestation(
    response: &AttestationResponse,
    presented_spki: &[u8],
    nonce: &[u8],
    config: &RaTlsVerifierConfig,
) -> AttestationReport {
    let at = config.time();
    let replayed = replay(&response.runtime_event_log);
    let mut report = AttestationReport {
        accepted: false,
        at,
        tee: response.tee,
        nonce: hex::encode(nonce),
        rtmr3_extended: response.rtmr3_extended,
        runtime_log_replay: replayed,
        runtime_events: response
            .runtime_event_log
            .iter()
            .map(|e| e.name.clone())
            .collect(),
        claims: None,
        quote: None,
        config_toml: response.config_toml.clone(),
        wallet_address: response.wallet_address.clone(),
        receipt_public_key_hex: response.receipt_public_key_hex.clone(),
        boot_log_registers: None,
        reasons: Vec::new(),
    };
    let reasons = &mut report.reasons;
    if let Err(e) = response.check_version() {
        reasons.push(format_reason(e.to_string()));
        return report;
    }
    let (quote, claims) = match (response.quote(), response.claims()) {
        (Ok(q), Ok(c)) => (q, c),
        (q, c) => {
            reasons.extend(q.err().map(|e| format_reason(e.to_string())));
            reasons.extend(c.err().map(|e| format_reason(e.to_string())));
            return report;
        }
    };

    if claims.nonce.as_deref() != Some(nonce) {
        reasons.push(Reason::mismatch(
            ReasonCode::NonceMismatch,
            "the claims do not carry this request's nonce: the quote is not fresh",
            hex::encode(nonce),
            claims
                .nonce
                .as_deref()
                .map_or_else(|| "none".to_string(), hex::encode),
        ));
    }
    check_spki(&claims, presented_spki, "the connection's key", reasons);
    runtime_log(response, &claims, replayed, reasons);
    consistency(response, &claims, reasons);

    let carried = response.collateral.clone().map(Ok);
    let case = QuoteCase {
        tee: response.tee,
        quote: &quote,
        claims: &claims,
        carried,
        nonce_possible: true,
    };
    let verdict = judge_quote(config, case, at, reasons);
    if let Some(v) = &verdict {
        let td = &v.quote.td_report;
        if response.rtmr3_extended || response.tee == TeeKind::Sim {
            check_rtmr3(replayed, td.rtmr3, reasons);
        }
        report.boot_log_registers = boot_log(response, [td.rtmr0, td.rtmr1, td.rtmr2], reasons);
    }
    report.claims = Some(claims);
    report.quote = verdict;
    report.accepted = report.reasons.is_empty();
    report
}

fn runtime_log(
    response: &AttestationResponse,
    claims: &Claims,
    replayed: Digest48,
    reasons: &mut Vec<Reason>,
) {
    if let Err(errors) = verify_log(&response.runtime_event_log) {
        reasons.extend(
            errors
                .into_iter()
                .map(|e| Reason::new(ReasonCode::RuntimeLogDigest, e.to_string())),
        );
    }
    if replayed != claims.runtime_event_log_digest {
        reasons.push(Reason::mismatch(
            ReasonCode::RuntimeLogReplay,
            "the runtime event log does not replay to the claims' runtime_event_log_digest",
            claims.runtime_event_log_digest.to_hex(),
            replayed.to_hex(),
        ));
    }
}

/// Fields the response repeats must agree with the claims they came from.
fn consistency(response: &AttestationResponse, claims: &Claims, reasons: &mut Vec<Reason>) {
    let mismatch = |what: &str, expected: String, found: String| {
        Reason::mismatch(
            ReasonCode::ResponseMismatch,
            format!("{what} differs from the claims"),
            expected,
            found,
        )
    };
    if response.wallet_address != claims.wallet_address {
        reasons.push(mismatch(
            "wallet_address",
            claims.wallet_address.clone(),
            response.wallet_address.clone(),
        ));
    }
    match response.receipt_public_key() {
        Ok(k) if k == claims.receipt_public_key => {}
        Ok(k) => reasons.push(mismatch(
            "receipt_public_key_hex",
            hex::encode(claims.receipt_public_key),
            hex::encode(k),
        )),
        Err(e) => reasons.push(format_reason(e.to_string())),
    }
    gpu_binding(response, claims, reasons);
    let config_events: Vec<_> = response
        .runtime_event_log
        .iter()
        .filter(|e| e.name == EVENT_CONFIG)
        .collect();
    let config_digest: [u8; 32] = Sha256::digest(response.config_toml.as_bytes()).into();
    match config_events.as_slice() {
        [one] if one.payload == config_digest => {}
        [one] => reasons.push(Reason::mismatch(
            ReasonCode::ResponseMismatch,
            "config_toml is not the measured configuration (SHA-256 differs from the \
             config event's payload)",
            hex::encode(&one.payload),
            sha256_hex(response.config_toml.as_bytes()),
        )),
        other => reasons.push(Reason::new(
            ReasonCode::ResponseMismatch,
            format!(
                "the runtime event log has {} \"config\" events (expected exactly one), so \
                 config_toml is not bound to the quote",
                other.len()
            ),
        )),
    }
}

/// The `gpu_evidence` served must be exactly what the claims (hence REPORTDATA) bind:
/// otherwise a host could show one GPU's evidence beside another TD's quote, or drop
/// the evidence of a GPU the TD attested.
fn gpu_binding(response: &AttestationResponse, claims: &Claims, reasons: &mut Vec<Reason>) {
    let served = response
        .gpu_evidence
        .as_ref()
        .filter(|v| !v.is_null())
        .map(crate::gpu::digest::evidence_digest);
    let none = || "none".to_string();
    match (claims.gpu_evidence_digest, served) {
        (None, None) => {}
        (Some(bound), Some(got)) if bound == got => {}
        (bound, got) => reasons.push(Reason::mismatch(
            ReasonCode::ResponseMismatch,
            "gpu_evidence is not the evidence the claims bind (SHA-384 of its canonical JSON \
             differs from claims.gpu_evidence_digest)",
            bound.map_or_else(none, |d| d.to_hex()),
            got.map_or_else(none, |d| d.to_hex()),
        )),
    }
}

/// Replay the boot log (TD view) and compare with the quote's RTMR0-2.
fn boot_log(
    response: &AttestationResponse,
    quoted: [Digest48; 3],
    reasons: &mut Vec<Reason>,
) -> Option<[Digest48; 3]> {
    let bytes = match response.boot_event_log() {
        Ok(Some(b)) => b,
        Ok(None) => return None,
        Err(e) => {
            reasons.push(format_reason(e.to_string()));
            return None;
        }
    };
    let choice = match response.boot_event_log_format {
        Some(BootLogFormat::Ccel) => FormatChoice::Ccel,
        Some(BootLogFormat::Tpm) => FormatChoice::Tpm,
        None => {
            reasons.push(format_reason(
                "boot_event_log_b64 is present but boot_event_log_format is null",
            ));
            return None;
        }
    };
    let view = match EventLog::parse(&bytes, choice).and_then(|l| l.td_view()) {
        Ok(v) => v,
        Err(e) => {
            reasons.push(format_reason(format!("boot event log: {e}")));
            return None;
        }
    };
    let replayed = [view.rtmr0, view.rtmr1, view.rtmr2];
    for ((register, q), r) in [Register::Rtmr0, Register::Rtmr1, Register::Rtmr2]
        .into_iter()
        .zip(quoted)
        .zip(replayed)
    {
        if q != r {
            reasons.push(Reason::mismatch(
                ReasonCode::BootLogMismatch,
                format!("the boot event log replays to another {register} than the quote's"),
                q.to_hex(),
                r.to_hex(),
            ));
        }
    }
    Some(replayed)
}
