//! `cocoon-measure gpu ...`: verify NVIDIA GPU confidential-computing evidence
//! offline (see `cocoon_measurements::gpu`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use cocoon_measurements::gpu::{
    self, certs, evidence, spdm::AttestationReport, CcMode, GpuEvidence, GpuPolicy, NonceBinding,
    RimInput, VerifyOptions,
};
use der::{Decode, Encode};

use crate::output::{Outcome, Status};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Verify one GPU's evidence: report signature, device chain to NVIDIA's root,
    /// FWID, nonce, RIMs, OCSP and the policy's [gpu] table. Exit 0 accepted,
    /// 1 rejected (every reason listed), 2 malformed input.
    Verify(Box<VerifyArgs>),
    /// Print the parsed attestation report (no verification).
    Inspect(InspectArgs),
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Attestation report (SPDM request || response): raw, hex text, or NVIDIA
    /// evidence JSON.
    #[arg(long, required_unless_present = "evidence_json")]
    report: Option<PathBuf>,
    /// Device certificate chain, leaf first: PEM, concatenated DER, hex, or NVIDIA
    /// evidence JSON.
    #[arg(long, required_unless_present = "evidence_json")]
    chain: Option<PathBuf>,
    /// NVIDIA evidence JSON (`[{arch, certificate, evidence, nonce}]`) giving both
    /// the report and the chain.
    #[arg(long, conflicts_with_all = ["report", "chain"])]
    evidence_json: Option<PathBuf>,
    /// Which GPU of a multi-GPU evidence JSON (0-based).
    #[arg(long)]
    gpu: Option<usize>,
    /// A RIM (signed SWID XML) to compare the measurements with; repeatable.
    #[arg(long)]
    rim: Vec<PathBuf>,
    /// Expected nonce (64 hex digits) when the verifier issued it.
    #[arg(long, conflicts_with = "tls_spki")]
    nonce: Option<String>,
    /// The agent's TLS public key (DER SubjectPublicKeyInfo, PEM PUBLIC KEY or PEM
    /// CERTIFICATE): the expected nonce is derived from it (gpu::nonce_for_tls_spki).
    #[arg(long)]
    tls_spki: Option<PathBuf>,
    /// Verification time in Unix seconds (certificate validity, OCSP). Default: now.
    #[arg(long)]
    at: Option<u64>,
    /// Policy TOML; its [gpu] table is applied.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// CC mode as the agent read it from NVML: on, off, devtools.
    #[arg(long)]
    cc_mode: Option<CcMode>,
    /// Stapled DER OCSP response; repeatable.
    #[arg(long)]
    ocsp: Vec<PathBuf>,
    /// Trust this device root instead of NVIDIA's pinned one (test PKIs).
    #[arg(long)]
    device_root: Option<PathBuf>,
    /// Trust this RIM root instead of NVIDIA's pinned one (test PKIs).
    #[arg(long)]
    rim_root: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Attestation report: raw, hex text, or NVIDIA evidence JSON.
    #[arg(long)]
    report: PathBuf,
}

pub fn run(cmd: &Command) -> anyhow::Result<Outcome> {
    match cmd {
        Command::Verify(a) => verify(a),
        Command::Inspect(a) => inspect(a),
    }
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {what} {}", path.display()))
}

fn root(path: Option<&PathBuf>, pinned: &str, what: &str) -> anyhow::Result<certs::Cert> {
    let bytes = match path {
        Some(p) => read(p, what)?,
        None => pinned.as_bytes().to_vec(),
    };
    let mut chain = certs::parse_chain(&bytes).with_context(|| format!("parsing {what}"))?;
    if chain.len() != 1 {
        bail!("{what}: expected one certificate, found {}", chain.len());
    }
    Ok(chain.remove(0))
}

/// The SPKI DER of a public key file: DER SPKI, PEM PUBLIC KEY, or a certificate.
fn spki_der(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    if let Ok((label, der)) = pem_rfc7468::decode_vec(bytes) {
        return match label {
            "PUBLIC KEY" => Ok(der),
            "CERTIFICATE" => Ok(x509_cert::Certificate::from_der(&der)
                .context("TLS certificate")?
                .tbs_certificate
                .subject_public_key_info
                .to_der()?),
            other => {
                bail!("TLS key file: PEM label {other:?} (PUBLIC KEY or CERTIFICATE expected)")
            }
        };
    }
    x509_cert::spki::SubjectPublicKeyInfoRef::from_der(bytes)
        .context("TLS key file: not a DER SubjectPublicKeyInfo")?;
    Ok(bytes.to_vec())
}

fn verify(a: &VerifyArgs) -> anyhow::Result<Outcome> {
    let at = match a.at {
        Some(t) => t,
        None => SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs(),
    };
    let (report, chain, claimed_nonce) = match &a.evidence_json {
        Some(p) => {
            let all = evidence::parse_json(&read(p, "evidence JSON")?)
                .with_context(|| format!("parsing {}", p.display()))?;
            let e = evidence::select(all, a.gpu)?;
            (e.report, e.chain, e.nonce)
        }
        None => {
            let (Some(rp), Some(cp)) = (&a.report, &a.chain) else {
                bail!("--report and --chain (or --evidence-json) are required");
            };
            let report = evidence::decode_report(&read(rp, "report")?)
                .with_context(|| format!("parsing {}", rp.display()))?;
            let chain = evidence::decode_chain(&read(cp, "certificate chain")?)
                .with_context(|| format!("parsing {}", cp.display()))?;
            (report, chain, None)
        }
    };

    let policy = match &a.policy {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading policy {}", p.display()))?;
            Some(
                GpuPolicy::from_policy_toml(&text)
                    .with_context(|| format!("policy {}", p.display()))?,
            )
        }
        None => None,
    };

    let expected_nonce = match (&a.nonce, &a.tls_spki) {
        (Some(n), _) => {
            Some(evidence::parse_nonce(n).map_err(|e| anyhow::anyhow!("--nonce: {e}"))?)
        }
        (None, Some(p)) => Some(gpu::nonce_for_tls_spki(&spki_der(&read(p, "TLS key")?)?)),
        (None, None) => None,
    };
    if let Some(policy) = &policy {
        match (policy.nonce_binding, &a.nonce, &a.tls_spki) {
            (NonceBinding::TlsSpkiSha256, Some(_), _) => bail!(
                "the policy binds the nonce to the agent's TLS key (nonce_binding = \"tls-spki-sha256\"): pass --tls-spki, not --nonce"
            ),
            (NonceBinding::Caller, _, Some(_)) => bail!(
                "the policy expects a caller-issued nonce (nonce_binding = \"caller\"): pass --nonce, not --tls-spki"
            ),
            _ => {}
        }
    }

    let mut rims = Vec::new();
    if let (Some(policy), Some(policy_path)) = (&policy, &a.policy) {
        let base = policy_path.parent().unwrap_or(Path::new("."));
        for pin in &policy.rims {
            let path = base.join(&pin.path);
            let mut sha = [0u8; 32];
            hex::decode_to_slice(&pin.sha256, &mut sha)
                .with_context(|| format!("policy rims: sha256 of {}", pin.path.display()))?;
            rims.push(RimInput {
                label: pin.path.display().to_string(),
                bytes: read(&path, "RIM")?,
                pinned_sha256: Some(sha),
            });
        }
    }
    for p in &a.rim {
        rims.push(RimInput {
            label: p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string()),
            bytes: read(p, "RIM")?,
            pinned_sha256: None,
        });
    }
    let ocsp = a
        .ocsp
        .iter()
        .map(|p| read(p, "OCSP response"))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let opts = VerifyOptions {
        at,
        expected_nonce,
        device_root: root(
            a.device_root.as_ref(),
            gpu::NVIDIA_DEVICE_ROOT_PEM,
            "device root",
        )?,
        rim_root: root(a.rim_root.as_ref(), gpu::NVIDIA_RIM_ROOT_PEM, "RIM root")?,
        rims,
        policy,
    };
    let ev = GpuEvidence {
        report,
        chain,
        claimed_nonce,
        cc_mode: a.cc_mode,
        ocsp,
    };
    let verdict = gpu::verify(&ev, &opts)?;

    let mut text = format!(
        "GPU evidence {} at Unix {at}\n  driver {}  VBIOS {}  nonce {}\n  RIM indices matched {:?}, mismatched {:?}\n",
        verdict.verdict.to_uppercase(),
        verdict.driver_version.as_deref().unwrap_or("?"),
        verdict.vbios_version.as_deref().unwrap_or("?"),
        verdict.nonce,
        verdict.rim.matched,
        verdict.rim.mismatched,
    );
    for r in &verdict.reasons {
        text.push_str(&format!("  - [{}] {}\n", r.code, r.message));
    }
    Outcome::new(Status::from_accepted(verdict.accepted()), &verdict, text)
}

fn inspect(a: &InspectArgs) -> anyhow::Result<Outcome> {
    let bytes = evidence::decode_report(&read(&a.report, "report")?)
        .with_context(|| format!("parsing {}", a.report.display()))?;
    let r = AttestationReport::parse(&bytes)
        .with_context(|| format!("parsing {}", a.report.display()))?;
    let json = serde_json::json!({
        "length": bytes.len(),
        "request": r.request,
        "spdm_version": format!("0x{:02x}", r.response_version),
        "driver_version": r.driver_version(),
        "vbios_version": r.vbios_version(),
        "project": r.project(),
        "project_sku": r.project_sku(),
        "chip_sku": r.chip_sku(),
        "fwid": r.fwid().map(hex::encode),
        "blocks": r.blocks,
        "opaque": r.opaque,
    });
    let mut text = format!(
        "SPDM report, {} bytes, {} measurement blocks\n  nonce {}\n  driver {}  VBIOS {}\n",
        bytes.len(),
        r.blocks.len(),
        hex::encode(r.request.nonce),
        r.driver_version().unwrap_or_default(),
        r.vbios_version().unwrap_or_default()
    );
    for b in &r.blocks {
        text.push_str(&format!(
            "  block {:3}: {}\n",
            b.index,
            hex::encode(&b.value)
        ));
    }
    Outcome::new(Status::Ok, &json, text)
}
