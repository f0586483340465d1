//! `cocoon-measure compute`: the measurements a TD booting a UKI must show.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use cocoon_measurements::boot::{
    self, ComputeInputs, LogFlavor, Rtmr12Prediction, UkiOptions, RTMR0_NOTE_NO_ACPI,
};
use cocoon_measurements::event::MeasuredEvent;
use cocoon_measurements::expected::{ExpectedMeasurements, ImageBuild, ImageMeasurements};
use cocoon_measurements::hashplan::RunOptions;
use cocoon_measurements::mrtd::PageOrder;
use cocoon_measurements::Register;
use sha2::{Digest as _, Sha256};

use crate::output::{Outcome, Status};

/// Files at least this large get a progress line on a terminal.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum PageOrderArg {
    /// Current QEMU: each page is added and extended in turn.
    PageByPage,
    /// Older QEMU: all pages added first, then all extends.
    AllPagesFirst,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum FlavorArg {
    /// A TDX guest's CCEL log (one separator in RTMR1). The default.
    Tdx,
    /// A TPM log (swtpm/vTPM test boots): separators for PCR 2-6, i.e. five in RTMR1.
    Tpm,
}

#[derive(clap::Args, Debug)]
#[command(
    long_about = "Predict the measurements of a TD that QEMU boots with `-kernel UKI` and the \
given OVMF/TDVF firmware: MRTD from the firmware, RTMR1 and RTMR2 from the UKI (every event \
with its digest and what it covers), RTMR0 when it can be computed (otherwise why not).\n\n\
Assumes no -append and no -initrd, no option ROMs (-net none) and a systemd-stub 257 UKI; \
see measurements/README.md (boot events). With --json prints the measurements.json object (without \
--firmware: the RTMR1/RTMR2 prediction only). A malformed UKI exits 2 naming the field and \
byte offset."
)]
pub struct Args {
    /// OVMF/TDVF firmware image, for MRTD. Without it only RTMR1 and RTMR2 are computed.
    #[arg(long)]
    pub firmware: Option<PathBuf>,
    /// The unified kernel image QEMU boots with -kernel.
    #[arg(long)]
    pub uki: PathBuf,
    /// An ACPI table blob QEMU generates (for RTMR0); repeat for each.
    #[arg(long)]
    pub acpi: Vec<PathBuf>,
    /// How the VMM adds and measures firmware pages (MRTD).
    #[arg(long, value_enum, default_value = "page-by-page")]
    pub page_order: PageOrderArg,
    /// Which firmware event log to predict.
    #[arg(long, value_enum, default_value = "tdx")]
    pub flavor: FlavorArg,
    /// Hashing threads (default: every available core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Image profile to record under `image` (image builds; needs --firmware).
    #[arg(long)]
    pub profile: Option<String>,
    /// A further artefact whose SHA-256 is recorded under `image.artefacts` by file name;
    /// repeat for each (image builds; needs --firmware).
    #[arg(long)]
    pub artefact: Vec<PathBuf>,
    /// `NAME=VERSION` of a tool that produced the artefacts, recorded under `image.tools`;
    /// repeat for each (image builds; needs --firmware).
    #[arg(long)]
    pub tool: Vec<String>,
}

pub fn run(args: &Args) -> anyhow::Result<Outcome> {
    let flavor = match args.flavor {
        FlavorArg::Tdx => LogFlavor::Tdx,
        FlavorArg::Tpm => LogFlavor::Tpm,
    };
    let size = std::fs::metadata(&args.uki)
        .with_context(|| format!("reading {}", args.uki.display()))?
        .len();
    let shown = AtomicU64::new(u64::MAX);
    let progress = |done: u64, total: u64| {
        let pct = done.saturating_mul(100) / total.max(1);
        if shown.swap(pct, Ordering::Relaxed) != pct {
            eprint!("\rhashing {}: {pct:3}%", args.uki.display());
            if done >= total {
                eprintln!();
            }
        }
    };
    let show_progress = size >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal();
    let opts = UkiOptions {
        flavor,
        run: RunOptions {
            threads: args.threads,
            chunk: None,
            progress: show_progress.then_some(&progress as &(dyn Fn(u64, u64) + Sync)),
        },
    };

    let Some(firmware) = &args.firmware else {
        if args.profile.is_some() || !args.artefact.is_empty() || !args.tool.is_empty() {
            anyhow::bail!(
                "--profile, --artefact and --tool need --firmware (a full measurements.json)"
            );
        }
        let p = boot::compute_uki_with(&args.uki, &opts)?;
        let mut text = header_text(&p, "not computed (no --firmware given)");
        text.push_str(&format!("RTMR0  {RTMR0_NOTE_NO_ACPI}\n"));
        text.push_str(&registers_text(p.rtmr1, p.rtmr2, &p.events));
        return Outcome::new(Status::Ok, &p, text);
    };
    let inputs = ComputeInputs {
        firmware: firmware.clone(),
        uki: args.uki.clone(),
        acpi: args.acpi.clone(),
        page_order: match args.page_order {
            PageOrderArg::PageByPage => PageOrder::PageByPage,
            PageOrderArg::AllPagesFirst => PageOrder::AllPagesFirst,
        },
        flavor,
    };
    let m = boot::compute(&inputs)?;
    let mut text = expected_text(&m, &args.uki);
    if args.profile.is_none() && args.artefact.is_empty() && args.tool.is_empty() {
        return Outcome::new(Status::Ok, &m, text);
    }
    let image = image_build(args, m.inputs.cmdline.as_deref())?;
    text.push_str(&image_text(&image));
    let out = ImageMeasurements {
        measurements: m,
        image,
    };
    Outcome::new(Status::Ok, &out, text)
}

/// The `image` record of an image build's measurements.json.
fn image_build(args: &Args, cmdline: Option<&str>) -> anyhow::Result<ImageBuild> {
    let mut image = ImageBuild {
        profile: args.profile.clone(),
        verity_root_hash: cmdline.and_then(ImageBuild::verity_root_hash_from_cmdline),
        ..ImageBuild::default()
    };
    for path in &args.artefact {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("--artefact {}: no file name", path.display()))?
            .to_string();
        let mut f = std::fs::File::open(path)
            .with_context(|| format!("--artefact: reading {}", path.display()))?;
        let mut h = Sha256::new();
        std::io::copy(&mut f, &mut h)
            .with_context(|| format!("--artefact: reading {}", path.display()))?;
        if image
            .artefacts
            .insert(name.clone(), hex::encode(h.finalize()))
            .is_some()
        {
            anyhow::bail!("--artefact: two artefacts named {name}");
        }
    }
    for t in &args.tool {
        let Some((name, version)) = t
            .split_once('=')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        else {
            anyhow::bail!("--tool {t:?}: expected NAME=VERSION");
        };
        if image
            .tools
            .insert(name.to_string(), version.to_string())
            .is_some()
        {
            anyhow::bail!("--tool: {name} given twice");
        }
    }
    Ok(image)
}

fn image_text(image: &ImageBuild) -> String {
    let mut t = format!(
        "\nimage profile {}\nverity root hash {}\n",
        image.profile.as_deref().unwrap_or("-"),
        image
            .verity_root_hash
            .as_deref()
            .unwrap_or("- (no roothash= on the command line)")
    );
    for (name, sum) in &image.artefacts {
        t.push_str(&format!("artefact {name} sha256 {sum}\n"));
    }
    for (name, version) in &image.tools {
        t.push_str(&format!("tool {name} {version}\n"));
    }
    t
}

fn header_text(p: &Rtmr12Prediction, mrtd: &str) -> String {
    let mut t = format!(
        "UKI    {} bytes, sha256 {}\n       systemd-stub {}",
        p.uki_size, p.uki_sha256, p.stub_version
    );
    if let Some(k) = &p.kernel_release {
        t.push_str(&format!(", kernel {k}"));
    }
    if let Some(c) = &p.cmdline {
        t.push_str(&format!(", cmdline {c:?}"));
    }
    t.push_str(&format!(
        "\n       {:?} log flavour\nMRTD   {mrtd}\n",
        p.flavor
    ));
    t
}

fn expected_text(m: &ExpectedMeasurements, uki: &std::path::Path) -> String {
    let mut t = format!(
        "UKI    {} (sha256 {})\n       systemd-stub {}",
        uki.display(),
        m.inputs.uki_sha256,
        m.inputs.stub_version.as_deref().unwrap_or("?")
    );
    if let Some(c) = &m.inputs.cmdline {
        t.push_str(&format!(", cmdline {c:?}"));
    }
    t.push_str(&format!(
        "\nfirmware sha256 {}\nMRTD   {}\n",
        m.inputs.firmware_sha256, m.mrtd
    ));
    match (&m.rtmr0, &m.rtmr0_note) {
        (Some(v), _) => t.push_str(&format!("RTMR0  {v}\n")),
        (None, Some(note)) => t.push_str(&format!("RTMR0  {note}\n")),
        (None, None) => t.push_str("RTMR0  not computed\n"),
    }
    t.push_str(&registers_text(m.rtmr1, m.rtmr2, &m.events));
    t
}

fn registers_text(
    rtmr1: cocoon_measurements::Digest48,
    rtmr2: cocoon_measurements::Digest48,
    events: &[MeasuredEvent],
) -> String {
    let mut t = format!("RTMR1  {rtmr1}\nRTMR2  {rtmr2}\n");
    for reg in [Register::Rtmr1, Register::Rtmr2] {
        t.push_str(&format!("\n{} events:\n", reg.name().to_uppercase()));
        for (i, e) in events.iter().filter(|e| e.register == reg).enumerate() {
            let pcr = e
                .pcr
                .map_or_else(|| "  -".to_string(), |p| format!("{p:3}"));
            t.push_str(&format!(
                "  {:2}  PCR{pcr}  {:<33} {}\n                 {}\n",
                i + 1,
                e.event_type_name,
                e.digest,
                e.description
            ));
        }
    }
    t
}
