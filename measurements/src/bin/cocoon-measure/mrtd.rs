//! `cocoon-measure mrtd`: MRTD of an OVMF/TDVF firmware image, with the TDVF section
//! table it was computed from.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use cocoon_measurements::mrtd::{self, MrtdReport, PageOrder, SectionMeasurement};

use crate::output::{Outcome, Status};

/// The VMM's page order (see `PageOrder` in the library for which VMM does which).
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum OrderArg {
    /// QEMU using KVM_TDX_INIT_MEM_REGION (upstream 10.1+ / Linux 6.16+, TDX 9.x builds): each page added, then extended.
    PageByPage,
    /// TDX QEMU 8.x builds (KVM_MEMORY_MAPPING + KVM_TDX_EXTEND_MEMORY): per section, all pages added, then extended.
    AllPagesFirst,
}

impl From<OrderArg> for PageOrder {
    fn from(o: OrderArg) -> Self {
        match o {
            OrderArg::PageByPage => PageOrder::PageByPage,
            OrderArg::AllPagesFirst => PageOrder::AllPagesFirst,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// OVMF/TDVF firmware image (e.g. /usr/share/ovmf/OVMF.fd).
    #[arg(long, value_name = "FILE")]
    firmware: PathBuf,
    /// Order in which the VMM adds and extends firmware pages.
    #[arg(long, value_enum, default_value = "page-by-page")]
    page_order: OrderArg,
}

pub fn run(args: &Args) -> anyhow::Result<Outcome> {
    let report = mrtd::mrtd_from_file(&args.firmware, args.page_order.into())
        .with_context(|| format!("firmware {}", args.firmware.display()))?;
    let text = render(&report, &args.firmware);
    Outcome::new(Status::Ok, &report, text)
}

fn kib(bytes: u64) -> String {
    if bytes % 1024 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

fn render(r: &MrtdReport, path: &std::path::Path) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "MRTD        {}", r.mrtd);
    let _ = writeln!(t, "page order  {}", r.page_order);
    let _ = writeln!(
        t,
        "firmware    {} ({} bytes, sha256 {})",
        path.display(),
        r.firmware_size,
        r.firmware_sha256
    );
    let _ = writeln!(
        t,
        "TDVF sections (descriptor at byte offset {:#x}), in measurement order:",
        r.tdvf_descriptor_offset
    );
    let _ = writeln!(
        t,
        "  #  type          guest physical range        size       from image           measured"
    );
    for m in &r.sections {
        let s = &m.section;
        let from_image = if s.raw_data_size == 0 {
            "-".to_string()
        } else {
            format!("{:#x}+{:#x}", s.data_offset, s.raw_data_size)
        };
        let measured = match m.measurement {
            SectionMeasurement::PageAddAndExtend => format!(
                "PAGE.ADD x{} + MR.EXTEND x{}",
                m.pages_added, m.chunks_extended
            ),
            SectionMeasurement::PageAdd => format!("PAGE.ADD x{} (GPA only)", m.pages_added),
            SectionMeasurement::NotMeasured => "PAGE.AUG later (not in MRTD)".to_string(),
        };
        let _ = writeln!(
            t,
            "  {:<2} {:<13} {:#012x}-{:#012x}   {:<10} {:<20} {}",
            s.index,
            s.section_type.name(),
            s.memory_address,
            s.memory_end(),
            kib(s.memory_data_size),
            from_image,
            measured
        );
    }
    for n in &r.notes {
        let _ = writeln!(t, "note: {n}");
    }
    t
}
