//! `cocoon-measure eventlog ...`. TODO: filled in by its owner.

use crate::output::Outcome;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Not implemented yet.
    Todo,
}

pub fn run(_cmd: &Command) -> anyhow::Result<Outcome> {
    anyhow::bail!("eventlog: not implemented yet")
}
