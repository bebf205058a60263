//! `candor-reference-api`: runs the reference accounts service.
//!
//! Exit codes: 0 after a clean shutdown (Ctrl-C / SIGTERM), 1 when the
//! service cannot start or stops serving, 2 for bad arguments.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::process::ExitCode;
use std::time::Duration;

use candor_reference_api::{
    Config, DEFAULT_DB, DEFAULT_PASSWORD_ITERATIONS, DbLocation, FailSwitch, serve_with_shutdown,
};
use clap::Parser;

/// The candor reference API: a small accounts service that keeps the HTTP
/// status-code contract.
#[derive(Debug, Parser)]
#[command(name = "candor-reference-api", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// SQLite database file (its directory is created), or `:memory:`.
    #[arg(long, default_value = DEFAULT_DB)]
    db: String,
    /// Start with the simulated database failure on (toggle it at runtime
    /// with `POST /-/fail-db {"on": false}`).
    #[arg(long)]
    fail_db: bool,
    /// How long an export stays pending, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    export_delay_ms: u64,
    /// PBKDF2 iterations for new password hashes.
    #[arg(long, default_value_t = DEFAULT_PASSWORD_ITERATIONS)]
    password_iterations: NonZeroU32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("candor-reference-api: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let config = Config {
        db: DbLocation::parse(&args.db),
        fail_db: FailSwitch::new(args.fail_db),
        export_delay: Duration::from_millis(args.export_delay_ms),
        password_iterations: args.password_iterations,
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "candor-reference-api: cannot listen on {}: {e}",
                args.listen
            );
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!(
            "candor-reference-api listening on http://{addr} (db: {})",
            args.db
        ),
        Err(e) => {
            eprintln!("candor-reference-api: {e}");
            return ExitCode::FAILURE;
        }
    }
    match serve_with_shutdown(listener, config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("candor-reference-api: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
