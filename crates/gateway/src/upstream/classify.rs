//! Names an upstream failure.
//!
//! Connect failures are named by the phase that failed (resolve, TCP
//! connect, TLS handshake), then by the `io::Error` kind or the
//! `rustls::Error` found inside it; failures on an open connection by
//! hyper's error. Our own response-head timer is classified by the caller,
//! which knows it fired.

use std::io;

use crate::cause::cause;

/// How an upstream failed: the contract's `X-Failure-Type` vocabulary,
/// under the name the send path has always used.
pub use candor_contract::FailureType as UpstreamFailure;

/// Why a connection could not be opened. Classified like hyper-util's
/// connect errors were (see `classify_connect`).
#[derive(Debug)]
pub(super) enum ConnectError {
    /// The name did not resolve (or resolved to nothing).
    Dns,
    /// The TCP connect failed.
    Tcp(io::Error),
    /// The TCP connect did not complete within `connect_timeout`.
    Timeout,
    /// The TLS handshake failed.
    Tls(io::Error),
    /// hyper refused the connection (it does not, for HTTP/1.1).
    Handshake,
}

/// Classifies a connection that could not be opened.
pub(super) fn classify_connect(error: &ConnectError) -> UpstreamFailure {
    match error {
        ConnectError::Dns => UpstreamFailure::Dns,
        ConnectError::Timeout => UpstreamFailure::ConnectTimeout,
        ConnectError::Tls(e) if cause::<rustls::Error>(e).is_some() => UpstreamFailure::Tls,
        ConnectError::Tcp(e) | ConnectError::Tls(e) => match e.kind() {
            io::ErrorKind::ConnectionRefused => UpstreamFailure::ConnectRefused,
            io::ErrorKind::TimedOut => UpstreamFailure::ConnectTimeout,
            _ => UpstreamFailure::ConnectError,
        },
        ConnectError::Handshake => UpstreamFailure::ConnectError,
    }
}

/// Classifies a request that got no response head on an open connection
/// (our own timer aside).
pub(super) fn classify_send(error: &hyper::Error) -> UpstreamFailure {
    if error.is_parse() || error.is_parse_status() {
        return UpstreamFailure::InvalidResponse;
    }
    if error.is_timeout() {
        return UpstreamFailure::Timeout;
    }
    // Incomplete message, reset, broken pipe, canceled, or anything
    // unnamed: the connection ended before a response.
    UpstreamFailure::Reset
}
