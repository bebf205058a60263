//! `candor serve` and `candor check-config`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use candor_gateway::config;
use candor_gateway::{Gateway, StartOptions};
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use crate::Outcome;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The gateway configuration (TOML). See docs/config.md.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,

    /// Do not watch the configuration file for changes (SIGHUP and
    /// POST /-/reload on the admin listener still reload it).
    #[arg(long)]
    no_watch: bool,
}

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// Configuration files to validate.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

pub fn check_config(args: CheckConfigArgs) -> Result<Outcome> {
    let mut failed = 0;
    for file in &args.files {
        match config::load_file(file) {
            Ok(_) => println!("{}: ok", file.display()),
            Err(e) => {
                eprintln!("{e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} configuration files are invalid",
            args.files.len()
        );
    }
    Ok(Outcome::Clean)
}

pub fn serve(args: ServeArgs) -> Result<Outcome> {
    crate::init_tracing();
    let config = config::load_file(&args.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("candor-serve")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(config, args))?;
    Ok(Outcome::Clean)
}

async fn run(config: config::Config, args: ServeArgs) -> Result<()> {
    let options = StartOptions {
        access_log: None,
        config_path: Some(args.config.clone()),
    };
    // Signal handlers and the file watch are in place before the gateway
    // says it listens, so nothing sent after that line is missed.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (changed_tx, mut changed) = tokio::sync::mpsc::channel::<()>(1);
    let _watcher = if args.no_watch {
        None
    } else {
        watch_file(&args.config, changed_tx)
    };
    let gateway = Gateway::start(config, options).await?;
    match gateway.admin_addr() {
        Some(admin) => eprintln!(
            "candor serve: listening on {} (admin on http://{admin})",
            gateway.addr()
        ),
        None => eprintln!("candor serve: listening on {}", gateway.addr()),
    }

    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let _ = reload(&gateway).await;
            }
            Some(()) = changed.recv() => {
                // Editors write in several steps: let the burst settle.
                tokio::time::sleep(Duration::from_millis(200)).await;
                while changed.try_recv().is_ok() {}
                let _ = reload(&gateway).await;
            }
        }
    }
    eprintln!("candor serve: draining");
    gateway.shutdown();
    gateway.wait().await;
    eprintln!("candor serve: stopped");
    Ok(())
}

async fn reload(gateway: &Gateway) -> Result<(), String> {
    // Reading and validating the file is blocking work.
    tokio::task::block_in_place(|| gateway.reload_from_file())
}

/// Watches the file's directory (editors and ConfigMaps replace files by
/// rename, which ends a watch on the file itself) and signals changes to it.
fn watch_file(
    path: &Path,
    tx: tokio::sync::mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let path = std::fs::canonicalize(path).ok()?;
    let dir = path.parent()?.to_owned();
    let name = path.file_name()?.to_owned();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && event
                .paths
                .iter()
                .any(|p| p.file_name() == Some(name.as_os_str()))
        {
            let _ = tx.try_send(());
        }
    })
    .ok()?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).ok()?;
    Some(watcher)
}
