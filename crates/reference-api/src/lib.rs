//! candor-reference-api: a small accounts service (users, sessions,
//! exports, an admin report) that keeps the HTTP status-code contract.
//!
//! A second service, [`AuthService`], introspects session tokens (RFC
//! 7662) on its own SQLite store: the auth service of the demo's flow.
//!
//! It is what candor's gateway fronts in `candor demo`, what the auditor
//! probes in its own tests, and an example of a service built on
//! candor-contract's axum integration: handlers return typed outcomes,
//! [`rescue`] picks the contract outcome of each failure, and the
//! contract renders status, headers and problem body.
//!
//! ```no_run
//! # async fn run() -> Result<(), candor_reference_api::StartError> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(candor_reference_api::StartError::Serve)?;
//! candor_reference_api::serve(listener, candor_reference_api::Config::in_memory()).await
//! # }
//! ```

mod app;
mod auth_service;
mod body;
mod config;
mod crypto;
mod db;
mod error;
mod linger;
mod routes;
mod store;

pub use app::{App, StartError, serve, serve_with_shutdown};
pub use auth_service::{AuthConfig, AuthService, AuthSwitches, SESSION_TTL};
pub use config::{
    Config, DEFAULT_DB, DEFAULT_PASSWORD_ITERATIONS, DbLocation, FailSwitch, HangSwitch, REALM,
};
pub use db::DbError;
pub use error::{Error, rescue};
pub use routes::OPENAPI;
