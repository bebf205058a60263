//! Names an upstream failure from what hyper-util hands back.
//!
//! hyper-util's client labels only connect errors, so the phase is
//! reconstructed by walking the error's `source()` chain (see the table in
//! research/rust-stack.md §4.4). Our own response-head timer is classified
//! by the caller, which knows it fired.

use std::error::Error as StdError;
use std::io;

use candor_contract::rules::{self, Rule};

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

/// Classifies a failed `client.request(..)` (our own timer aside).
pub fn classify(error: &hyper_util::client::legacy::Error) -> UpstreamFailure {
    if error.is_connect() {
        if chain(error).any(|e| e.to_string().starts_with("dns error")) {
            return UpstreamFailure::Dns;
        }
        if cause::<rustls::Error>(error).is_some() {
            return UpstreamFailure::Tls;
        }
        return match io_kind(error) {
            Some(io::ErrorKind::ConnectionRefused) => UpstreamFailure::ConnectRefused,
            Some(io::ErrorKind::TimedOut) => UpstreamFailure::ConnectTimeout,
            _ => UpstreamFailure::ConnectError,
        };
    }
    if let Some(h) = chain(error).find_map(|e| e.downcast_ref::<hyper::Error>()) {
        if h.is_parse() || h.is_parse_status() {
            return UpstreamFailure::InvalidResponse;
        }
        if h.is_timeout() {
            return UpstreamFailure::Timeout;
        }
    }
    // Incomplete message, reset, broken pipe, or anything unnamed: the
    // connection ended before a response.
    UpstreamFailure::Reset
}

fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |e: &&'a (dyn StdError + 'static)| {
        (*e).source()
    })
}

fn io_kind(error: &(dyn StdError + 'static)) -> Option<io::ErrorKind> {
    chain(error).find_map(|e| e.downcast_ref::<io::Error>().map(io::Error::kind))
}

/// Finds an error of type `E` anywhere in the chain, including inside the
/// payloads of (possibly nested) `io::Error`s, whose `source()` skips their
/// own payload. hyper-rustls reports a bad certificate as an `io::Error`
/// holding an `io::Error` holding the `rustls::Error`.
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
