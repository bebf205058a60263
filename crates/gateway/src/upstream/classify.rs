//! Names an upstream failure.
//!
//! Connect failures are named by the phase that failed (resolve, TCP
//! connect, TLS handshake), then by the `io::Error` kind or the
//! `rustls::Error` found inside it; failures on an open connection by
//! hyper's error. Our own response-head timer is classified by the caller,
//! which knows it fired.

use std::error::Error as StdError;
use std::io;

use candor_contract::rules::{self, Rule};

use super::conn::ConnectError;

/// How an upstream failed, as the contract names it (`X-Failure-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpstreamFailure {
    /// The connection was refused (nothing listens there).
    ConnectRefused,
    /// Some other connect failure (host or network unreachable, ...).
    ConnectError,
    /// The connect did not complete in time.
    ConnectTimeout,
    /// The name did not resolve.
    Dns,
    /// The TLS handshake failed.
    Tls,
    /// The connection was reset or closed before a response.
    Reset,
    /// The upstream answered with something that is not valid HTTP.
    InvalidResponse,
    /// No response head in time.
    Timeout,
}

impl UpstreamFailure {
    /// The `X-Failure-Type` value and metrics label.
    pub const fn as_str(self) -> &'static str {
        match self {
            UpstreamFailure::ConnectRefused => "connect_refused",
            UpstreamFailure::ConnectError => "connect_error",
            UpstreamFailure::ConnectTimeout => "connect_timeout",
            UpstreamFailure::Dns => "dns",
            UpstreamFailure::Tls => "tls",
            UpstreamFailure::Reset => "reset",
            UpstreamFailure::InvalidResponse => "invalid_response",
            UpstreamFailure::Timeout => "timeout",
        }
    }

    /// The contract rule for this failure.
    pub const fn rule(self) -> &'static Rule {
        match self {
            UpstreamFailure::ConnectRefused
            | UpstreamFailure::ConnectError
            | UpstreamFailure::Dns
            | UpstreamFailure::Tls
            | UpstreamFailure::Reset => &rules::UPSTREAM_UNREACHABLE,
            UpstreamFailure::InvalidResponse => &rules::UPSTREAM_INVALID_RESPONSE,
            UpstreamFailure::ConnectTimeout | UpstreamFailure::Timeout => &rules::UPSTREAM_TIMEOUT,
        }
    }

    /// Whether the request certainly never reached the upstream, so that it
    /// may be sent to another target.
    pub const fn before_request_sent(self) -> bool {
        matches!(
            self,
            UpstreamFailure::ConnectRefused
                | UpstreamFailure::ConnectError
                | UpstreamFailure::ConnectTimeout
                | UpstreamFailure::Dns
                | UpstreamFailure::Tls
        )
    }

    /// Whether the failure says the target itself is down (for ejection).
    pub const fn counts_against_target(self) -> bool {
        self.before_request_sent()
    }

    /// A short phrase for the problem `detail`.
    pub const fn describe(self) -> &'static str {
        match self {
            UpstreamFailure::ConnectRefused => "connection refused",
            UpstreamFailure::ConnectError => "could not connect",
            UpstreamFailure::ConnectTimeout => "connect timed out",
            UpstreamFailure::Dns => "name did not resolve",
            UpstreamFailure::Tls => "TLS handshake failed",
            UpstreamFailure::Reset => "connection closed before a response",
            UpstreamFailure::InvalidResponse => "response was not valid HTTP",
            UpstreamFailure::Timeout => "no response in time",
        }
    }
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

fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |e: &&'a (dyn StdError + 'static)| {
        (*e).source()
    })
}

/// Finds an error of type `E` anywhere in the chain, including inside the
/// payloads of (possibly nested) `io::Error`s, whose `source()` skips their
/// own payload. tokio-rustls reports a bad certificate as an `io::Error`
/// holding the `rustls::Error` (hyper-rustls nested one more `io::Error`).
pub fn cause<'a, E: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    chain(error).find_map(|e| {
        let mut current = e;
        loop {
            if let Some(found) = current.downcast_ref::<E>() {
                return Some(found);
            }
            current = current.downcast_ref::<io::Error>()?.get_ref()?;
        }
    })
}
