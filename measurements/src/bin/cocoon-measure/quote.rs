//! `cocoon-measure quote inspect|verify`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::Serialize;
use serde_json::json;

use cocoon_measurements::claims::Claims;
use cocoon_measurements::policy::{Policy, Reason};
use cocoon_measurements::quote::{looks_like_hex, Quote, MAX_QUOTE_BYTES};
use cocoon_measurements::verify::{self, time::format_rfc3339_utc, TrustRoot};

use crate::output::{Outcome, Status};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Parse a TDX quote (raw or hex text) and print its fields. Verifies nothing.
    Inspect {
        /// The quote file: raw bytes or hex text (detected).
        file: PathBuf,
    },
    /// Verify a TDX quote (dcap-qvl) and judge it with a policy.
    ///
    /// Exit 0 accepted, 1 rejected (every failed check is listed), 2 bad input.
    Verify(VerifyArgs),
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The quote file: raw bytes or hex text (detected).
    file: PathBuf,
    /// Collateral as JSON (dcap-qvl's QuoteCollateralV3 form).
    #[arg(long, conflicts_with = "pccs", required_unless_present = "pccs")]
    collateral: Option<PathBuf>,
    /// Fetch collateral from this PCCS (or Intel PCS) base URL instead.
    #[arg(long)]
    pccs: Option<String>,
    /// Verification time, Unix seconds. Default: now.
    #[arg(long)]
    at: Option<u64>,
    /// Trust this root CA (DER) instead of Intel's SGX Root CA.
    #[arg(long = "root-ca")]
    root_ca: Option<PathBuf>,
    /// Policy file (TOML). Without it, registers are not pinned, REPORTDATA is not
    /// checked, but DEBUG and any TCB status other than UpToDate still reject.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Claims (JSON) for a policy binding REPORTDATA with `claims_v1`.
    #[arg(long)]
    claims: Option<PathBuf>,
}

pub fn run(cmd: &Command) -> anyhow::Result<Outcome> {
    match cmd {
        Command::Inspect { file } => inspect(file),
        Command::Verify(a) => verify_cmd(a),
    }
}

/// Read a file of at most `max` bytes.
pub fn read_capped(path: &Path, max: u64, what: &str) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if meta.len() > max {
        bail!(
            "{what} {} is {} bytes, more than the limit of {max}",
            path.display(),
            meta.len()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// A quote file may hold hex text: two digits a byte plus whitespace.
const MAX_QUOTE_FILE: u64 = (MAX_QUOTE_BYTES as u64) * 3;

fn load_quote(path: &Path) -> anyhow::Result<(Vec<u8>, Quote, &'static str)> {
    let content = read_capped(path, MAX_QUOTE_FILE, "quote file")?;
    let form = if looks_like_hex(&content) {
        "hex"
    } else {
        "binary"
    };
    let (raw, q) = Quote::parse_file_content(&content)
        .with_context(|| format!("{} ({form})", path.display()))?;
    Ok((raw, q, form))
}

fn inspect(file: &Path) -> anyhow::Result<Outcome> {
    let (raw, q, form) = load_quote(file)?;
    let report = json!({
        "file": file.display().to_string(),
        "encoding": form,
        "size": raw.len(),
        "quote": q,
    });
    Outcome::new(Status::Ok, &report, inspect_text(&q, form, raw.len()))
}

fn inspect_text(q: &Quote, form: &str, size: usize) -> String {
    let r = &q.td_report;
    let a = r.td_attributes;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "TDX quote v{} ({form}, {size} bytes), {}, QE vendor {}{}",
        q.header.version,
        match q.body_kind {
            cocoon_measurements::quote::BodyKind::TdReport10 => "TD report 1.0",
            cocoon_measurements::quote::BodyKind::TdReport15 => "TD report 1.5",
        },
        hex::encode(q.header.qe_vendor_id),
        if q.header.is_intel_qe() {
            " (Intel)"
        } else {
            ""
        }
    );
    let _ = writeln!(s, "  mrtd            {}", r.mrtd);
    let _ = writeln!(s, "  rtmr0           {}", r.rtmr0);
    let _ = writeln!(s, "  rtmr1           {}", r.rtmr1);
    let _ = writeln!(s, "  rtmr2           {}", r.rtmr2);
    let _ = writeln!(s, "  rtmr3           {}", r.rtmr3);
    let _ = writeln!(s, "  report_data     {}", hex::encode(r.report_data));
    let _ = writeln!(
        s,
        "  td_attributes   {:#018x} [{}]{}",
        a.0,
        a.set_names().join(", "),
        if a.debug() { "  <-- DEBUG" } else { "" }
    );
    let _ = writeln!(
        s,
        "  xfam            {:#018x} [{}]",
        r.xfam.0,
        r.xfam.set_names().join(", ")
    );
    let _ = writeln!(s, "  tee_tcb_svn     {}", hex::encode(r.tee_tcb_svn));
    if let Some(svn2) = r.tee_tcb_svn2 {
        let _ = writeln!(s, "  tee_tcb_svn2    {}", hex::encode(svn2));
    }
    let _ = writeln!(s, "  mr_seam         {}", r.mr_seam);
    let _ = writeln!(s, "  mr_signer_seam  {}", r.mr_signer_seam);
    let _ = writeln!(s, "  mr_config_id    {}", r.mr_config_id);
    let _ = writeln!(s, "  mr_owner        {}", r.mr_owner);
    let _ = writeln!(s, "  mr_owner_config {}", r.mr_owner_config);
    if let Some(m) = &r.mr_service_td {
        let _ = writeln!(s, "  mr_service_td   {m}");
    }
    let sd = &q.signature_data;
    let _ = writeln!(
        s,
        "  signature data  {} bytes, certification data type {}, PCK cert data type {} ({} certificates)",
        sd.len, sd.certification_data_type, sd.pck_cert_data_type, sd.pck_cert_count
    );
    s
}

#[derive(Serialize)]
struct VerifyReport<'a> {
    verdict: &'static str,
    at: u64,
    at_utc: String,
    trust_root: &'static str,
    policy: Option<String>,
    registers_pinned: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
    tcb_status: Option<&'a str>,
    advisory_ids: Vec<String>,
    reasons: &'a [Reason],
    quote_version: u16,
    body: cocoon_measurements::quote::BodyKind,
    mrtd: String,
    rtmr0: String,
    rtmr1: String,
    rtmr2: String,
    rtmr3: String,
    report_data: String,
    td_attributes: cocoon_measurements::quote::TdAttributes,
    xfam: cocoon_measurements::quote::Xfam,
    tcb: Option<&'a verify::TcbFacts>,
    collateral: verify::CollateralDates,
}

const UNPINNED_NOTE: &str = "no --policy given: registers and REPORTDATA are NOT pinned; only DEBUG, TD attributes and the TCB status (UpToDate, no advisories) were judged";

fn verify_cmd(a: &VerifyArgs) -> anyhow::Result<Outcome> {
    let (raw, _q, _form) = load_quote(&a.file)?;

    let root = match &a.root_ca {
        None => TrustRoot::Intel,
        Some(p) => {
            let der = read_capped(p, 64 * 1024, "root CA")?;
            TrustRoot::custom(der).with_context(|| p.display().to_string())?
        }
    };

    let policy = match &a.policy {
        None => Policy::default_unpinned(),
        Some(p) => {
            let text = read_capped(p, 1024 * 1024, "policy")?;
            let text = String::from_utf8(text)
                .with_context(|| format!("policy {} is not UTF-8", p.display()))?;
            Policy::from_toml(&text).with_context(|| p.display().to_string())?
        }
    };

    let claims = match &a.claims {
        None => None,
        Some(p) => {
            let bytes = read_capped(p, 256 * 1024, "claims")?;
            let c: Claims = serde_json::from_slice(&bytes)
                .with_context(|| format!("claims {}", p.display()))?;
            c.validate()
                .with_context(|| format!("claims {}", p.display()))?;
            Some(c)
        }
    };

    let collateral = match (&a.collateral, &a.pccs) {
        (Some(p), _) => {
            let bytes = read_capped(p, verify::MAX_COLLATERAL_BYTES as u64, "collateral")?;
            verify::load_collateral_json(&bytes).with_context(|| p.display().to_string())?
        }
        (None, Some(url)) => verify::fetch_collateral(url, &raw)?,
        (None, None) => bail!("give --collateral FILE or --pccs URL"),
    };

    let at = a.at.unwrap_or_else(verify::now_unix);
    let v = verify::verify_quote(&raw, &collateral, at, &root, &policy, claims.as_ref())?;
    let r = &v.quote.td_report;
    let report = VerifyReport {
        verdict: if v.accepted { "accepted" } else { "rejected" },
        at,
        at_utc: format_rfc3339_utc(at),
        trust_root: root.describe(),
        policy: a.policy.as_ref().map(|p| p.display().to_string()),
        registers_pinned: policy.pins_registers(),
        note: a.policy.is_none().then_some(UNPINNED_NOTE),
        tcb_status: v.tcb.as_ref().map(|t| t.status.as_str()),
        advisory_ids: v
            .tcb
            .as_ref()
            .map(|t| t.advisory_ids.clone())
            .unwrap_or_default(),
        reasons: &v.reasons,
        quote_version: v.quote.header.version,
        body: v.quote.body_kind,
        mrtd: r.mrtd.to_hex(),
        rtmr0: r.rtmr0.to_hex(),
        rtmr1: r.rtmr1.to_hex(),
        rtmr2: r.rtmr2.to_hex(),
        rtmr3: r.rtmr3.to_hex(),
        report_data: hex::encode(r.report_data),
        td_attributes: r.td_attributes,
        xfam: r.xfam,
        tcb: v.tcb.as_ref(),
        collateral: verify::CollateralDates::of(&collateral),
    };
    let text = verify_text(&report);
    Outcome::new(Status::from_accepted(v.accepted), &report, text)
}

fn verify_text(r: &VerifyReport<'_>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} at {} ({}), trust root: {}",
        r.verdict.to_uppercase(),
        r.at_utc,
        r.at,
        r.trust_root
    );
    if let Some(n) = r.note {
        let _ = writeln!(s, "note: {n}");
    }
    let _ = writeln!(
        s,
        "tcb status: {}{}",
        r.tcb_status.unwrap_or("unknown (not verified)"),
        if r.advisory_ids.is_empty() {
            String::new()
        } else {
            format!(", advisories: {}", r.advisory_ids.join(", "))
        }
    );
    for reason in r.reasons {
        let _ = writeln!(s, "  - {reason}");
    }
    let _ = writeln!(s, "mrtd  {}", r.mrtd);
    let _ = writeln!(s, "rtmr0 {}", r.rtmr0);
    let _ = writeln!(s, "rtmr1 {}", r.rtmr1);
    let _ = writeln!(s, "rtmr2 {}", r.rtmr2);
    let _ = writeln!(s, "rtmr3 {}", r.rtmr3);
    let _ = writeln!(s, "report_data {}", r.report_data);
    let _ = writeln!(
        s,
        "td_attributes {:#018x} [{}]",
        r.td_attributes.0,
        r.td_attributes.set_names().join(", ")
    );
    s
}
