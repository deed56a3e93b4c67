//! `report`: reads the `--json` outcomes of a run and writes the comparison.

use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Directory of `<broker>__<case>.json` outcome files.
    #[arg(long)]
    pub results: PathBuf,
}

pub fn run(_args: &Args) -> anyhow::Result<()> {
    Ok(())
}
