//! `sluice ctl`: the admin API from the command line.

use std::process::ExitCode;

/// Options of `sluice ctl` (filled in by the ctl work).
#[derive(Debug, clap::Args)]
pub(crate) struct CtlArgs {}

pub(crate) fn ctl(_args: CtlArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("sluice ctl is not built yet")
}
