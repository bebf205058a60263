//! The `candor` binary: argument parsing and exit codes, nothing else.
//!
//! Exit codes are part of the interface: 0 clean, 1 a finding reached
//! `--fail-on`, 2 a usage or input error. A closed stdout exits quietly.

mod audit;
mod audit_api;
mod audit_gateway;
mod demo;
mod faults;
mod lint;
mod report_args;
mod rules;
mod serve;
mod shell;
mod token;

use std::io;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

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
    /// against the contract's passive rules, and OpenAPI 3.0/3.1 documents
    /// against its static rules.
    Lint(lint::LintArgs),
    /// Probe a live API driven by its OpenAPI document, or (`audit
    /// gateway`) run the gateway fault suite.
    Audit(audit::AuditArgs),
    /// Print the rule catalog.
    Rules(rules::RulesArgs),
    /// Run the gateway.
    Serve(serve::ServeArgs),
    /// Validate gateway configuration files.
    CheckConfig(serve::CheckConfigArgs),
    /// Start the whole flow on loopback: the gateway in front of the
    /// reference accounts service (SQLite), with a guided tour.
    Demo(demo::DemoArgs),
    /// Run the fault-injection upstream (for tests, audits and benchmarks).
    Faults(faults::FaultsArgs),
    /// Mint a bearer token (JWT) for a configuration's `[auth.jwt]`, to try
    /// its routes: prints the token alone on one line.
    Token(token::TokenArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(shell::CompletionsArgs),
    /// Print the manual page (roff) to stdout.
    Man,
}

/// Outcome of a command, mapped to the process exit code in one place.
pub enum Outcome {
    /// Nothing reached the failure threshold.
    Clean,
    /// A finding reached the failure threshold.
    Findings,
}

fn main() -> ExitCode {
    // One crypto provider for every TLS user in the process.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
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
        Command::Audit(args) => audit::run(args),
        Command::Rules(args) => rules::run(args),
        Command::Serve(args) => serve::serve(args),
        Command::CheckConfig(args) => serve::check_config(args),
        Command::Faults(args) => faults::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Token(args) => token::run(args),
        Command::Completions(args) => shell::completions(args, Cli::command()),
        Command::Man => shell::man(Cli::command()),
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

/// The log filter when `RUST_LOG` does not set one: candor's own lines from
/// `info` up, but the TLS and HTTP libraries' only from `error` up. Their
/// warnings are about what a peer sent (rustls warns on every ClientHello
/// that names an IP address as server name, h2 on a stray PING ack), so at
/// `info` any client could fill the disk with them at will.
const DEFAULT_LOG_FILTER: &str =
    "info,rustls=error,tokio_rustls=error,h2=error,hyper=error,hyper_util=error";

/// Operational logs go to stderr (access logs, when on, to stdout or their
/// file). `RUST_LOG` filters them, replacing `DEFAULT_LOG_FILTER`.
pub fn init_tracing() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let no_color = std::env::var_os("NO_COLOR");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour(io::stderr().is_terminal(), no_color.as_deref()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Colour only on a terminal, and not when `NO_COLOR` is set to anything
/// but the empty string (no-color.org).
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// Whether an error is a closed stdout (`candor ... | head`), however it
/// was wrapped: that ends the command quietly, with exit 0, as ripgrep does.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<io::Error>()
            .map(io::Error::kind)
            .or_else(|| {
                cause
                    .downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            });
        kind == Some(io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// A log sink the test can read.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(super::colour(true, None));
        assert!(super::colour(true, Some(OsStr::new(""))));
        assert!(!super::colour(true, Some(OsStr::new("1"))));
        assert!(!super::colour(false, None));
        assert!(!super::colour(false, Some(OsStr::new("1"))));
    }

    #[test]
    fn the_default_filter_keeps_peer_triggered_library_warnings_out() {
        let out = Captured::default();
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                super::DEFAULT_LOG_FILTER,
            ))
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(target: "rustls::msgs::handshake", "Illegal SNI extension");
            tracing::warn!(target: "h2::proto::ping_pong", "recv PING ack that we never sent");
            tracing::error!(target: "rustls::common_state", "traffic keys exhausted");
            tracing::info!(target: "candor_gateway::server", "configuration reloaded");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("Illegal SNI"), "{text}");
        assert!(!text.contains("PING"), "{text}");
        assert!(text.contains("traffic keys exhausted"), "{text}");
        assert!(text.contains("configuration reloaded"), "{text}");
    }
}
