//! candor-gateway: `candor serve`, an API gateway whose every response obeys
//! the HTTP status-code contract.
//!
//! config -> routing -> route policies -> upstream -> rescue. Each layer
//! returns a typed error; `error::rescue` is the one place that turns an
//! error into a status, headers and a problem body.

/// `AsyncWrite` for a wrapper that only watches or replays reads: every
/// write goes straight to the stream in `$field`. `[S]` names the
/// wrapper's stream type parameter, `[]` a wrapper without one.
macro_rules! write_through {
    ([$($g:ident)?] $wrapper:ty, $field:ident) => {
        impl$(<$g: tokio::io::AsyncWrite + Unpin>)? tokio::io::AsyncWrite for $wrapper {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().$field).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().$field).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.$field.is_write_vectored()
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().$field).poll_flush(cx)
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().$field).poll_shutdown(cx)
            }
        }
    };
}

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
mod pipeline;
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
