//! `candor-reference-auth`: runs the reference auth service (RFC 7662
//! token introspection on its own SQLite store of sessions).
//!
//! Exit codes: 0 after a clean shutdown (Ctrl-C / SIGTERM), 1 when the
//! service cannot start or stops serving, 2 for bad arguments.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::SystemTime;

use candor_reference_api::{AuthConfig, AuthService, DbLocation, SESSION_TTL};
use clap::Parser;

/// The candor reference auth service: answers `POST /introspect` with
/// `token=<token>` as RFC 7662 does; `/-/auth/fail-db`, `/-/auth/hang-db`
/// and `/-/auth/invalid-answers` (`{"on": true}`) simulate its failures.
#[derive(Debug, Parser)]
#[command(name = "candor-reference-auth", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port (printed on start).
    #[arg(long, default_value = "127.0.0.1:8083")]
    listen: SocketAddr,
    /// SQLite database file of sessions (its directory is created), or
    /// `:memory:`.
    #[arg(long, default_value = "data/auth.db")]
    db: String,
    /// A session to store at start, `TOKEN=SUBJECT` or
    /// `TOKEN=SUBJECT:ROLE,ROLE`, valid for a day. Repeatable.
    #[arg(long = "session", value_name = "TOKEN=SUBJECT[:ROLES]", value_parser = session)]
    sessions: Vec<(String, String, Vec<String>)>,
}

fn session(text: &str) -> Result<(String, String, Vec<String>), String> {
    let (token, rest) = text
        .split_once('=')
        .ok_or("expected TOKEN=SUBJECT[:ROLES]")?;
    let (subject, roles) = rest.split_once(':').unwrap_or((rest, ""));
    if token.is_empty() || subject.is_empty() {
        return Err("the token and the subject must not be empty".into());
    }
    let roles = roles
        .split(',')
        .filter(|r| !r.is_empty())
        .map(Into::into)
        .collect();
    Ok((token.into(), subject.into(), roles))
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
            eprintln!("candor-reference-auth: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("candor-reference-auth: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let service = AuthService::open(AuthConfig {
        db: Some(DbLocation::parse(&args.db)),
        ..AuthConfig::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    for (token, subject, roles) in &args.sessions {
        let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
        service
            .add_session(token, subject, &roles, SystemTime::now() + SESSION_TTL)
            .await
            .map_err(|e| format!("storing a session: {e}"))?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!(
        "candor-reference-auth listening on http://{addr} (db: {})",
        args.db
    );
    let switches = service.switches();
    axum::serve(listener, service.router())
        .with_graceful_shutdown(async move {
            stop_signal().await;
            // Requests held by a hung database end with the switch.
            switches.hang_db.set(false);
        })
        .await
        .map_err(|e| format!("serving: {e}"))
}

/// Ctrl-C, or SIGTERM.
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
