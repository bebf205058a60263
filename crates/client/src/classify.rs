//! One answer, or one exchange that got none, read as an action from the
//! contract's catalog: done, retry (after how long, and why), re-authenticate, give up.

use std::fmt;
use std::io;
use std::time::{Duration, SystemTime};

use candor_contract::{
    Challenge, FailureType, Recovery, RetryAfter, invites_new_credentials, parse_challenges,
};
use http::{HeaderMap, StatusCode, header};

use crate::error::{Error, Reason};

/// An answer: the status, its fields, and the body when it was read.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: StatusCode,
    pub headers: &'a HeaderMap,
    /// Read for the problem document of a give-up; `None` when not read.
    pub body: Option<&'a [u8]>,
}

/// What is known about the request the answer is to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    /// Idempotent, or carries an `Idempotency-Key`: safe to send twice.
    pub repeatable: bool,
    /// Retry a 500 like a 502 (off by default: a bug does not heal by repetition).
    pub retry_server_bugs: bool,
}

/// Why a retry is wanted: the answer's status, or how the exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Status(StatusCode),
    Failure(FailureType),
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Status(s) => write!(f, "{s}"),
            Why::Failure(t) => write!(f, "{t}"),
        }
    }
}

/// How long to wait before a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// What the server's Retry-After says, from now.
    RetryAfter(Duration),
    /// The policy's jittered exponential backoff.
    Backoff,
}

/// What to do with an answer.
#[derive(Debug)]
pub enum Action {
    Done,
    Retry {
        wait: Wait,
        why: Why,
    },
    /// A 401 that a fresh credential may cure, with its challenges.
    Reauthenticate {
        challenges: Vec<Challenge>,
    },
    GiveUp(Error),
}

/// The challenges of every `WWW-Authenticate` field; unparseable ones are skipped.
pub fn challenges(headers: &HeaderMap) -> Vec<Challenge> {
    headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| parse_challenges(v).ok())
        .flatten()
        .collect()
}

/// The answer's Retry-After as a wait from `now`; `None` when absent or malformed.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    RetryAfter::parse(value).ok().map(|r| r.delay_from(now))
}

/// Reads an answer as an action (contract.md §6). `now` dates an HTTP-date Retry-After.
pub fn classify(answer: &Answer<'_>, facts: Facts, now: SystemTime) -> Action {
    let status = answer.status;
    let why = Why::Status(status);
    let give_up = |reason| {
        let mut e = Error::new(reason)
            .with_status(status)
            .with_challenges(challenges(answer.headers));
        if let Some(body) = answer.body {
            e.attach_body(answer.headers, body);
        }
        e
    };
    match Recovery::of(status.as_u16()) {
        Recovery::Done => Action::Done,
        // Refused before any work was done: safe to send again whatever the method.
        Recovery::WaitAndRetry => Action::Retry {
            wait: retry_after(answer.headers, now).map_or(Wait::Backoff, Wait::RetryAfter),
            why,
        },
        Recovery::RetryIfRepeatable if facts.repeatable => Action::Retry {
            wait: Wait::Backoff,
            why,
        },
        Recovery::ServerBug if facts.retry_server_bugs && facts.repeatable => Action::Retry {
            wait: Wait::Backoff,
            why,
        },
        Recovery::RetryIfRepeatable => Action::GiveUp(give_up(Reason::NotRepeatable)),
        Recovery::Reauthenticate => {
            let challenges = challenges(answer.headers);
            if invites_new_credentials(&challenges) {
                Action::Reauthenticate { challenges }
            } else {
                Action::GiveUp(give_up(Reason::Unauthorized))
            }
        }
        Recovery::ServerBug | Recovery::GiveUp => Action::GiveUp(give_up(Reason::Status)),
    }
}

/// An exchange that got no answer: retried when the request never left
/// (a connect failure) or is safe to repeat.
pub fn classify_failure(failure: FailureType, facts: Facts) -> Action {
    if failure.is_connect() || facts.repeatable {
        Action::Retry {
            wait: Wait::Backoff,
            why: Why::Failure(failure),
        }
    } else {
        Action::GiveUp(Error::new(Reason::NotRepeatable).with_failure(failure))
    }
}

/// Names a transport error the way the gateway names its upstream failures,
/// from its cause chain (reqwest's and hyper-util's errors, io errors, timeouts).
pub fn failure_of(error: &(dyn std::error::Error + 'static)) -> FailureType {
    let (mut connect, mut timeout, mut reset, mut invalid) = (false, false, false, false);
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(e) = e.downcast_ref::<reqwest::Error>() {
            connect |= e.is_connect();
            timeout |= e.is_timeout();
        }
        if let Some(e) = e.downcast_ref::<io::Error>() {
            match e.kind() {
                io::ErrorKind::ConnectionRefused => return FailureType::ConnectRefused,
                io::ErrorKind::TimedOut => timeout = true,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => reset = true,
                _ => {}
            }
        }
        if e.is::<tokio::time::error::Elapsed>() {
            timeout = true;
        }
        // hyper-util's legacy client says only this much about a connect error.
        let text = e.to_string();
        connect |= text.contains("(Connect)") || text.starts_with("error trying to connect");
        invalid |= text.contains("invalid HTTP") || text.contains("parse");
        next = e.source();
    }
    match (connect, timeout) {
        (true, true) => FailureType::ConnectTimeout,
        (true, false) => FailureType::ConnectError,
        (false, true) => FailureType::Timeout,
        _ if invalid && !reset => FailureType::InvalidResponse,
        _ => FailureType::Reset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn answer(status: u16, fields: &[(&'static str, &'static str)]) -> (StatusCode, HeaderMap) {
        let mut headers = HeaderMap::new();
        for (k, v) in fields {
            headers.append(*k, HeaderValue::from_static(v));
        }
        (StatusCode::from_u16(status).unwrap(), headers)
    }

    fn run(status: u16, fields: &[(&'static str, &'static str)], facts: Facts) -> Action {
        let (status, headers) = answer(status, fields);
        let a = Answer {
            status,
            headers: &headers,
            body: None,
        };
        classify(&a, facts, SystemTime::now())
    }

    const GET: Facts = Facts {
        repeatable: true,
        retry_server_bugs: false,
    };
    const POST: Facts = Facts {
        repeatable: false,
        retry_server_bugs: false,
    };

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let Action::Retry { wait, .. } = run(503, &[("retry-after", "7")], POST) else {
            panic!("503 with Retry-After is retried")
        };
        assert_eq!(wait, Wait::RetryAfter(Duration::from_secs(7)));
        let now = SystemTime::now();
        let date = httpdate_in(now, 120);
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_str(&date).unwrap());
        let a = Answer {
            status: StatusCode::TOO_MANY_REQUESTS,
            headers: &headers,
            body: None,
        };
        let Action::Retry {
            wait: Wait::RetryAfter(d),
            ..
        } = classify(&a, POST, now)
        else {
            panic!("a date is a wait")
        };
        assert!(
            d > Duration::from_secs(118) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        // Malformed: backoff, not a give-up.
        assert!(matches!(
            run(429, &[("retry-after", "soon")], POST),
            Action::Retry {
                wait: Wait::Backoff,
                ..
            }
        ));
    }

    fn httpdate_in(now: SystemTime, secs: u64) -> String {
        RetryAfter::Date(now + Duration::from_secs(secs)).to_string()
    }

    #[test]
    fn gateway_failures_retry_only_what_is_repeatable() {
        assert!(matches!(run(502, &[], GET), Action::Retry { .. }));
        assert!(matches!(run(504, &[], GET), Action::Retry { .. }));
        let Action::GiveUp(e) = run(502, &[], POST) else {
            panic!("a POST without a key is not repeated")
        };
        assert_eq!(e.reason(), Reason::NotRepeatable);
        assert!(matches!(
            classify_failure(FailureType::ConnectRefused, POST),
            Action::Retry { .. }
        ));
        assert!(matches!(
            classify_failure(FailureType::Reset, POST),
            Action::GiveUp(_)
        ));
        assert!(matches!(
            classify_failure(FailureType::Timeout, GET),
            Action::Retry { .. }
        ));
    }

    #[test]
    fn unauthorized_reauthenticates_only_for_token_errors() {
        let expired = [(
            "www-authenticate",
            r#"Bearer realm="api", error="invalid_token", error_description="expired""#,
        )];
        let Action::Reauthenticate { challenges } = run(401, &expired, GET) else {
            panic!("an expired token is refreshed")
        };
        assert_eq!(challenges[0].get("error"), Some("invalid_token"));
        assert!(matches!(
            run(401, &[("www-authenticate", r#"Bearer realm="api""#)], GET),
            Action::Reauthenticate { .. }
        ));
        let Action::GiveUp(e) = run(
            401,
            &[(
                "www-authenticate",
                r#"Bearer realm="api", error="insufficient_scope""#,
            )],
            GET,
        ) else {
            panic!("a scope problem is not a token problem")
        };
        assert_eq!(e.reason(), Reason::Unauthorized);
        assert_eq!(e.challenges().len(), 1);
    }

    #[test]
    fn client_faults_and_bugs_give_up_with_the_problem() {
        let (status, mut headers) = answer(422, &[]);
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/problem+json"),
        );
        let body = br#"{"type":"about:blank","status":422,"detail":"email taken"}"#;
        let a = Answer {
            status,
            headers: &headers,
            body: Some(body),
        };
        let Action::GiveUp(e) = classify(&a, GET, SystemTime::now()) else {
            panic!("422 gives up")
        };
        assert_eq!(e.status(), Some(StatusCode::UNPROCESSABLE_ENTITY));
        assert_eq!(
            e.problem().and_then(|p| p.detail.as_deref()),
            Some("email taken")
        );
        assert!(matches!(run(500, &[], GET), Action::GiveUp(_)));
        let opted = Facts {
            retry_server_bugs: true,
            ..GET
        };
        assert!(matches!(run(500, &[], opted), Action::Retry { .. }));
        assert!(matches!(run(204, &[], POST), Action::Done));
    }

    #[test]
    fn io_errors_name_their_failure() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(failure_of(&refused), FailureType::ConnectRefused);
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(failure_of(&reset), FailureType::Reset);
        let timeout = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(failure_of(&timeout), FailureType::Timeout);
    }
}
