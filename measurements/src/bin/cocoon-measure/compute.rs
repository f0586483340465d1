//! `cocoon-measure compute`. TODO: filled in by its owner.

use crate::output::Outcome;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: &Args) -> anyhow::Result<Outcome> {
    anyhow::bail!("compute: not implemented yet")
}
