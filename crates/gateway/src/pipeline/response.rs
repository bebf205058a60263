//! Every decision about an upstream's response head, made once: whether it
//! is well framed and how its body ends, which fields go on, which are added.
//!
//! Each codec hands [`plan`] the head's fields as (name, value) pairs and
//! applies the [`Plan`] in its own representation: proxy.rs edits hyper's
//! `HeaderMap`, direct.rs skips and writes raw field lines. A plan borrows
//! what it reads and allocates nothing unless a repair adds a field.

use std::sync::Arc;

use candor_contract::fields::{X_REQUEST_ID, X_UPSTREAM_SERVICE};
use candor_contract::{Challenge, RESPONSE_FIELDS, RetryAfter, fold_content_length, rules};
use http::header::{HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};

use super::cors::CorsAnswer;
use super::request::is_hop_by_hop;
use crate::config::{HeaderEdits, Repair};
use crate::metrics::{Metrics, UpstreamRuleLabels};
use crate::state::Shared;
use crate::upstream::{Pool, UpstreamFailure};

/// The hop-by-hop fields as header names, for the tests that check none
/// is forwarded (the decision itself is `request::is_hop_by_hop`).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) static HOP_BY_HOP: [&HeaderName; 7] = [
    &http::header::CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &http::header::TE,
    &http::header::TRAILER,
    &http::header::TRANSFER_ENCODING,
    &http::header::UPGRADE,
];
#[cfg(any(test, feature = "fuzzing"))]
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
#[cfg(any(test, feature = "fuzzing"))]
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The most fields a response's `Connection` may name; more is refused
/// (the plan keeps them in a fixed array).
const MAX_NAMED: usize = 16;

/// How a response's body ends (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (a response to HEAD, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Delimited by the upstream closing the connection.
    UntilClose,
}

/// What the gateway sets on each upstream response of one request.
pub(crate) struct Respond<'x> {
    pub request_id: &'x HeaderValue,
    /// The upstream's name, when debug headers are on: a 5xx names it.
    pub debug_upstream: Option<&'x str>,
    /// The route's deprecation fields.
    pub deprecation: &'x [(HeaderName, HeaderValue)],
    /// Fields set on every response of the route (its rate limit's), in
    /// place of the upstream's.
    pub extra: &'x [(HeaderName, HeaderValue)],
    /// A HEAD request: the response has no body, whatever it declares.
    pub head_request: bool,
    /// The monitor watches the upstream: it gets the fields it reads.
    pub monitor: bool,
    /// The upstream's `repair`, when it has one.
    pub repair: Option<Repairer<'x>>,
    /// The route's response field edits.
    pub edits: Option<&'x HeaderEdits>,
    /// The route's CORS policy and this request's verdict: the upstream's
    /// `Access-Control-*` fields give way to it.
    pub cors: Option<CorsAnswer<'x>>,
}

/// What a repair needs: what to fix, and where to count it.
pub(crate) struct Repairer<'x> {
    pub fix: Repair,
    pub realm: &'x str,
    pub metrics: &'x Metrics,
    pub upstream: &'x Arc<str>,
}

impl<'x> Repairer<'x> {
    /// The repairer of `pool`, when its `repair` asks for any.
    pub(crate) fn of(shared: &'x Shared, pool: &'x Pool, realm: &'x str) -> Option<Self> {
        let fix = pool.config.repair;
        (fix != Repair::default()).then_some(Repairer {
            fix,
            realm,
            metrics: &shared.metrics,
            upstream: &pool.name,
        })
    }
}

/// Whether a status is a 1xx to skip; a 101 would switch protocols the
/// gateway never asked for (it never forwards `Upgrade`): invalid.
pub(crate) fn informational(status: u16) -> Result<bool, UpstreamFailure> {
    match status {
        101 => Err(UpstreamFailure::InvalidResponse),
        _ => Ok(status < 200),
    }
}

/// The decisions on one final response head: its framing, then field by
/// field ([`Plan::keep`]) what goes on, then what is added ([`Plan::added`]).
pub(crate) struct Plan<'b, 'x> {
    respond: &'x Respond<'x>,
    status: u16,
    framing: Framing,
    /// The fields framed the body by a length: `Content-Length` goes on
    /// (otherwise the client's body is framed anew and it is dropped).
    by_length: bool,
    reusable: bool,
    /// A 5xx that names the upstream.
    debug: bool,
    named: [&'b [u8]; MAX_NAMED],
    named_len: usize,
    /// Among the fields kept so far: `WWW_AUTHENTICATE`, `RETRY_AFTER`, `DATE`.
    seen: u8,
    /// The route edits fields or has a CORS policy (one test per field
    /// on every other route).
    route_fields: bool,
}

const SEEN_CHALLENGE: u8 = 1;
const SEEN_RETRY_AFTER: u8 = 2;
const SEEN_DATE: u8 = 4;

/// Judges a final response head (`status`, HTTP/1.1 or 1.0, its fields in
/// order) and plans its edits: `upstream.invalid_response` when it is not
/// a valid answer to a proxied request.
///
/// Framing as RFC 9112 section 6.3 has it, and as hyper's client reads
/// it: Transfer-Encoding overrides Content-Length and is chunked when
/// `chunked` is the last coding; every Content-Length line must be one
/// decimal length (or a list of it repeated, see `fold_content_length`),
/// even where it does not frame the body (a response to HEAD); HTTP/1.0
/// has no transfer codings, so naming one is refused where the body is
/// read by it. HTTP/1.0 closes unless it says `keep-alive`; `close` wins.
pub(crate) fn plan<'b, 'x>(
    status: u16,
    http11: bool,
    fields: impl IntoIterator<Item = (&'b str, &'b [u8])>,
    respond: &'x Respond<'x>,
) -> Result<Plan<'b, 'x>, UpstreamFailure> {
    let invalid = UpstreamFailure::InvalidResponse;
    if informational(status)? {
        return Err(invalid);
    }
    let mut named: [&'b [u8]; MAX_NAMED] = [b""; MAX_NAMED];
    let mut named_len = 0;
    let mut length: Option<u64> = None;
    let mut chunked: Option<bool> = None;
    let (mut keep_alive, mut close) = (false, false);
    for (name, value) in fields {
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(fold_content_length(length, value).ok_or(invalid)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                } else if token.is_empty() {
                } else if named_len < MAX_NAMED {
                    named[named_len] = token;
                    named_len += 1;
                } else {
                    return Err(invalid);
                }
            }
        }
    }
    // HTTP/1.0 with a transfer coding: faulty framing, and the connection
    // closes after it (RFC 9112 section 6.1).
    let faulty = !http11 && chunked.is_some();
    let declared = match (chunked, length) {
        (Some(true), _) => Framing::Chunked,
        (Some(false), _) | (None, None) => Framing::UntilClose,
        (None, Some(n)) => Framing::Length(n),
    };
    let framing = if respond.head_request || status == 204 || status == 304 {
        Framing::Empty
    } else if faulty {
        // As hyper's client: only a body read by that framing is refused.
        return Err(invalid);
    } else {
        declared
    };
    let keep_alive = !close && (http11 || keep_alive) && !faulty;
    Ok(Plan {
        respond,
        status,
        framing,
        by_length: matches!(declared, Framing::Length(_)),
        // A connection that answered a HEAD is not reused: a HEAD handler
        // that writes the GET body (a common bug) may send it after any
        // check made at reuse, and it would become the next response.
        reusable: keep_alive && framing != Framing::UntilClose && !respond.head_request,
        debug: (500..600).contains(&status) && respond.debug_upstream.is_some(),
        named,
        named_len,
        seen: 0,
        route_fields: respond.edits.is_some() || respond.cors.is_some(),
    })
}

impl<'x> Plan<'_, 'x> {
    /// How the body is read (and framed for the client).
    pub(crate) fn framing(&self) -> Framing {
        self.framing
    }

    /// Whether the upstream connection may serve another request once the
    /// body has ended where its framing says (this codec reads the fields'
    /// `Connection` and framing itself).
    pub(crate) fn reusable(&self) -> bool {
        self.reusable
    }

    /// The gateway's own part of [`Plan::reusable`], for a codec whose
    /// client (hyper's) judges `Connection` and framing itself: never
    /// after a HEAD.
    pub(crate) fn may_reuse(&self) -> bool {
        !self.respond.head_request
    }

    /// Whether the upstream's field `name` goes to the client: not a
    /// hop-by-hop field (RFC 9110 section 7.6.1) or one `Connection`
    /// names, not a length that is not the framing, not one the gateway
    /// sets itself. Called once per field line, in order.
    #[inline]
    pub(crate) fn keep(&mut self, name: &str) -> bool {
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        let dropped = is_hop_by_hop(name.as_bytes())
            || self.named[..self.named_len]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name.as_bytes()))
            || is(X_REQUEST_ID.as_str())
            || (self.debug && is(X_UPSTREAM_SERVICE.as_str()))
            || self.respond.extra.iter().any(|(n, _)| is(n.as_str()))
            || (!self.by_length && is("content-length"))
            || (self.route_fields && self.route_drops(name));
        if dropped {
            return false;
        }
        if is("www-authenticate") {
            self.seen |= SEEN_CHALLENGE;
        } else if is("retry-after") {
            self.seen |= SEEN_RETRY_AFTER;
        } else if is("date") {
            self.seen |= SEEN_DATE;
        }
        true
    }

    /// Whether the route's edits or CORS policy take the place of the
    /// upstream's field `name`.
    #[inline]
    fn route_drops(&self, name: &str) -> bool {
        let r = self.respond;
        r.edits.is_some_and(|e| e.drops(name.as_bytes()))
            || (r.cors.is_some()
                && name.len() > 15
                && name.as_bytes()[..15].eq_ignore_ascii_case(b"access-control-"))
    }

    /// Whether the monitor reads a kept field (it gets a copy).
    pub(crate) fn watched(&self, name: &str) -> bool {
        self.respond.monitor
            && RESPONSE_FIELDS
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n.as_str()))
    }

    /// No `Date` among the kept fields: the codec adds the current one
    /// (hyper's server does it by itself).
    pub(crate) fn needs_date(&self) -> bool {
        self.seen & SEEN_DATE == 0
    }

    /// The fields the gateway adds after the upstream's kept ones, once
    /// every field went through [`Plan::keep`]: repairs (counted here,
    /// so call it once), the request id, the upstream's name on a 5xx
    /// with debug headers, the route's deprecation and rate-limit fields.
    pub(crate) fn added(&self) -> Added<'x> {
        // Boxed, and only when a field was added: nearly no response
        // needs one, and an empty pair would still be moved and dropped.
        let repairs = self
            .respond
            .repair
            .as_ref()
            .map(|r| repairs(r, self.status, self.seen))
            .filter(|added| added.iter().any(Option::is_some))
            .map(Box::new);
        Added {
            repairs,
            respond: self.respond,
            debug: self.debug,
        }
    }
}

/// A repair's field: a challenge on a 401 without one, `Retry-After: 1`
/// on a 429 or 503 without one, each counted by the rule it mends.
fn repairs(r: &Repairer<'_>, status: u16, seen: u8) -> Repairs {
    let count = |rule: &'static str| {
        r.metrics
            .repairs
            .get_or_create(&UpstreamRuleLabels {
                upstream: r.upstream.clone(),
                rule,
            })
            .inc();
    };
    let mut added = [None, None];
    if r.fix.challenge
        && status == 401
        && seen & SEEN_CHALLENGE == 0
        && let Ok(v) = HeaderValue::from_str(&Challenge::bearer(r.realm).to_string())
    {
        added[0] = Some((WWW_AUTHENTICATE, v));
        count(rules::AUTH_401_WITHOUT_CHALLENGE.id);
    }
    if r.fix.retry_after && (status == 429 || status == 503) && seen & SEEN_RETRY_AFTER == 0 {
        let value = RetryAfter::after(std::time::Duration::from_secs(1)).to_string();
        if let Ok(v) = HeaderValue::from_str(&value) {
            added[1] = Some((RETRY_AFTER, v));
            count(if status == 429 {
                rules::RATE_429_WITHOUT_RETRY_AFTER.id
            } else {
                rules::UNAVAILABLE_503_WITHOUT_RETRY_AFTER.id
            });
        }
    }
    added
}

/// The fields repairs add: a challenge, a `Retry-After`.
type Repairs = [Option<(HeaderName, HeaderValue)>; 2];

/// The fields a [`Plan`] adds, in the order they go.
pub(crate) struct Added<'x> {
    repairs: Option<Box<Repairs>>,
    respond: &'x Respond<'x>,
    debug: bool,
}

/// An added field's value: a ready field value, or text (the upstream's
/// name) the hyper codec makes one of.
pub(crate) enum Value<'a> {
    Field(&'a HeaderValue),
    Text(&'a str),
}

impl Value<'_> {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Value::Field(v) => v.as_bytes(),
            Value::Text(s) => s.as_bytes(),
        }
    }
}

impl Added<'_> {
    pub(crate) fn each(&self, mut f: impl FnMut(&HeaderName, Value<'_>)) {
        for (name, value) in self.repairs.iter().flat_map(|r| r.iter().flatten()) {
            f(name, Value::Field(value));
        }
        f(&X_REQUEST_ID, Value::Field(self.respond.request_id));
        if self.debug
            && let Some(upstream) = self.respond.debug_upstream
        {
            f(&X_UPSTREAM_SERVICE, Value::Text(upstream));
        }
        for (name, value) in self.respond.deprecation.iter().chain(self.respond.extra) {
            f(name, Value::Field(value));
        }
        if let Some(edits) = self.respond.edits {
            for (name, value) in edits.added() {
                f(name, Value::Field(value));
            }
        }
        if let Some(cors) = &self.respond.cors {
            cors.policy
                .each_actual(cors.allowed, |name, value| f(name, Value::Field(value)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direct::{Parsed, rewrite_response};
    use http::HeaderMap;
    use proptest::prelude::*;

    fn respond<'x>(
        id: &'x HeaderValue,
        extra: &'x [(HeaderName, HeaderValue)],
        deprecation: &'x [(HeaderName, HeaderValue)],
        head_request: bool,
        debug: bool,
        repair: Option<Repairer<'x>>,
    ) -> Respond<'x> {
        Respond {
            request_id: id,
            debug_upstream: debug.then_some("svc"),
            deprecation,
            extra,
            head_request,
            monitor: true,
            repair,
            edits: None,
            cors: None,
        }
    }

    /// The framing verdict and reuse of a head's fields, for a GET.
    fn framing(fields: &[(&str, &str)], http11: bool) -> Result<(Framing, bool), UpstreamFailure> {
        let id = HeaderValue::from_static("rid");
        let r = respond(&id, &[], &[], false, false, None);
        let fields = fields.iter().map(|(n, v)| (*n, v.as_bytes()));
        plan(200, http11, fields, &r).map(|p| (p.framing(), p.reusable()))
    }

    #[test]
    fn response_framing_follows_rfc_9112_section_6_3() {
        let invalid = Err(UpstreamFailure::InvalidResponse);
        assert_eq!(
            framing(&[("content-length", "5")], true),
            Ok((Framing::Length(5), true))
        );
        assert_eq!(
            framing(&[("Content-Length", "5, 5")], true),
            Ok((Framing::Length(5), true))
        );
        assert_eq!(
            framing(&[("content-length", "5"), ("content-length", "6")], true),
            invalid
        );
        assert_eq!(framing(&[("content-length", "+5")], true), invalid);
        assert_eq!(
            framing(
                &[("content-length", "5"), ("transfer-encoding", "chunked")],
                true
            ),
            Ok((Framing::Chunked, true))
        );
        assert_eq!(
            framing(&[("transfer-encoding", "gzip, Chunked")], true),
            Ok((Framing::Chunked, true))
        );
        // Read until the upstream closes: never reused.
        assert_eq!(
            framing(&[("transfer-encoding", "chunked, gzip")], true),
            Ok((Framing::UntilClose, false))
        );
        assert_eq!(framing(&[], true), Ok((Framing::UntilClose, false)));
        assert_eq!(
            framing(&[("content-length", "2"), ("connection", "close")], true),
            Ok((Framing::Length(2), false))
        );
        assert_eq!(
            framing(&[("content-length", "2")], false),
            Ok((Framing::Length(2), false))
        );
        // HTTP/1.0: kept alive only when it says so; no transfer coding.
        assert_eq!(
            framing(
                &[("connection", "keep-alive"), ("content-length", "2")],
                false
            ),
            Ok((Framing::Length(2), true))
        );
        assert_eq!(
            framing(&[("connection", "keep-alive, close")], false),
            Ok((Framing::UntilClose, false))
        );
        assert_eq!(framing(&[("transfer-encoding", "chunked")], false), invalid);
        assert_eq!(
            framing(
                &[("transfer-encoding", "gzip"), ("content-length", "2")],
                false
            ),
            invalid
        );
        let many = (0..=MAX_NAMED)
            .map(|i| format!("x-{i}"))
            .collect::<Vec<_>>();
        assert_eq!(framing(&[("connection", &many.join(","))], true), invalid);
    }

    #[test]
    fn the_hop_by_hop_names_are_the_standard_ones() {
        for name in HOP_BY_HOP {
            assert!(is_hop_by_hop(name.as_str().as_bytes()), "{name}");
            assert!(
                is_hop_by_hop(name.as_str().to_uppercase().as_bytes()),
                "{name}"
            );
        }
        assert!(!is_hop_by_hop(b"content-length") && !is_hop_by_hop(b"tea"));
        // The list the configuration refuses is the one the codecs drop.
        let names: Vec<&str> = HOP_BY_HOP.iter().map(|n| n.as_str()).collect();
        assert_eq!(names, candor_contract::fields::HOP_BY_HOP);
    }

    #[test]
    fn a_switch_of_protocols_is_refused_and_other_1xx_skipped() {
        assert_eq!(informational(101), Err(UpstreamFailure::InvalidResponse));
        assert_eq!(informational(100), Ok(true));
        assert_eq!(informational(103), Ok(true));
        assert_eq!(informational(200), Ok(false));
        let id = HeaderValue::from_static("rid");
        let r = respond(&id, &[], &[], false, false, None);
        assert!(plan(101, true, [], &r).is_err());
    }

    /// Field lines an upstream may send, each a trap for one of the
    /// decisions: framing, hop-by-hop, `Connection`, the gateway's own.
    const FIELDS: &[(&str, &[&str])] = &[
        ("content-length", &["5", "5, 5", "6", "+5", "", "007"]),
        (
            "transfer-encoding",
            &["chunked", "gzip, chunked", "chunked, gzip", "gzip"],
        ),
        (
            "connection",
            &[
                "close",
                "keep-alive",
                "x-a",
                "x-a, x-b",
                "te, close",
                "keep-alive, x-b",
                "www-authenticate",
                "retry-after, date",
            ],
        ),
        ("keep-alive", &["timeout=5"]),
        ("te", &["trailers"]),
        ("trailer", &["x-sum"]),
        ("upgrade", &["h2c"]),
        ("proxy-connection", &["keep-alive"]),
        ("x-a", &["1"]),
        ("x-b", &["2"]),
        ("www-authenticate", &["Bearer realm=\"up\""]),
        ("retry-after", &["5"]),
        ("date", &["Thu, 01 Jan 2026 00:00:00 GMT"]),
        ("x-request-id", &["theirs"]),
        ("x-upstream-service", &["deeper"]),
        ("ratelimit", &["\"q\";r=1"]),
        ("sunset", &["soon"]),
        ("content-type", &["application/json"]),
        ("location", &["/x"]),
        ("access-control-allow-origin", &["*"]),
        ("vary", &["accept-encoding"]),
    ];

    fn field() -> impl Strategy<Value = (String, String)> {
        (0..FIELDS.len(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, value, case)| {
            let (name, values) = FIELDS[i];
            // Names come in any case; hyper's map lowers them.
            let name: String = name
                .chars()
                .enumerate()
                .map(|(j, c)| {
                    if case >> (j % 8) & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            (name, value.get(values).to_string())
        })
    }

    /// A head as raw bytes (the direct path's input).
    fn raw(status: u16, http11: bool, fields: &[(String, String)]) -> Vec<u8> {
        let mut out = format!("HTTP/1.{} {status} Any\r\n", u8::from(http11));
        for (name, value) in fields {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    /// The same head as hyper's client hands it over.
    fn parts(status: u16, http11: bool, fields: &[(String, String)]) -> http::response::Parts {
        let mut response = http::Response::new(());
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
        *response.version_mut() = if http11 {
            http::Version::HTTP_11
        } else {
            http::Version::HTTP_10
        };
        for (name, value) in fields {
            response.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        response.into_parts().0
    }

    /// Field lines, names lowered, grouped by name in their order.
    fn sorted<'a>(fields: impl Iterator<Item = (&'a str, &'a [u8])>) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<_> = fields
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_vec()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn listed(map: &HeaderMap) -> Vec<(String, Vec<u8>)> {
        sorted(map.iter().map(|(n, v)| (n.as_str(), v.as_bytes())))
    }

    proptest! {
        /// Both codecs, given one upstream head, hand the pipeline the same
        /// facts and apply the same plan: the same verdict, framing and
        /// reuse, the same fields for the client and for the monitor.
        #[test]
        fn both_codecs_edit_a_head_alike(
            status in prop::sample::select(vec![
                200u16, 201, 204, 206, 304, 401, 404, 429, 500, 502, 503, 599, 600, 101,
            ]),
            http11 in any::<bool>(),
            head_request in any::<bool>(),
            debug in any::<bool>(),
            limited in any::<bool>(),
            repair in any::<bool>(),
            edited in any::<bool>(),
            fields in prop::collection::vec(field(), 0..10),
        ) {
            let id = HeaderValue::from_static("rid");
            let rate = [(HeaderName::from_static("ratelimit"), HeaderValue::from_static("\"q\";r=9"))];
            let extra: &[_] = if limited { &rate } else { &[] };
            let deprecation = [(HeaderName::from_static("deprecation"), HeaderValue::from_static("@1"))];
            let metrics = Metrics::new();
            let upstream: Arc<str> = Arc::from("svc");
            let repairer = || repair.then_some(Repairer {
                fix: Repair { challenge: true, retry_after: true },
                realm: "api",
                metrics: &metrics,
                upstream: &upstream,
            });
            let mut direct_respond = respond(&id, extra, &deprecation, head_request, debug, repairer());
            let mut hyper_respond = respond(&id, extra, &deprecation, head_request, debug, repairer());
            // A route that edits fields (one the repairs read among them)
            // and has a CORS policy admitting the request's origin.
            let edits = HeaderEdits {
                set: vec![(HeaderName::from_static("location"), HeaderValue::from_static("/y"))],
                add: vec![(HeaderName::from_static("x-a"), HeaderValue::from_static("9"))],
                remove: vec![HeaderName::from_static("x-b"), RETRY_AFTER],
            };
            let policy = super::super::cors::CorsPolicy::new(&crate::config::Cors {
                origins: Some(vec!["https://app.example".to_owned()]),
                methods: vec![http::Method::GET],
                headers: Vec::new(),
                expose: vec![HeaderName::from_static("x-a")],
                credentials: true,
                max_age: None,
            });
            let cors = CorsAnswer {
                policy: &policy,
                allowed: policy.allow(Some(b"https://app.example")),
            };
            if edited {
                for r in [&mut direct_respond, &mut hyper_respond] {
                    r.edits = Some(&edits);
                    r.cors = Some(cors);
                }
            }

            let bytes = raw(status, http11, &fields);
            let mut reply = Vec::new();
            let direct = rewrite_response(&bytes, &direct_respond, false, &mut reply);
            let mut hyper = parts(status, http11, &fields);
            let facts = parts(status, http11, &fields);
            let planned = plan(
                status,
                http11,
                facts.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
                &hyper_respond,
            )
            .map(|p| (p.framing(), p.reusable(), p.may_reuse()));
            let edited = crate::proxy::edit_head(&mut hyper, &hyper_respond);

            let head = match direct {
                Ok(Parsed::Final(head)) => head,
                Ok(Parsed::Informational(_)) => panic!("no 1xx but 101 is generated"),
                Err(e) => {
                    prop_assert_eq!(Err(e), edited.map(|_| ()));
                    prop_assert!(planned.is_err());
                    return Ok(());
                }
            };
            let (snapshot, may_reuse) = edited.expect("hyper's head is taken as the direct one");
            let (framing, reusable, planned_reuse) = planned.expect("the same facts");
            prop_assert_eq!(head.framing, framing);
            prop_assert_eq!(head.keep_alive, reusable);
            prop_assert_eq!(may_reuse, planned_reuse);
            prop_assert_eq!(head.status, hyper.status.as_u16());
            prop_assert_eq!(hyper.version, http::Version::HTTP_11);

            let mut out = [httparse::EMPTY_HEADER; 64];
            let mut sent = httparse::Response::new(&mut out);
            prop_assert_eq!(sent.parse(&reply), Ok(httparse::Status::Complete(reply.len())));
            // What this codec owes the client itself (hyper's server does
            // the same): the body's framing anew, and a Date if none came.
            let count = |name: &str| sent.headers.iter().filter(|f| f.name.eq_ignore_ascii_case(name)).count();
            let chunked = matches!(framing, Framing::Chunked | Framing::UntilClose);
            let had_date = hyper.headers.contains_key(http::header::DATE);
            prop_assert_eq!(count("transfer-encoding"), usize::from(chunked));
            prop_assert!(count("date") >= 1);
            prop_assert!(had_date || count("date") == 1);
            let direct_fields = sorted(
                sent.headers
                    .iter()
                    .filter(|f| !f.name.eq_ignore_ascii_case("transfer-encoding"))
                    .filter(|f| had_date || !f.name.eq_ignore_ascii_case("date"))
                    .map(|f| (f.name, f.value)),
            );
            prop_assert_eq!(direct_fields, listed(&hyper.headers));
            prop_assert_eq!(
                head.snapshot.as_deref().map(listed),
                snapshot.as_ref().map(listed)
            );
        }
    }
}
