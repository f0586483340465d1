//! `cocoon-host gpu bind|unbind BDF`.

use std::path::PathBuf;

use cocoon_host::bdf::Bdf;
use cocoon_host::gpu::bind;
use cocoon_host::sysroot::SysRoot;

use crate::output::{Outcome, Status};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Bind a GPU to vfio-pci (driver_override + unbind + probe), remembering its driver.
    Bind(Args),
    /// Give a GPU back to the driver it had before `bind`.
    Unbind(Args),
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// PCI address, e.g. 0000:17:00.0.
    bdf: Bdf,
    /// Read and write /sys, /proc and /run under this directory instead of / (fixture trees).
    #[arg(long, default_value = "/")]
    root: PathBuf,
}

pub fn run(cmd: &Command) -> anyhow::Result<Outcome> {
    let (report, verb) = match cmd {
        Command::Bind(a) => (bind::bind(&SysRoot::new(&a.root), &a.bdf)?, "bind"),
        Command::Unbind(a) => (bind::unbind(&SysRoot::new(&a.root), &a.bdf)?, "unbind"),
    };
    let name = |d: &Option<String>| d.clone().unwrap_or_else(|| "no driver".into());
    let text = if report.changed {
        format!(
            "{verb} {}: {} -> {}",
            report.bdf,
            name(&report.from),
            name(&report.to)
        )
    } else {
        format!("{verb} {}: already on {}", report.bdf, name(&report.to))
    };
    Outcome::new(Status::Ok, &report, text)
}
