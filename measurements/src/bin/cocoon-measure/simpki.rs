//! `cocoon-measure sim-pki`: write a simulated TEE's PKI, deterministically from a seed.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use cocoon_measurements::sim::{files, SimPki};
use cocoon_measurements::verify::time::format_rfc3339_utc;

use crate::output::{Outcome, Status};

/// The extra copy of the root for verifiers (`connect --trust-sim-root`).
pub const ROOT_CA_COPY: &str = "root-ca.der";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// 32-byte seed, 64 hex digits: every key and certificate is derived from it.
    #[arg(long)]
    seed: String,
    /// Start of every validity period, Unix seconds.
    #[arg(long = "not-before")]
    not_before: u64,
    /// End of every validity period, Unix seconds.
    #[arg(long = "not-after")]
    not_after: u64,
    /// Output directory (created; existing files of the same names are replaced).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Serialize)]
struct Report {
    out: String,
    root_ca_der: String,
    root_ca_sha256: String,
    not_before: u64,
    not_after: u64,
    files: Vec<&'static str>,
}

pub fn run(a: &Args) -> anyhow::Result<Outcome> {
    let bytes = hex::decode(a.seed.trim()).context("--seed: not hex")?;
    let Ok(seed) = <[u8; 32]>::try_from(bytes.as_slice()) else {
        bail!("--seed: {} bytes, expected 32 (64 hex digits)", bytes.len());
    };
    let pki = SimPki::from_seed(seed, a.not_before, a.not_after)?;
    pki.save(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    let copy = a.out.join(ROOT_CA_COPY);
    std::fs::write(&copy, pki.root_ca_der())
        .with_context(|| format!("writing {}", copy.display()))?;
    let report = Report {
        out: a.out.display().to_string(),
        root_ca_der: copy.display().to_string(),
        root_ca_sha256: hex::encode(Sha256::digest(pki.root_ca_der())),
        not_before: a.not_before,
        not_after: a.not_after,
        files: vec![
            ROOT_CA_COPY,
            files::ROOT_CA_DER,
            files::ROOT_CA_PEM,
            files::COLLATERAL_JSON,
            files::PCK_CHAIN_PEM,
            files::PLATFORM_JSON,
            files::PCK_KEY_PEM,
            files::ATTESTATION_KEY_PEM,
        ],
    };
    let text = format!(
        "simulated TEE PKI written to {} (valid {} .. {})\n  root CA {} (sha256 {})\n  \
         verifiers: cocoon-measure connect --trust-sim-root {}\n",
        report.out,
        format_rfc3339_utc(a.not_before),
        format_rfc3339_utc(a.not_after),
        report.root_ca_der,
        report.root_ca_sha256,
        report.root_ca_der
    );
    Outcome::new(Status::Ok, &report, text)
}
