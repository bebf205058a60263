//! `candor audit`: probes a live API (driven by its OpenAPI document) or a
//! gateway (the fault suite of contract.md section 4).

use std::time::Duration;

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

/// A `--timeout`: a duration in the one grammar (`10s`, `1.5m`, `250ms`,
/// see docs/config.md#values) or, as these flags always took, a bare number
/// of seconds; longer than zero and at most `max`.
pub fn timeout(text: &str, max: Duration) -> Result<Duration, String> {
    let timeout = candor_contract::parse_duration_or_seconds(text).map_err(|e| e.to_string())?;
    if timeout.is_zero() {
        return Err("the timeout must be longer than zero".into());
    }
    if timeout > max {
        return Err(format!("the timeout is at most {} s", max.as_secs_f64()));
    }
    Ok(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_take_the_one_duration_grammar_and_bare_seconds() {
        let max = Duration::from_secs(600);
        assert_eq!(timeout("10s", max), Ok(Duration::from_secs(10)));
        assert_eq!(timeout("1500ms", max), Ok(Duration::from_millis(1500)));
        assert_eq!(timeout("250ms", max), Ok(Duration::from_millis(250)));
        assert_eq!(timeout("1.5m", max), Ok(Duration::from_secs(90)));
        assert_eq!(timeout("2m", max), Ok(Duration::from_secs(120)));
        assert_eq!(timeout("7", max), Ok(Duration::from_secs(7)));
        assert_eq!(timeout("600", max), Ok(max));
        assert_eq!(
            timeout("0s", max),
            Err("the timeout must be longer than zero".into())
        );
        assert_eq!(
            timeout("601", max),
            Err("the timeout is at most 600 s".into())
        );
        assert_eq!(
            timeout("2h", max),
            Err("the timeout is at most 600 s".into())
        );
        for bad in ["5 sec", "ms", "-1", "10S", ""] {
            let err = timeout(bad, max).unwrap_err();
            assert!(err.starts_with("invalid duration"), "{bad}: {err}");
        }
    }
}
