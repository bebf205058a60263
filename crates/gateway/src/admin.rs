//! The admin listener: `/metrics` (OpenMetrics text), `/healthz` (the
//! process is up), `/readyz` (it accepts traffic: false while draining) and
//! `POST /-/reload` (reload the configuration file).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::state::Shared;

#[derive(Clone)]
struct Admin {
    shared: Arc<Shared>,
    config_path: Option<Arc<PathBuf>>,
}

pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    config_path: Option<PathBuf>,
    shutdown: CancellationToken,
) {
    let state = Admin {
        shared,
        config_path: config_path.map(Arc::new),
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/-/reload", post(reload))
        .with_state(state);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
}

async fn metrics(State(admin): State<Admin>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        admin.shared.metrics.encode(),
    )
}

async fn readyz(State(admin): State<Admin>) -> impl IntoResponse {
    if admin.shared.draining.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n".to_owned());
    }
    // A rate-limit store that is down shows here; it makes the gateway
    // unready only where the policy denies traffic without it.
    let runtime = admin.shared.runtime.load();
    let mut report = String::new();
    let mut ready = true;
    for limiter in runtime.limiters.values() {
        if !limiter.store_healthy.load(Ordering::Relaxed) {
            let deny = limiter.config.on_store_error == crate::config::OnStoreError::Deny;
            ready &= !deny;
            report.push_str(&format!(
                "rate limit {}: store unreachable ({})\n",
                limiter.config.name,
                if deny { "denying" } else { "allowing" }
            ));
        }
    }
    if ready {
        (StatusCode::OK, format!("ready\n{report}"))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready\n{report}"),
        )
    }
}

async fn reload(State(admin): State<Admin>) -> impl IntoResponse {
    let Some(path) = admin.config_path else {
        return (
            StatusCode::CONFLICT,
            "not started from a configuration file\n".to_owned(),
        );
    };
    let shared = admin.shared.clone();
    let outcome =
        tokio::task::spawn_blocking(move || crate::reload::reload_file(&shared, &path)).await;
    match outcome {
        Ok(Ok(())) => (StatusCode::OK, "reloaded\n".to_owned()),
        Ok(Err(e)) => (StatusCode::UNPROCESSABLE_ENTITY, format!("rejected: {e}\n")),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reload failed: {e}\n"),
        ),
    }
}
