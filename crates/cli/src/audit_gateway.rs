//! `candor audit gateway`: the gateway fault suite.

use anyhow::Result;
use clap::Args;

use crate::Outcome;
use crate::report_args::ReportArgs;

#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The gateway's base URL.
    #[arg(long, value_name = "URL")]
    pub url: String,

    #[command(flatten)]
    pub report: ReportArgs,
}

pub fn run(_args: GatewayArgs) -> Result<Outcome> {
    anyhow::bail!("candor audit gateway: being built")
}
