//! `candor audit`: probes a live API (driven by its OpenAPI document) or a
//! gateway (the fault suite of contract.md section 4).

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::Outcome;
use crate::audit_api::ApiArgs;
use crate::audit_gateway::GatewayArgs;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,

    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Run the gateway fault suite against a gateway that routes a prefix
    /// to `candor faults` and another to a closed port.
    Gateway(GatewayArgs),
}

pub fn run(args: AuditArgs) -> Result<Outcome> {
    match args.command {
        Some(AuditCommand::Gateway(gateway)) => crate::audit_gateway::run(gateway),
        None => crate::audit_api::run(args.api),
    }
}

/// The event loop both audits run on: two workers, enough for the probe
/// concurrency and the fault suite's timers.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
