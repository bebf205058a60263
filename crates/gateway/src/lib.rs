//! candor-gateway: `candor serve`, an API gateway whose every response obeys
//! the HTTP status-code contract.
//!
//! config -> routing -> route policies -> upstream -> rescue. Each layer
//! returns a typed error; `error::rescue` is the one place that turns an
//! error into a status, headers and a problem body.

mod access_log;
mod admin;
mod admission;
mod auth;
mod body;
mod clients;
pub mod config;
mod deadline;
mod direct;
mod drain;
mod error;
mod metrics;
mod monitor;
mod proxy;
mod ratelimit;
mod routing;
mod server;
mod state;
mod upstream;
mod validate;

#[doc(hidden)]
pub use direct::fuzzing;
pub use error::{GatewayError, X_FAILURE_TYPE, X_REQUEST_ID, X_UPSTREAM_SERVICE};
pub use server::{Gateway, Phase, StartError, StartOptions};
pub use upstream::UpstreamFailure;
