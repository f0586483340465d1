//! `cocoon-measure connect`: RA-TLS handshake with a worker, then a fresh
//! `/attestation` on the same connection, both verified.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::Serialize;

use cocoon_measurements::policy::{Policy, Reason};
use cocoon_measurements::ratls::{self, CollateralSource, ConnectReport, RaTlsVerifierConfig};
use cocoon_measurements::verify::{self, time::format_rfc3339_utc, TrustRoot};

use crate::output::{Outcome, Status};
use crate::quote::read_capped;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The worker, https://HOST:PORT.
    url: String,
    /// Policy file (TOML) pinning the worker's measurements. REPORTDATA is always
    /// bound to the RA-TLS claims, whatever its [report_data] says.
    #[arg(long)]
    policy: PathBuf,
    /// Trust this simulated-TEE root CA (DER or PEM) instead of Intel's SGX Root CA.
    /// Without it a `tee=sim` worker is rejected.
    #[arg(long = "trust-sim-root")]
    trust_sim_root: Option<PathBuf>,
    /// Collateral (dcap-qvl QuoteCollateralV3 JSON) instead of the worker's own.
    #[arg(long, conflicts_with = "pccs")]
    collateral: Option<PathBuf>,
    /// Fetch collateral from this PCCS (or Intel PCS) base URL instead of the worker's.
    #[arg(long)]
    pccs: Option<String>,
    /// Verification time, Unix seconds. Default: now.
    #[arg(long)]
    at: Option<u64>,
}

/// Read a root CA certificate, DER or PEM.
fn load_root(path: &Path) -> anyhow::Result<TrustRoot> {
    let bytes = read_capped(path, 64 * 1024, "sim root CA")?;
    let der = if bytes.starts_with(b"-----BEGIN") {
        let (label, der) = pem_rfc7468::decode_vec(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: not PEM: {e}", path.display()))?;
        if label != "CERTIFICATE" {
            bail!(
                "{}: PEM label {label:?}, expected CERTIFICATE",
                path.display()
            );
        }
        der
    } else {
        bytes
    };
    TrustRoot::custom(der).with_context(|| path.display().to_string())
}

fn fresh_nonce() -> anyhow::Result<[u8; 32]> {
    use rand_core::RngCore as _;
    let mut n = [0u8; 32];
    rand_core::OsRng
        .try_fill_bytes(&mut n)
        .map_err(|e| anyhow::anyhow!("no randomness for the nonce: {e}"))?;
    Ok(n)
}

#[derive(Serialize)]
struct Report<'a> {
    verdict: &'static str,
    url: &'a str,
    at: u64,
    at_utc: String,
    trust_root: &'static str,
    policy: String,
    tee: Option<&'static str>,
    nonce: String,
    /// The fresh quote's registers (or the certificate quote's, when the handshake
    /// was rejected), hex.
    registers: Option<Registers>,
    tcb_status: Option<String>,
    runtime_events: Vec<String>,
    /// Payout address and prices as the attested config states them (accepted only).
    terms: Option<Terms>,
    reasons: &'a [Reason],
    connection: &'a ConnectReport,
}

/// What a proxy pays under, read from the measured `config_toml`. `pricing` is `None`
/// when the text states none (the agent then uses its defaults: 20 nanoTON, 95 / 5 %).
#[derive(Serialize)]
struct Terms {
    owner_address: Option<String>,
    pricing: Option<serde_json::Value>,
    wallet_address: String,
}

impl Terms {
    fn of(a: &ratls::AttestationReport) -> Terms {
        let v: Option<toml::Table> = a.config_toml.parse().ok();
        let get = |k: &str| v.as_ref().and_then(|t| t.get(k));
        Terms {
            owner_address: get("owner_address")
                .and_then(|x| x.as_str())
                .map(str::to_string),
            pricing: get("pricing").and_then(|p| serde_json::to_value(p).ok()),
            wallet_address: a.wallet_address.clone(),
        }
    }
}

#[derive(Serialize)]
struct Registers {
    mrtd: String,
    rtmr0: String,
    rtmr1: String,
    rtmr2: String,
    rtmr3: String,
}

pub fn run(a: &Args) -> anyhow::Result<Outcome> {
    let text = std::fs::read_to_string(&a.policy)
        .with_context(|| format!("cannot read policy {}", a.policy.display()))?;
    let policy = Policy::from_toml(&text).with_context(|| a.policy.display().to_string())?;
    let trust_root = match &a.trust_sim_root {
        None => TrustRoot::Intel,
        Some(p) => load_root(p)?,
    };
    let collateral = match (&a.collateral, &a.pccs) {
        (Some(p), _) => {
            let bytes = read_capped(p, verify::MAX_COLLATERAL_BYTES as u64, "collateral")?;
            let c =
                verify::load_collateral_json(&bytes).with_context(|| p.display().to_string())?;
            CollateralSource::Fixed(Box::new(c))
        }
        (None, Some(url)) => CollateralSource::Pccs(url.clone()),
        (None, None) => CollateralSource::FromCertificate,
    };
    let config = RaTlsVerifierConfig {
        trust_root,
        policy,
        collateral,
        at: a.at,
    };
    let at = config.time();
    let trust = config.trust_root.describe();
    let nonce = fresh_nonce()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let conn = rt.block_on(ratls::connect_and_attest(&a.url, config, &nonce))?;

    let verdict = conn
        .attestation
        .as_ref()
        .and_then(|x| x.quote.as_ref())
        .or_else(|| conn.certificate.as_ref().and_then(|c| c.quote.as_ref()));
    let registers = verdict.map(|v| {
        let r = &v.quote.td_report;
        Registers {
            mrtd: r.mrtd.to_hex(),
            rtmr0: r.rtmr0.to_hex(),
            rtmr1: r.rtmr1.to_hex(),
            rtmr2: r.rtmr2.to_hex(),
            rtmr3: r.rtmr3.to_hex(),
        }
    });
    let report = Report {
        verdict: if conn.accepted {
            "accepted"
        } else {
            "rejected"
        },
        url: &a.url,
        at,
        at_utc: format_rfc3339_utc(at),
        trust_root: trust,
        policy: a.policy.display().to_string(),
        tee: conn
            .certificate
            .as_ref()
            .and_then(|c| c.tee)
            .map(|t| t.as_str()),
        nonce: hex::encode(nonce),
        registers,
        tcb_status: verdict
            .and_then(|v| v.tcb.as_ref())
            .map(|t| t.status.clone()),
        runtime_events: conn
            .attestation
            .as_ref()
            .map(|x| x.runtime_events.clone())
            .unwrap_or_default(),
        terms: conn
            .attestation
            .as_ref()
            .filter(|_| conn.accepted)
            .map(Terms::of),
        reasons: &conn.reasons,
        connection: &conn,
    };
    let text = render(&report);
    Outcome::new(Status::from_accepted(conn.accepted), &report, text)
}

fn render(r: &Report<'_>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} {} (tee={}, trust root: {}, at {})",
        r.verdict.to_uppercase(),
        r.url,
        r.tee.unwrap_or("?"),
        r.trust_root,
        r.at_utc
    );
    if r.connection.attestation.is_none() {
        let _ = writeln!(
            s,
            "  the handshake was rejected: /attestation was not asked"
        );
    }
    for reason in r.reasons {
        let _ = writeln!(s, "  {reason}");
    }
    if let Some(g) = &r.registers {
        let _ = writeln!(s, "measured registers:");
        for (name, v) in [
            ("mrtd", &g.mrtd),
            ("rtmr0", &g.rtmr0),
            ("rtmr1", &g.rtmr1),
            ("rtmr2", &g.rtmr2),
            ("rtmr3", &g.rtmr3),
        ] {
            let _ = writeln!(s, "  {name:<6} {v}");
        }
    }
    if let Some(t) = &r.tcb_status {
        let _ = writeln!(s, "TCB status: {t}");
    }
    if !r.runtime_events.is_empty() {
        let _ = writeln!(s, "runtime events: {}", r.runtime_events.join(", "));
    }
    if let Some(t) = &r.terms {
        let _ = writeln!(
            s,
            "owner address: {}",
            t.owner_address.as_deref().unwrap_or("(not stated)")
        );
        let _ = writeln!(
            s,
            "pricing: {}",
            t.pricing
                .as_ref()
                .map_or("(not stated: agent defaults)".to_string(), |p| p
                    .to_string())
        );
        let _ = writeln!(s, "receipt wallet: {}", t.wallet_address);
    }
    let _ = writeln!(s, "nonce: {}", r.nonce);
    s
}
