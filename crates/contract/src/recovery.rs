//! The client side of the contract (contract.md §6): what a client does with
//! each answer. Pure data; candor-client acts on it, the statuses stay here.

use std::fmt;

use http::Method;

use crate::challenge::Challenge;

/// What the status line asks of the client that sent the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recovery {
    /// 1xx, 2xx, 3xx: the answer is the result.
    Done,
    /// 429, 503: the server was refused or unavailable before doing the work;
    /// wait what `Retry-After` says (or back off), then send again.
    WaitAndRetry,
    /// 408, 502, 504: the request may or may not have been processed; send
    /// again only when repeating it is safe (idempotent or keyed).
    RetryIfRepeatable,
    /// 401: fresh credentials, once, when the challenge allows it.
    Reauthenticate,
    /// 500: a server bug does not heal by repetition; give up unless the
    /// caller opts in, and then only as [`Recovery::RetryIfRepeatable`].
    ServerBug,
    /// Any other 4xx or 5xx: the same request will get the same answer.
    GiveUp,
}

impl Recovery {
    /// The action for `status`; codes outside 100-599 give up.
    pub const fn of(status: u16) -> Self {
        match status {
            100..=399 => Recovery::Done,
            429 | 503 => Recovery::WaitAndRetry,
            408 | 502 | 504 => Recovery::RetryIfRepeatable,
            401 => Recovery::Reauthenticate,
            500 => Recovery::ServerBug,
            _ => Recovery::GiveUp,
        }
    }

    /// A name for logs and errors.
    pub const fn as_str(self) -> &'static str {
        match self {
            Recovery::Done => "done",
            Recovery::WaitAndRetry => "wait_and_retry",
            Recovery::RetryIfRepeatable => "retry_if_repeatable",
            Recovery::Reauthenticate => "reauthenticate",
            Recovery::ServerBug => "server_bug",
            Recovery::GiveUp => "give_up",
        }
    }
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a 401's challenges invite new credentials: a challenge with
/// `error="invalid_token"` or no `error` at all (RFC 6750 §3.1; no challenge
/// at all counts as none). `invalid_request` or `insufficient_scope` will
/// not be cured by a fresh token.
pub fn invites_new_credentials(challenges: &[Challenge]) -> bool {
    challenges.is_empty()
        || challenges
            .iter()
            .any(|c| matches!(c.get("error"), None | Some("invalid_token")))
}

/// Idempotent methods (RFC 9110 §9.2.2): repeating them has the effect of
/// sending them once, so a client may repeat them after a lost answer.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_table_row_by_row() {
        for done in [100, 200, 201, 204, 301, 304, 308] {
            assert_eq!(Recovery::of(done), Recovery::Done, "{done}");
        }
        assert_eq!(Recovery::of(429), Recovery::WaitAndRetry);
        assert_eq!(Recovery::of(503), Recovery::WaitAndRetry);
        for again in [408, 502, 504] {
            assert_eq!(Recovery::of(again), Recovery::RetryIfRepeatable, "{again}");
        }
        assert_eq!(Recovery::of(401), Recovery::Reauthenticate);
        assert_eq!(Recovery::of(500), Recovery::ServerBug);
        for stop in [
            400, 403, 404, 405, 409, 410, 413, 414, 415, 422, 431, 501, 505, 0, 99, 600,
        ] {
            assert_eq!(Recovery::of(stop), Recovery::GiveUp, "{stop}");
        }
    }

    #[test]
    fn only_token_errors_invite_new_credentials() {
        let bearer = || Challenge::bearer("api");
        assert!(invites_new_credentials(&[]));
        assert!(invites_new_credentials(&[bearer()]));
        assert!(invites_new_credentials(&[
            bearer().param("error", "invalid_token")
        ]));
        assert!(!invites_new_credentials(&[
            bearer().param("error", "insufficient_scope")
        ]));
        assert!(!invites_new_credentials(&[
            bearer().param("error", "invalid_request")
        ]));
    }

    #[test]
    fn idempotent_methods_are_rfc_9110s() {
        for m in [Method::GET, Method::PUT, Method::DELETE, Method::HEAD] {
            assert!(is_idempotent(&m), "{m}");
        }
        for m in [Method::POST, Method::PATCH, Method::CONNECT] {
            assert!(!is_idempotent(&m), "{m}");
        }
    }
}
