//! Every rule of a [`Policy`], applied to one quote; all failures are returned.

use super::{Allowed, Binding, Policy, Reason, ReasonCode};
use crate::claims::Claims;
use crate::digest::Digest48;
use crate::quote::{TdAttributes, TdReport, TD_ATTRIBUTES_RESERVED_MASK};
use crate::verify::time::format_rfc3339_utc;
use crate::verify::TcbFacts;

/// What the policy judges.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The TD report of the quote (from our parser).
    pub report: &'a TdReport,
    /// The platform facts dcap-qvl established; `None` when the quote did not
    /// verify (then the TCB rules fail as `tcb_unknown`).
    pub tcb: Option<&'a TcbFacts>,
    /// The claims the verifier observed (TLS key of the connection, ...), for the
    /// `claims_v1` REPORTDATA binding.
    pub claims: Option<&'a Claims>,
    /// Verification time (Unix seconds).
    pub at: u64,
}

/// Apply every rule of `policy` and return one reason per failed rule (empty =
/// accepted by the policy).
pub fn check(policy: &Policy, ev: &Evidence<'_>) -> Vec<Reason> {
    let mut out = Vec::new();
    registers(policy, ev.report, &mut out);
    td(policy, ev.report, &mut out);
    tcb(policy, ev, &mut out);
    report_data(policy, ev, &mut out);
    out
}

fn registers(policy: &Policy, r: &TdReport, out: &mut Vec<Reason>) {
    let p = &policy.registers;
    let rows: [(&str, &Allowed<Digest48>, &Digest48, ReasonCode); 5] = [
        ("MRTD", &p.mrtd, &r.mrtd, ReasonCode::MrtdMismatch),
        ("RTMR0", &p.rtmr0, &r.rtmr0, ReasonCode::Rtmr0Mismatch),
        ("RTMR1", &p.rtmr1, &r.rtmr1, ReasonCode::Rtmr1Mismatch),
        ("RTMR2", &p.rtmr2, &r.rtmr2, ReasonCode::Rtmr2Mismatch),
        ("RTMR3", &p.rtmr3, &r.rtmr3, ReasonCode::Rtmr3Mismatch),
    ];
    for (name, allowed, found, code) in rows {
        if let Allowed::OneOf(list) = allowed {
            if !list.contains(found) {
                let expected = list
                    .iter()
                    .map(Digest48::to_hex)
                    .collect::<Vec<_>>()
                    .join(" | ");
                out.push(Reason::mismatch(
                    code,
                    format!(
                        "{name} {found} is not the pinned value{} (expected {expected})",
                        if list.len() == 1 { "" } else { "s" }
                    ),
                    expected,
                    found.to_hex(),
                ));
            }
        }
    }
}

fn td(policy: &Policy, r: &TdReport, out: &mut Vec<Reason>) {
    let a = r.td_attributes;
    if !policy.td.allow_debug {
        if a.debug() {
            out.push(Reason::mismatch(
                ReasonCode::DebugEnabled,
                format!(
                    "TDATTRIBUTES.DEBUG (bit 0) is set (TDATTRIBUTES {:#018x}): the host can read and write the TD's memory and registers",
                    a.0
                ),
                "DEBUG clear",
                "DEBUG set",
            ));
        }
        let other = TdAttributes(a.tud_other());
        if other.0 != 0 {
            out.push(Reason::mismatch(
                ReasonCode::TdAttributes,
                format!(
                    "TD-under-debug attribute bits are set: {} (host profiling or reserved TUD bits)",
                    other.set_names().join(", ")
                ),
                "TUD bits 1-7 clear",
                format!("{:#018x}", a.0),
            ));
        }
    }
    let reserved = a.0 & TD_ATTRIBUTES_RESERVED_MASK & !0xFF;
    if reserved != 0 {
        out.push(Reason::mismatch(
            ReasonCode::TdAttributes,
            format!(
                "reserved TDATTRIBUTES bits are set: {}",
                TdAttributes(reserved).set_names().join(", ")
            ),
            "reserved bits clear",
            format!("{:#018x}", a.0),
        ));
    }
    if let Allowed::OneOf(list) = &policy.td.xfam {
        if !list.iter().any(|x| x.0 == r.xfam.0) {
            let expected = list
                .iter()
                .map(|x| format!("{:#018x}", x.0))
                .collect::<Vec<_>>()
                .join(" | ");
            out.push(Reason::mismatch(
                ReasonCode::XfamMismatch,
                format!(
                    "XFAM {:#018x} is not an allowed value (expected {expected})",
                    r.xfam.0
                ),
                expected,
                format!("{:#018x}", r.xfam.0),
            ));
        }
    }
}

fn tcb(policy: &Policy, ev: &Evidence<'_>, out: &mut Vec<Reason>) {
    let p = &policy.tcb;
    let Some(t) = ev.tcb else {
        out.push(Reason::new(
            ReasonCode::TcbUnknown,
            "no TCB status: the quote did not verify, so the platform's TCB is unknown",
        ));
        return;
    };
    if !p.accepted_statuses.iter().any(|s| s == &t.status) {
        let expected = p.accepted_statuses.join(" | ");
        out.push(Reason::mismatch(
            ReasonCode::TcbStatus,
            format!(
                "TCB status {} is not accepted (accepted: {expected})",
                t.status
            ),
            expected,
            t.status.clone(),
        ));
    }
    for id in &t.advisory_ids {
        if !p
            .tolerated_advisories
            .iter()
            .any(|a| a.eq_ignore_ascii_case(id))
        {
            out.push(Reason::mismatch(
                ReasonCode::Advisory,
                format!(
                    "advisory {id} applies to this platform and is not tolerated by the policy"
                ),
                if p.tolerated_advisories.is_empty() {
                    "no advisories".to_string()
                } else {
                    p.tolerated_advisories.join(" | ")
                },
                id.clone(),
            ));
        }
    }
    if let Some(max) = p.max_collateral_age_secs {
        let age = ev.at.saturating_sub(t.tcb_info_issue_date);
        if age > max {
            out.push(Reason::mismatch(
                ReasonCode::CollateralTooOld,
                format!(
                    "TCB info issued {} is {age} s old at {}, more than the policy's {max} s",
                    format_rfc3339_utc(t.tcb_info_issue_date),
                    format_rfc3339_utc(ev.at)
                ),
                format!("<= {max} s"),
                format!("{age} s"),
            ));
        }
    }
}

fn report_data(policy: &Policy, ev: &Evidence<'_>, out: &mut Vec<Reason>) {
    let p = &policy.report_data;
    let found = &ev.report.report_data;
    match p.binding {
        Binding::Any => {}
        Binding::Exact => {
            let expected = p
                .value
                .as_deref()
                .and_then(|v| hex::decode(v.trim_start_matches("0x")).ok())
                .unwrap_or_default();
            if expected.as_slice() != found.as_slice() {
                out.push(Reason::mismatch(
                    ReasonCode::ReportDataMismatch,
                    "REPORTDATA differs from the policy's exact value",
                    hex::encode(&expected),
                    hex::encode(found),
                ));
            }
        }
        Binding::ClaimsV1 => {
            let Some(c) = ev.claims else {
                out.push(Reason::new(
                    ReasonCode::ClaimsMissing,
                    "the policy binds REPORTDATA to claims (claims_v1) and no claims were given",
                ));
                return;
            };
            if p.require_nonce && c.nonce.is_none() {
                out.push(Reason::new(
                    ReasonCode::ClaimsIncomplete,
                    "the policy requires a nonce in the claims and there is none",
                ));
            }
            if p.require_gpu_evidence && c.gpu_evidence_digest.is_none() {
                out.push(Reason::new(
                    ReasonCode::ClaimsIncomplete,
                    "the policy requires a GPU evidence digest in the claims and there is none",
                ));
            }
            let expected = c.report_data();
            if &expected != found {
                out.push(Reason::mismatch(
                    ReasonCode::ReportDataMismatch,
                    "REPORTDATA is not SHA-512 of the given claims (claims_v1): the quote does not vouch for these keys",
                    hex::encode(expected),
                    hex::encode(found),
                ));
            }
        }
    }
}
