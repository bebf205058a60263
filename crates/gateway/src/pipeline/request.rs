//! The request side, once for both codecs: what a head's fields say (one
//! pass over them), which of them go upstream as sent, and what is added.

use candor_contract::{fold_content_length, forwarded_quotes_closed};
use std::net::SocketAddr;

use bytes::Bytes;
use http::HeaderName;
use http::header::HeaderValue;

use crate::config::HeaderEdits;
use crate::error::X_REQUEST_ID;
use crate::state::{Runtime, Shared};
use crate::trace::{RequestSpan, TRACEPARENT, TRACESTATE};

/// The connection a request came in on, with the forwarding fields that
/// depend only on it, made once per connection rather than per request
/// (and shared by its requests).
#[derive(Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    /// The peer's address, as `X-Forwarded-For` names it.
    pub(crate) peer_ip: HeaderValue,
    /// `for=...;proto=...`, the start of this hop's `Forwarded` element.
    pub(crate) forwarded_for: HeaderValue,
}

impl ConnInfo {
    pub fn new(peer: SocketAddr, tls: bool) -> ConnInfo {
        let ip = peer.ip();
        let proto = if tls { "https" } else { "http" };
        // RFC 7239 section 6: an IPv6 node is quoted and bracketed.
        let forwarded_for = if ip.is_ipv6() {
            format!("for=\"[{ip}]\";proto={proto}")
        } else {
            format!("for={ip};proto={proto}")
        };
        ConnInfo {
            peer,
            tls,
            peer_ip: HeaderValue::from_maybe_shared(Bytes::from(ip.to_string()))
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            // Addresses and a scheme: always a valid field value.
            forwarded_for: HeaderValue::from_maybe_shared(Bytes::from(forwarded_for))
                .unwrap_or_else(|_| HeaderValue::from_static("for=unknown")),
        }
    }
}

/// What every step of one request reads: the gateway's state, the
/// configuration the request started under, its connection, what its
/// fields say and the id it goes by.
pub(crate) struct RequestCx<'a, T> {
    pub shared: &'a Shared,
    pub runtime: &'a Runtime,
    pub conn: &'a ConnInfo,
    pub fields: &'a RequestFields<T>,
    pub request_id: &'a HeaderValue,
    /// The request's span, when tracing is on.
    pub span: Option<&'a RequestSpan>,
}

/// The fields the gateway reads, replaces or removes, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    Host,
    ContentLength,
    Connection,
    TransferEncoding,
    /// Hop-by-hop fields besides Connection and Transfer-Encoding:
    /// TE, Trailer, Upgrade, Keep-Alive, Proxy-Connection.
    HopByHop,
    Expect,
    Accept,
    RequestId,
    ForwardedFor,
    Forwarded,
    ForwardedProto,
    ForwardedHost,
    /// Set only by the gateway, from a route's `strip_prefix`: a client's
    /// would tell the upstream a prefix the gateway never stripped.
    ForwardedPrefix,
    /// A field the gateway sets from the identity it checked.
    Identity,
    /// W3C Trace Context: replaced by the gateway's own when it traces.
    TraceParent,
    TraceState,
    Other,
}

impl Known {
    /// Whether a field of this kind goes upstream as the client sent it;
    /// the others are hop-by-hop (RFC 9110 section 7.6.1) or the gateway's
    /// own to set.
    pub(crate) fn forwarded_as_sent(self, tracing: bool) -> bool {
        match self {
            Known::Host | Known::ContentLength | Known::Expect | Known::Accept | Known::Other => {
                true
            }
            Known::TraceParent | Known::TraceState => !tracing,
            _ => false,
        }
    }

    /// A hop-by-hop field (RFC 9110 section 7.6.1, and the old ones
    /// proxies drop), in a request or a response.
    pub(crate) fn hop_by_hop(self) -> bool {
        matches!(
            self,
            Known::Connection | Known::TransferEncoding | Known::HopByHop
        )
    }

    /// The kind of a field named `name` (any case); `identity` names the
    /// fields the gateway sets from a checked identity.
    pub(crate) fn of(name: &[u8], identity: [&[u8]; 2]) -> Known {
        match Known::named(name) {
            Known::Other if identity.into_iter().any(|i| name.eq_ignore_ascii_case(i)) => {
                Known::Identity
            }
            known => known,
        }
    }

    /// The kind of a field named `name` (any case) among the fixed names.
    #[inline(always)]
    fn named(name: &[u8]) -> Known {
        let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
        // The length first: most names are ruled out by one comparison.
        match name.len() {
            2 if is(b"te") => Known::HopByHop,
            4 if is(b"host") => Known::Host,
            6 if is(b"accept") => Known::Accept,
            6 if is(b"expect") => Known::Expect,
            7 if is(b"upgrade") || is(b"trailer") => Known::HopByHop,
            9 if is(b"forwarded") => Known::Forwarded,
            10 if is(b"connection") => Known::Connection,
            10 if is(b"keep-alive") => Known::HopByHop,
            10 if is(b"tracestate") => Known::TraceState,
            11 if is(b"traceparent") => Known::TraceParent,
            12 if is(b"x-request-id") => Known::RequestId,
            14 if is(b"content-length") => Known::ContentLength,
            15 if is(b"x-forwarded-for") => Known::ForwardedFor,
            16 if is(b"proxy-connection") => Known::HopByHop,
            16 if is(b"x-forwarded-host") => Known::ForwardedHost,
            17 if is(b"transfer-encoding") => Known::TransferEncoding,
            17 if is(b"x-forwarded-proto") => Known::ForwardedProto,
            18 if is(b"x-forwarded-prefix") => Known::ForwardedPrefix,
            _ => Known::Other,
        }
    }
}

/// What a request's fields say, from one pass over them (name comparisons,
/// no hashing). Where a field repeats, the first one counts, as a lookup's.
/// `T` holds a value: borrowed bytes on the direct path, a `HeaderValue`
/// (a counted reference) on the hyper path.
#[derive(Debug, Clone)]
pub(crate) struct RequestFields<T> {
    /// The header section's size as sent: names, values, ": " and CRLF.
    pub size: usize,
    pub host: Option<T>,
    /// How many Host fields came (more than one is refused).
    pub hosts: u8,
    /// The declared length, when every Content-Length line agrees.
    pub content_length: Option<u64>,
    /// How many Content-Length lines came, and whether each was one
    /// length in plain digits.
    pub length_lines: u8,
    pub length_plain: bool,
    pub accept: Option<T>,
    /// The client's X-Request-Id, not yet checked.
    pub request_id: Option<T>,
    /// The first traceparent and tracestate, not yet checked, and how many
    /// traceparents came (more than one is not a parent: W3C Trace Context).
    pub traceparent: Option<T>,
    pub traceparents: u8,
    pub tracestate: Option<T>,
    /// The first X-Forwarded-For of earlier hops, when it is visible text.
    pub prior_for: Option<T>,
    /// The first Forwarded of earlier hops, when it is visible text with
    /// its quotes closed (an open one would swallow this hop's element).
    pub prior_forwarded: Option<T>,
    /// `Connection: close`.
    pub close: bool,
    /// `Connection` names Host (refused: it would remove it on the way).
    pub connection_names_host: bool,
    /// `Connection` names a field besides Host (removed on the way: RFC
    /// 9110 section 7.6.1).
    pub connection_names_other: bool,
    /// A transfer coding the gateway does not implement: anything but
    /// one `chunked`.
    pub unsupported_coding: Option<T>,
    pub expect: bool,
    /// A hop-by-hop field besides `Connection: close | keep-alive`.
    pub hop_by_hop: bool,
    /// Some field does not go upstream as sent.
    pub dropped: bool,
    /// Bit `i`: field `i` does not go upstream as sent (fields past the
    /// 128th are covered by `dropped` alone).
    pub skip: u128,
}

impl<T> RequestFields<T> {
    /// The same facts, each held value mapped (borrowed to owned).
    pub(crate) fn map<U>(self, f: impl Fn(T) -> U) -> RequestFields<U> {
        RequestFields {
            size: self.size,
            host: self.host.map(&f),
            hosts: self.hosts,
            content_length: self.content_length,
            length_lines: self.length_lines,
            length_plain: self.length_plain,
            accept: self.accept.map(&f),
            request_id: self.request_id.map(&f),
            traceparent: self.traceparent.map(&f),
            traceparents: self.traceparents,
            tracestate: self.tracestate.map(&f),
            prior_for: self.prior_for.map(&f),
            prior_forwarded: self.prior_forwarded.map(&f),
            close: self.close,
            connection_names_host: self.connection_names_host,
            connection_names_other: self.connection_names_other,
            unsupported_coding: self.unsupported_coding.map(&f),
            expect: self.expect,
            hop_by_hop: self.hop_by_hop,
            dropped: self.dropped,
            skip: self.skip,
        }
    }
}

impl<T: AsRef<[u8]>> RequestFields<T> {
    /// One pass over a head's fields, (name, value) in the order sent;
    /// `tracing`: the gateway replaces the Trace Context fields.
    pub(crate) fn scan<'h, I>(fields: I, identity: [&[u8]; 2], tracing: bool) -> RequestFields<T>
    where
        I: IntoIterator<Item = (&'h [u8], T)>,
    {
        let mut f = RequestFields {
            size: 0,
            host: None,
            hosts: 0,
            content_length: None,
            length_lines: 0,
            length_plain: true,
            accept: None,
            request_id: None,
            traceparent: None,
            traceparents: 0,
            tracestate: None,
            prior_for: None,
            prior_forwarded: None,
            close: false,
            connection_names_host: false,
            connection_names_other: false,
            unsupported_coding: None,
            expect: false,
            hop_by_hop: false,
            dropped: false,
            skip: 0,
        };
        let mut length_valid = true;
        let mut chunked = false;
        let mut for_seen = false;
        let mut forwarded_seen = false;
        for (i, (name, value)) in fields.into_iter().enumerate() {
            let bytes = value.as_ref();
            f.size += name.len() + bytes.len() + 4;
            let known = Known::of(name, identity);
            match known {
                Known::Host => {
                    f.hosts = f.hosts.saturating_add(1);
                    f.host.get_or_insert(value);
                }
                Known::ContentLength => {
                    f.length_lines = f.length_lines.saturating_add(1);
                    f.length_plain &= candor_contract::content_length_digits(bytes).is_some();
                    if length_valid {
                        f.content_length = fold_content_length(f.content_length, bytes);
                        length_valid = f.content_length.is_some();
                    }
                }
                Known::Connection => {
                    for token in list_items(bytes) {
                        if token.eq_ignore_ascii_case(b"close") {
                            f.close = true;
                        } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        } else if token.eq_ignore_ascii_case(b"host") {
                            f.connection_names_host = true;
                        } else {
                            f.connection_names_other = true;
                        }
                    }
                }
                Known::TransferEncoding => {
                    f.hop_by_hop = true;
                    // One `chunked`, the only coding the gateway decodes.
                    let mut unsupported = false;
                    for coding in list_items(bytes) {
                        unsupported |= chunked || !coding.eq_ignore_ascii_case(b"chunked");
                        chunked = true;
                    }
                    if unsupported && f.unsupported_coding.is_none() {
                        f.unsupported_coding = Some(value);
                    }
                }
                Known::HopByHop => f.hop_by_hop = true,
                Known::Expect => f.expect = true,
                Known::Accept => {
                    f.accept.get_or_insert(value);
                }
                Known::RequestId => {
                    f.request_id.get_or_insert(value);
                }
                Known::TraceParent => {
                    f.traceparents = f.traceparents.saturating_add(1);
                    f.traceparent.get_or_insert(value);
                }
                Known::TraceState => {
                    f.tracestate.get_or_insert(value);
                }
                Known::ForwardedFor => {
                    if !std::mem::replace(&mut for_seen, true) && visible(bytes) {
                        f.prior_for = Some(value);
                    }
                }
                Known::Forwarded => {
                    if !std::mem::replace(&mut forwarded_seen, true)
                        && visible(bytes)
                        && forwarded_quotes_closed(bytes)
                    {
                        f.prior_forwarded = Some(value);
                    }
                }
                Known::ForwardedProto
                | Known::ForwardedHost
                | Known::ForwardedPrefix
                | Known::Identity
                | Known::Other => {}
            }
            if !known.forwarded_as_sent(tracing) {
                f.dropped = true;
                if i < 128 {
                    f.skip |= 1 << i;
                }
            }
        }
        if !length_valid {
            f.content_length = None;
        }
        f
    }

    /// The client takes problem+json (also when it sent no Accept).
    pub(crate) fn takes_json(&self) -> bool {
        crate::error::accepts_json(self.accept.as_ref().map(AsRef::as_ref))
    }
}

/// Whether a field named `name` (any case) is hop-by-hop.
#[inline]
pub(crate) fn is_hop_by_hop(name: &[u8]) -> bool {
    Known::named(name).hop_by_hop()
}

pub(crate) use crate::field_value::list_items;

/// Visible ASCII, spaces and tabs: text a header map gives back as `str`.
fn visible(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
}

pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub(crate) static FORWARDED: HeaderName = HeaderName::from_static("forwarded");
pub(crate) static X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

/// The fields among `names` (in order, the first 128) that a route's
/// request edits drop, as bits to add to [`RequestFields::skip`].
pub(crate) fn edit_skip<'n>(edits: &HeaderEdits, names: impl Iterator<Item = &'n [u8]>) -> u128 {
    let mut skip = 0;
    for (i, name) in names.enumerate().take(128) {
        if edits.drops(name) {
            skip |= 1 << i;
        }
    }
    skip
}

/// A value the gateway adds: one a codec already holds, or parts joined.
pub(crate) enum FieldValue<'p, T: ?Sized> {
    Held(&'p HeaderValue),
    Host(&'p T),
    Static(&'static str),
    Joined(&'p [&'p [u8]]),
}

/// A field the gateway adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddedField<'p> {
    ForwardedFor,
    ForwardedProto,
    Forwarded,
    ForwardedHost,
    ForwardedPrefix,
    RequestId,
    TraceParent,
    TraceState,
    /// One of the identity fields, named by the configuration.
    Identity(&'p HeaderName),
    /// A field the route sets or adds (appended to any the client sent).
    Route(&'p HeaderName),
}

impl AddedField<'_> {
    pub(crate) fn name(&self) -> &HeaderName {
        match self {
            AddedField::ForwardedFor => &X_FORWARDED_FOR,
            AddedField::ForwardedProto => &X_FORWARDED_PROTO,
            AddedField::Forwarded => &FORWARDED,
            AddedField::ForwardedHost => &X_FORWARDED_HOST,
            AddedField::ForwardedPrefix => &X_FORWARDED_PREFIX,
            AddedField::RequestId => &X_REQUEST_ID,
            AddedField::TraceParent => &TRACEPARENT,
            AddedField::TraceState => &TRACESTATE,
            AddedField::Identity(name) | AddedField::Route(name) => name,
        }
    }
}

/// The identity a route checked, as the fields that carry it upstream.
pub(crate) struct IdentityFields<'p> {
    pub names: [&'p HeaderName; 2],
    pub subject: &'p [u8],
    pub roles: &'p [u8],
}

/// The fields added to a request on its way upstream (RFC 7239 Forwarded,
/// the X-Forwarded-* trio, X-Request-Id, the checked identity), whatever
/// codec writes them.
pub(crate) struct Forwarding<'p, T: ?Sized> {
    pub conn: &'p ConnInfo,
    /// The client's Host (admission checked it is an authority, so it needs
    /// no escaping inside Forwarded's quotes).
    pub host: Option<&'p T>,
    pub prior_for: Option<&'p [u8]>,
    pub prior_forwarded: Option<&'p [u8]>,
    pub request_id: &'p HeaderValue,
    pub identity: Option<IdentityFields<'p>>,
    /// The prefix the route stripped, for `X-Forwarded-Prefix`.
    pub prefix: Option<&'p HeaderValue>,
    /// The route's request field edits: these fields are appended.
    pub edits: Option<&'p HeaderEdits>,
    /// The request's span, when tracing is on: its traceparent (and the
    /// client's tracestate) replace what the client sent.
    pub span: Option<&'p RequestSpan>,
}

impl<T: ?Sized + AsRef<[u8]>> Forwarding<'_, T> {
    /// Each added field, in the order written; every one replaces any
    /// field of that name the client sent.
    #[inline]
    pub(crate) fn each(&self, mut add: impl FnMut(AddedField<'_>, FieldValue<'_, T>)) {
        let conn = self.conn;
        match self.prior_for {
            Some(prior) => add(
                AddedField::ForwardedFor,
                FieldValue::Joined(&[prior, b", ", conn.peer_ip.as_bytes()]),
            ),
            None => add(AddedField::ForwardedFor, FieldValue::Held(&conn.peer_ip)),
        }
        add(
            AddedField::ForwardedProto,
            FieldValue::Static(if conn.tls { "https" } else { "http" }),
        );
        let element: &[&[u8]] = match self.host {
            Some(host) => &[
                conn.forwarded_for.as_bytes(),
                b";host=\"",
                host.as_ref(),
                b"\"",
            ],
            None => &[conn.forwarded_for.as_bytes()],
        };
        match self.prior_forwarded {
            Some(prior) => {
                let mut parts: [&[u8]; 6] = [prior, b", ", b"", b"", b"", b""];
                parts[2..2 + element.len()].copy_from_slice(element);
                add(
                    AddedField::Forwarded,
                    FieldValue::Joined(&parts[..2 + element.len()]),
                );
            }
            None => add(AddedField::Forwarded, FieldValue::Joined(element)),
        }
        if let Some(host) = self.host {
            add(AddedField::ForwardedHost, FieldValue::Host(host));
        }
        if let Some(prefix) = self.prefix {
            add(AddedField::ForwardedPrefix, FieldValue::Held(prefix));
        }
        add(AddedField::RequestId, FieldValue::Held(self.request_id));
        if let Some(span) = self.span {
            add(AddedField::TraceParent, FieldValue::Held(&span.traceparent));
            if let Some(state) = &span.tracestate {
                add(AddedField::TraceState, FieldValue::Held(state));
            }
        }
        if let Some(id) = &self.identity {
            for (name, value) in id.names.into_iter().zip([id.subject, id.roles]) {
                if valid_value(value) {
                    add(AddedField::Identity(name), FieldValue::Joined(&[value]));
                }
            }
        }
        if let Some(edits) = self.edits {
            for (name, value) in edits.added() {
                add(AddedField::Route(name), FieldValue::Held(value));
            }
        }
    }
}

/// Bytes a field value may hold (what `HeaderValue` takes).
fn valid_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan<'a>(fields: &[(&'a str, &'a str)]) -> RequestFields<&'a [u8]> {
        RequestFields::scan(
            fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            [b"x-subject", b"x-roles"],
            true,
        )
    }

    #[test]
    fn every_known_name_is_known_in_any_case() {
        let names = [
            ("te", Known::HopByHop),
            ("Host", Known::Host),
            ("ACCEPT", Known::Accept),
            ("expect", Known::Expect),
            ("Upgrade", Known::HopByHop),
            ("trailer", Known::HopByHop),
            ("Forwarded", Known::Forwarded),
            ("connection", Known::Connection),
            ("Keep-Alive", Known::HopByHop),
            ("X-Request-Id", Known::RequestId),
            ("content-length", Known::ContentLength),
            ("X-Forwarded-For", Known::ForwardedFor),
            ("proxy-connection", Known::HopByHop),
            ("x-forwarded-host", Known::ForwardedHost),
            ("Transfer-Encoding", Known::TransferEncoding),
            ("x-forwarded-proto", Known::ForwardedProto),
            ("X-Forwarded-Prefix", Known::ForwardedPrefix),
            ("X-Subject", Known::Identity),
            ("x-roles", Known::Identity),
            ("x-forwarded-fox", Known::Other),
            ("hosts", Known::Other),
        ];
        for (name, kind) in names {
            assert_eq!(
                Known::of(name.as_bytes(), [b"x-subject", b"x-roles"]),
                kind,
                "{name}"
            );
        }
    }

    #[test]
    fn one_pass_finds_what_the_pipeline_asks() {
        let f = scan(&[
            ("Host", "a.example"),
            ("host", "b.example"),
            ("Content-Length", "5"),
            ("content-length", "5"),
            ("X-Forwarded-For", "10.0.0.1"),
            ("X-Forwarded-For", "10.0.0.2"),
            ("Forwarded", "for=\"open"),
            ("Connection", "close, x-thing"),
            ("Transfer-Encoding", "gzip, chunked"),
            ("x-subject", "mallory"),
            ("Accept", "text/html"),
        ]);
        assert_eq!(f.hosts, 2);
        assert_eq!(f.host, Some(&b"a.example"[..]));
        assert_eq!(
            (f.content_length, f.length_lines, f.length_plain),
            (Some(5), 2, true)
        );
        assert_eq!(f.prior_for, Some(&b"10.0.0.1"[..]));
        assert_eq!(f.prior_forwarded, None, "an open quote is never joined");
        assert!(f.close && f.connection_names_other && !f.connection_names_host);
        assert_eq!(f.unsupported_coding, Some(&b"gzip, chunked"[..]));
        assert!(!f.takes_json());
        // Host, lengths, Accept go as sent; the rest are dropped.
        let kept: Vec<usize> = (0..11).filter(|i| f.skip & (1 << i) == 0).collect();
        assert_eq!(kept, [0, 1, 2, 3, 10]);
    }

    #[test]
    fn lengths_that_disagree_or_are_not_digits_declare_none() {
        let f = scan(&[("content-length", "5"), ("content-length", "6")]);
        assert_eq!(f.content_length, None);
        let f = scan(&[("content-length", "+5")]);
        assert_eq!((f.content_length, f.length_plain), (None, false));
        let f = scan(&[("content-length", "5, 5")]);
        assert_eq!((f.content_length, f.length_plain), (Some(5), false));
        let f = scan(&[("content-length", "x"), ("content-length", "5")]);
        assert_eq!(f.content_length, None, "a bad line is never forgotten");
    }

    #[test]
    fn codings_other_than_one_chunked_are_unsupported() {
        for (lines, unsupported) in [
            (&["chunked"][..], false),
            (&["gzip"], true),
            (&["chunked, chunked"], true),
            (&["chunked", "chunked"], true),
            (&["identity"], true),
        ] {
            let fields: Vec<(&str, &str)> =
                lines.iter().map(|l| ("transfer-encoding", *l)).collect();
            assert_eq!(
                scan(&fields).unsupported_coding.is_some(),
                unsupported,
                "{lines:?}"
            );
        }
    }

    fn written(forwarding: &Forwarding<'_, [u8]>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        forwarding.each(|name, value| {
            let bytes = match value {
                FieldValue::Held(v) => v.as_bytes().to_vec(),
                FieldValue::Host(h) => h.to_vec(),
                FieldValue::Static(s) => s.as_bytes().to_vec(),
                FieldValue::Joined(parts) => parts.concat(),
            };
            out.push((name.name().to_string(), String::from_utf8(bytes).unwrap()));
        });
        out
    }

    #[test]
    fn forwarding_fields_extend_what_earlier_hops_said() {
        let conn = ConnInfo::new("10.1.1.1:5000".parse().unwrap(), false);
        let id = HeaderValue::from_static("req-1");
        let first = Forwarding {
            conn: &conn,
            host: Some(&b"api.example"[..]),
            prior_for: None,
            prior_forwarded: None,
            request_id: &id,
            identity: None,
            prefix: None,
            edits: None,
            span: None,
        };
        assert_eq!(
            written(&first),
            [
                ("x-forwarded-for", "10.1.1.1"),
                ("x-forwarded-proto", "http"),
                ("forwarded", "for=10.1.1.1;proto=http;host=\"api.example\""),
                ("x-forwarded-host", "api.example"),
                ("x-request-id", "req-1"),
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
        let subject = HeaderName::from_static("x-subject");
        let roles = HeaderName::from_static("x-roles");
        let later = Forwarding {
            prior_for: Some(b"192.0.2.1"),
            prior_forwarded: Some(b"for=192.0.2.1"),
            identity: Some(IdentityFields {
                names: [&subject, &roles],
                subject: b"alice",
                roles: b"bad\nvalue",
            }),
            ..first
        };
        let fields = written(&later);
        assert_eq!(fields[0].1, "192.0.2.1, 10.1.1.1");
        assert_eq!(
            fields[2].1,
            "for=192.0.2.1, for=10.1.1.1;proto=http;host=\"api.example\""
        );
        assert_eq!(fields[5], ("x-subject".to_owned(), "alice".to_owned()));
        assert_eq!(fields.len(), 6, "a value no field may hold is not sent");
    }
}
