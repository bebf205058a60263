//! candor-gateway: `candor serve`, an API gateway whose every response obeys
//! the HTTP status-code contract.
//!
//! config -> routing -> route policies -> upstream -> rescue. Each layer
//! returns a typed error; `error::rescue` is the one place that turns an
//! error into a status, headers and a problem body.

#[macro_use]
mod write_through;

mod access;
mod access_log;
mod admin;
mod admission;
mod attempts;
mod auth;
mod body;
mod cause;
mod clients;
pub mod config;
mod deadline;
mod direct;
mod drain;
mod error;
mod field_value;
mod metrics;
mod monitor;
mod pipeline;
mod proxy;
mod ratelimit;
mod reload;
mod routing;
mod server;
mod state;
mod trace;
mod upstream;
mod validate;

/// The direct path's parsers for the fuzz targets; not in a normal build.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use direct::fuzzing;
pub use error::{GatewayError, X_FAILURE_TYPE, X_REQUEST_ID, X_UPSTREAM_SERVICE};
pub use server::{Gateway, Phase, StartError, StartOptions};
pub use upstream::UpstreamFailure;
