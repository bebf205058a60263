//! `candor serve` and `candor check-config`.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use candor_contract::words::agree;
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
    let mut failed = 0usize;
    let mut out = std::io::stdout().lock();
    for file in &args.files {
        match config::load_file(file) {
            // `?`: a closed stdout ends the command (quietly, see main).
            Ok(_) => writeln!(out, "{}: ok", file.display())?,
            Err(e) => {
                eprintln!("{e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        let total = args.files.len();
        anyhow::bail!(
            "{failed} of {total} configuration {} {} invalid",
            agree(total, "file", "files"),
            agree(failed, "is", "are")
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
    let mut usr1 = signal(SignalKind::user_defined1())?;
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
            // As nginx: logrotate renames the file, then sends USR1.
            _ = usr1.recv() => match gateway.reopen_access_log().await {
                Ok(()) => eprintln!("candor serve: access log reopened"),
                Err(e) => eprintln!("candor serve: cannot reopen the access log ({e}); lines still go to the old file"),
            },
            Some(()) = changed.recv() => {
                settle(&mut changed).await;
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

/// How long the file must stay quiet before a change is reloaded, and the
/// longest a stream of changes can put a reload off.
const QUIET: Duration = Duration::from_millis(150);
const SETTLE_MAX: Duration = Duration::from_secs(2);

/// Editors write in several steps (truncate, write, rename, chmod): wait
/// until the changes stop for `QUIET`, so one save is one reload.
async fn settle(changed: &mut tokio::sync::mpsc::Receiver<()>) {
    let deadline = tokio::time::Instant::now() + SETTLE_MAX;
    loop {
        let until = (tokio::time::Instant::now() + QUIET).min(deadline);
        match tokio::time::timeout_at(until, changed.recv()).await {
            Ok(Some(())) if tokio::time::Instant::now() < deadline => {}
            _ => return,
        }
    }
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
            && changes(&event, &name)
        {
            let _ = tx.try_send(());
        }
    })
    .ok()?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).ok()?;
    Some(watcher)
}

/// Whether a watch event may have changed the file named `name`. Opening
/// and reading it must not count: every reload reads the file, so a read
/// that counted would start the next reload, forever. Metadata alone
/// (chmod, atime) does not change what a reload would read.
fn changes(event: &notify::Event, name: &OsStr) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
    if event.need_rescan() {
        // The watcher lost events: the file may have changed.
        return true;
    }
    let writes = match event.kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        // Closing a file opened for writing: a save has finished.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        _ => false,
    };
    writes && event.paths.iter().any(|p| p.file_name() == Some(name))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::mpsc;
    use std::time::Duration;

    use notify::{Event, RecursiveMode, Watcher};

    use super::changes;

    /// Every event of a watch on a directory, as the gateway's watcher gets them.
    struct Recorder {
        _watcher: notify::RecommendedWatcher,
        events: mpsc::Receiver<Event>,
        dir: PathBuf,
        markers: usize,
    }

    impl Recorder {
        fn new(dir: &Path) -> Self {
            let (tx, events) = mpsc::channel();
            let mut watcher = notify::recommended_watcher(move |e: notify::Result<Event>| {
                if let Ok(e) = e {
                    let _ = tx.send(e);
                }
            })
            .unwrap();
            watcher.watch(dir, RecursiveMode::NonRecursive).unwrap();
            Recorder {
                _watcher: watcher,
                events,
                dir: dir.to_owned(),
                markers: 0,
            }
        }

        /// The events caused so far: those queued before the creation of a
        /// marker file made now (one watch delivers its events in order).
        fn caused(&mut self) -> Vec<Event> {
            self.markers += 1;
            let marker = self.dir.join(format!("marker-{}", self.markers));
            std::fs::write(&marker, "").unwrap();
            let mut seen = Vec::new();
            loop {
                let e = self
                    .events
                    .recv_timeout(Duration::from_secs(20))
                    .expect("the watch reports the marker");
                if e.paths.iter().any(|p| p == &marker) {
                    if e.kind.is_create() {
                        return seen;
                    }
                } else if !e.paths.iter().any(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("marker-"))
                }) {
                    seen.push(e);
                }
            }
        }
    }

    fn on<'e>(events: &'e [Event], file: &Path) -> Vec<&'e Event> {
        events
            .iter()
            .filter(|e| e.paths.iter().any(|p| p == file))
            .collect()
    }

    #[test]
    fn reading_the_file_is_not_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        let file = dir.join("gateway.toml");
        std::fs::write(&file, "[gateway]\nlisten = \"127.0.0.1:0\"\n").unwrap();
        let mut watch = Recorder::new(&dir);
        // What a reload does with the file.
        let _ = candor_gateway::config::load_file(&file);
        let events = watch.caused();
        let read = on(&events, &file);
        assert!(!read.is_empty(), "the watch sees the read: {events:?}");
        let name = file.file_name().unwrap();
        assert!(
            !read.iter().any(|e| changes(e, name)),
            "a read counted as a change: {read:?}"
        );
    }

    #[test]
    fn writing_replacing_and_removing_the_file_are_changes() {
        let dir = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        let file = dir.join("gateway.toml");
        let name = file.file_name().unwrap();
        std::fs::write(&file, "one").unwrap();
        let mut watch = Recorder::new(&dir);

        std::fs::write(&file, "two").unwrap();
        let events = watch.caused();
        assert!(
            on(&events, &file).iter().any(|e| changes(e, name)),
            "{events:?}"
        );

        // An editor's save: a new file renamed over the old one.
        let tmp = dir.join(".gateway.toml.swp");
        std::fs::write(&tmp, "three").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        let events = watch.caused();
        assert!(
            on(&events, &file).iter().any(|e| changes(e, name)),
            "{events:?}"
        );

        std::fs::remove_file(&file).unwrap();
        let events = watch.caused();
        assert!(
            on(&events, &file).iter().any(|e| changes(e, name)),
            "{events:?}"
        );

        // Another file in the directory is not this one.
        std::fs::write(dir.join("other.toml"), "x").unwrap();
        let events = watch.caused();
        assert!(!events.is_empty());
        assert!(!events.iter().any(|e| changes(e, name)), "{events:?}");
    }

    #[tokio::test]
    async fn a_burst_of_changes_is_taken_as_one() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        for _ in 0..5 {
            tx.send(()).await.unwrap();
        }
        rx.recv().await.unwrap();
        super::settle(&mut rx).await;
        assert!(rx.try_recv().is_err(), "the burst was consumed");
    }
}
