//! The service's lifecycle: open the database, resume unfinished exports,
//! serve, and on shutdown stop the background work before returning.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, FailSwitch};
use crate::crypto;
use crate::db::{Db, DbError};
use crate::routes;
use crate::store;

/// How long a failed export waits before it tries again, at least.
const EXPORT_RETRY: Duration = Duration::from_millis(200);

/// What every handler shares.
pub struct AppState {
    pub db: Db,
    pub fail_db: FailSwitch,
    pub export_delay: Duration,
    pub password_iterations: NonZeroU32,
    /// Verified against when the email is unknown, so a failed login costs
    /// the same whether or not the account exists.
    pub dummy_hash: String,
    tasks: TaskTracker,
    cancel: CancellationToken,
}

impl AppState {
    /// Finishes export `id` in the background after the export delay.
    pub fn start_export(self: &Arc<Self>, id: i64) {
        let state = Arc::clone(self);
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = state.finish_export(id) => {}
            }
        });
    }

    async fn finish_export(&self, id: i64) {
        tokio::time::sleep(self.export_delay).await;
        loop {
            match self
                .db
                .run(move |conn| store::complete_export(conn, id))
                .await
            {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(export = id, error = %e, "export not finished yet; will retry");
                    tokio::time::sleep(self.export_delay.max(EXPORT_RETRY)).await;
                }
            }
        }
    }
}

/// Why the service could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("setup: {0}")]
    Setup(String),
    #[error("serving: {0}")]
    Serve(#[source] std::io::Error),
}

/// A running service: its router, its failure switch, and its background
/// work. Embed it with [`App::router`]; stop it with [`App::shutdown`].
pub struct App {
    state: Arc<AppState>,
}

impl App {
    /// Opens and migrates the database and resumes exports left pending by
    /// a previous run.
    pub async fn open(config: Config) -> Result<App, StartError> {
        let Config {
            db,
            fail_db,
            export_delay,
            password_iterations,
        } = config;
        let switch = fail_db.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let db = Db::open(&db, switch)?;
            Ok::<_, StartError>(db)
        })
        .await
        .map_err(|e| StartError::Setup(format!("opening the database: {e}")))??;
        let dummy_hash = tokio::task::spawn_blocking(move || {
            crypto::hash_password("no account has this password", password_iterations)
        })
        .await
        .map_err(|e| StartError::Setup(format!("hashing: {e}")))?
        .map_err(|e| StartError::Setup(e.to_string()))?;

        let state = Arc::new(AppState {
            db: opened,
            fail_db,
            export_delay,
            password_iterations,
            dummy_hash,
            tasks: TaskTracker::new(),
            cancel: CancellationToken::new(),
        });
        // Exports accepted before a restart still report done later. With
        // the failure switch already on, they wait for the next start.
        match state.db.run(store::pending_exports).await {
            Ok(pending) => {
                for id in pending {
                    state.start_export(id);
                }
            }
            Err(e) => tracing::warn!(error = %e, "pending exports not resumed"),
        }
        Ok(App { state })
    }

    /// The service's routes, ready to serve or to nest.
    pub fn router(&self) -> Router {
        routes::router(Arc::clone(&self.state))
    }

    /// The switch that simulates a database failure.
    pub fn fail_switch(&self) -> FailSwitch {
        self.state.fail_db.clone()
    }

    /// Stops background work (pending exports stay pending in the database
    /// and resume on the next start) and waits for it to end.
    pub async fn shutdown(&self) {
        self.state.cancel.cancel();
        self.state.tasks.close();
        self.state.tasks.wait().await;
    }
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: TcpListener, config: Config) -> Result<(), StartError> {
    serve_with_shutdown(listener, config, std::future::pending()).await
}

/// Serves the API on `listener` until `shutdown` completes, then finishes
/// the requests in flight, stops background work and returns.
pub async fn serve_with_shutdown<F>(
    listener: TcpListener,
    config: Config,
    shutdown: F,
) -> Result<(), StartError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let app = App::open(config).await?;
    let served = axum::serve(listener, app.router())
        .with_graceful_shutdown(shutdown)
        .await;
    app.shutdown().await;
    served.map_err(StartError::Serve)
}
