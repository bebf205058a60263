//! How an upstream failed, as the contract names it in `X-Failure-Type`.
//!
//! The gateway classifies its failures into these; the auditor checks answers against them.

use std::fmt;

use crate::rules::{self, Rule};

/// An `X-Failure-Type` value: how the upstream of a gateway-made 5xx failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureType {
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
    /// Every target of the upstream is ejected: none was tried.
    NoHealthyUpstream,
    /// A dependency the gateway asks before forwarding (the auth service)
    /// answered with a server error: no decision came back.
    ErrorStatus,
}

impl FailureType {
    /// Every failure type, in the contract's order.
    pub const ALL: [FailureType; 10] = [
        FailureType::ConnectRefused,
        FailureType::ConnectError,
        FailureType::ConnectTimeout,
        FailureType::Dns,
        FailureType::Tls,
        FailureType::Reset,
        FailureType::InvalidResponse,
        FailureType::Timeout,
        FailureType::NoHealthyUpstream,
        FailureType::ErrorStatus,
    ];

    /// The `X-Failure-Type` value (and the gateway's metrics label).
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureType::ConnectRefused => "connect_refused",
            FailureType::ConnectError => "connect_error",
            FailureType::ConnectTimeout => "connect_timeout",
            FailureType::Dns => "dns",
            FailureType::Tls => "tls",
            FailureType::Reset => "reset",
            FailureType::InvalidResponse => "invalid_response",
            FailureType::Timeout => "timeout",
            FailureType::NoHealthyUpstream => "no_healthy_upstream",
            FailureType::ErrorStatus => "error_status",
        }
    }

    /// An `X-Failure-Type` value, its case aside; `None` for a name the
    /// contract does not have (surrounding whitespace included).
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(value))
    }

    /// The contract rule a gateway answers this failure under.
    pub const fn rule(self) -> &'static Rule {
        match self {
            FailureType::ConnectRefused
            | FailureType::ConnectError
            | FailureType::Dns
            | FailureType::Tls
            | FailureType::Reset => &rules::UPSTREAM_UNREACHABLE,
            FailureType::InvalidResponse => &rules::UPSTREAM_INVALID_RESPONSE,
            FailureType::ConnectTimeout | FailureType::Timeout => &rules::UPSTREAM_TIMEOUT,
            FailureType::NoHealthyUpstream => &rules::UPSTREAM_UNAVAILABLE,
            // Only the auth service's answers are read this way: an
            // upstream's 5xx is passed through (upstream.status).
            FailureType::ErrorStatus => &rules::AUTH_SERVICE_UNREACHABLE,
        }
    }

    /// Whether the connection never opened (resolve, TCP connect, TLS), so
    /// the request certainly never reached the upstream.
    pub const fn is_connect(self) -> bool {
        matches!(
            self,
            FailureType::ConnectRefused
                | FailureType::ConnectError
                | FailureType::ConnectTimeout
                | FailureType::Dns
                | FailureType::Tls
        )
    }

    /// A short phrase for a problem's `detail`.
    pub const fn describe(self) -> &'static str {
        match self {
            FailureType::ConnectRefused => "connection refused",
            FailureType::ConnectError => "could not connect",
            FailureType::ConnectTimeout => "connect timed out",
            FailureType::Dns => "name did not resolve",
            FailureType::Tls => "TLS handshake failed",
            FailureType::Reset => "connection closed before a response",
            FailureType::InvalidResponse => "response was not valid HTTP",
            FailureType::Timeout => "no response in time",
            FailureType::NoHealthyUpstream => "every target is ejected",
            FailureType::ErrorStatus => "answered with a server error",
        }
    }
}

impl fmt::Display for FailureType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_type() {
        for kind in FailureType::ALL {
            assert_eq!(FailureType::parse(kind.as_str()), Some(kind));
            let upper = kind.as_str().to_ascii_uppercase();
            assert_eq!(FailureType::parse(&upper), Some(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        for other in [
            "",
            "refused",
            "connect-refused",
            " reset",
            "timeout ",
            "5xx",
        ] {
            assert_eq!(FailureType::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn each_name_is_listed_by_the_rule_it_answers_under() {
        for kind in FailureType::ALL {
            let rule = kind.rule();
            // connect_error is the gateway's own refinement of unreachable.
            if kind != FailureType::ConnectError {
                assert!(
                    rule.expects.contains(kind.as_str()),
                    "{} does not name {kind}",
                    rule.id
                );
            }
            assert!(rule.status.is_some_and(|s| s >= 500), "{}", rule.id);
        }
    }

    #[test]
    fn only_connect_failures_happen_before_the_request_is_sent() {
        let connect: Vec<_> = FailureType::ALL
            .into_iter()
            .filter(|k| k.is_connect())
            .map(FailureType::as_str)
            .collect();
        assert_eq!(
            connect,
            [
                "connect_refused",
                "connect_error",
                "connect_timeout",
                "dns",
                "tls"
            ]
        );
    }
}
