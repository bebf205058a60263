//! `candor faults`: runs the misbehaving upstream from candor-faults in the
//! foreground, for gateways under test and benchmarks, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use clap::Args;
use tokio::net::TcpListener;

use crate::Outcome;

#[derive(Debug, Args)]
pub struct FaultsArgs {
    /// Address to listen on (port 0 picks a free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
}

pub fn run(args: FaultsArgs) -> Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Signals first, so a stop that arrives while binding is not lost.
        let stop = stop_signal()?;
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        eprintln!("candor faults listening on http://{addr}");
        candor_faults::serve(listener, stop)
            .await
            .context("the faults server stopped")?;
        Ok(Outcome::Clean)
    })
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM.
fn stop_signal() -> Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut terminate = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?
    };
    Ok(async move {
        let interrupt = async {
            // If the handler cannot be installed, SIGINT keeps its default
            // action (ending the process), so waiting forever is right.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        tokio::select! {
            () = interrupt => {}
            _ = terminate.recv() => {}
        }
        #[cfg(not(unix))]
        interrupt.await;
    })
}
