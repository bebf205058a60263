//! The `candor` binary: argument parsing and exit codes, nothing else.
//!
//! Exit codes are part of the interface: 0 clean, 1 a finding reached
//! `--fail-on`, 2 a usage or input error. A closed stdout exits quietly.

mod lint;
mod rules;

use std::io;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The HTTP status-code contract, executable.
#[derive(Debug, Parser)]
#[command(name = "candor", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lint recorded traffic (HAR 1.2 or JSON lines, optionally gzipped)
    /// against the contract's passive rules.
    Lint(lint::LintArgs),
    /// Print the rule catalog.
    Rules(rules::RulesArgs),
}

/// Outcome of a command, mapped to the process exit code in one place.
pub enum Outcome {
    /// Nothing reached the failure threshold.
    Clean,
    /// A finding reached the failure threshold.
    Findings,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Lint(args) => lint::run(args),
        Command::Rules(args) => rules::run(args),
    };
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(1),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("candor: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
