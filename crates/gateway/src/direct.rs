//! The direct HTTP/1.1 path: the requests the gateway can proxy as bytes,
//! without hyper's server and client in between.
//!
//! One task per client connection reads a request head, parses it with
//! httparse into field slices, runs the checks on those slices, writes the
//! upstream's head as bytes (the client's fields minus the hop-by-hop ones,
//! the forwarding fields and the request id spliced in) on a pooled plain
//! connection of its own worker, reads the response head the same way and
//! relays the body. No header map, no channel, no second task: per request
//! this is about a third of the instructions of the hyper path
//! (`bench/instructions.sh`).
//!
//! It takes only what it fully handles: HTTP/1.1 `GET`, `HEAD`, `DELETE`,
//! `OPTIONS`, `POST`, `PUT` and `PATCH` requests without a body or with a
//! `Content-Length` one, on routes to plain-HTTP upstreams, that pass every
//! check the gateway makes before the upstream and before the body
//! (limits, load, route, method, maintenance, credentials, roles, a body's
//! media type). On the
//! first request it does not take (or any head it cannot parse, or a
//! request it would refuse), it hands the connection to hyper's server
//! with the bytes it has buffered replayed first; the rest of the
//! connection is served there, by the path every other request takes
//! (`proxy::handle`). So every refusal is still made, and answered, in one
//! place, and an h2c preface or a malformed request reaches hyper
//! untouched.
//!
//! What it does itself is what happens once a request is on its way: the
//! auth service's check (`admission::admit_external`), the rate limit
//! (`proxy::count_request`), a body schema's check, the upstream
//! exchange (through the
//! same `attempts::attempts` as the hyper path: timers, one retry, ejection,
//! failure classification), the contract's answer to an upstream failure
//! or a limit (`proxy::answer_error`), the monitor and repairs, the response head
//! (hop-by-hop fields out, `X-Request-Id`, `X-Upstream-Service` on a 5xx,
//! deprecation fields, `Date` when the upstream sent none) and the body:
//! relayed as framed (`Content-Length`, or chunked, checked chunk by chunk),
//! or chunked by the gateway when the upstream delimits it by closing. A
//! body that ends early closes the client's connection before the message
//! is complete, as the hyper path does.

use std::borrow::Cow;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::{Buf, Bytes, BytesMut};
use candor_contract::Exchange;
use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, Method, Response};
use http_body::Body as _;
use http_body_util::Full;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::admission::{Admitted, Head, HostField, admit, admit_external, forward_target};
use crate::attempts::{Attempt, attempts};
use crate::body::ClientBodyError;
use crate::clients::{Builder, Timeouts};
use crate::deadline::Progress;
use crate::error::GatewayError;
use crate::metrics::{RequestKey, UpstreamLabels};
use crate::monitor::{Observation, RequestBody};
use crate::pipeline::request::{
    AddedField, ConnInfo, FieldValue, Forwarding, IdentityFields, RequestFields, edit_skip,
};
use crate::pipeline::response::{self, Framing, Repairer, Respond};
use crate::proxy::{self, Answered};
use crate::routing::RouteState;
use crate::state::{Runtime, Shared};
use crate::upstream::{Discard, Pool, SendError, Target, UpstreamFailure};

/// Fields parsed per message: hyper's limit too. A request with more goes
/// to hyper (which answers 431); a response with more is not valid HTTP to
/// the gateway, as to hyper's client.
const MAX_FIELDS: usize = 100;

/// Room for a head's fields, left uninitialised: httparse writes each one
/// it parses, where zeroing 100 slots first cost about 200 instructions a
/// head (bench/instructions.sh).
type FieldSlots<'b> = [std::mem::MaybeUninit<httparse::Header<'b>>; MAX_FIELDS];

fn field_slots<'b>() -> FieldSlots<'b> {
    [const { std::mem::MaybeUninit::uninit() }; MAX_FIELDS]
}

/// The largest response head read (hyper's client's default buffer limit).
const MAX_RESPONSE_HEAD: usize = 8192 + 4096 * 100;

/// What each read asks room for.
const READ_CHUNK: usize = 16 * 1024;

/// What a connection holds between requests. Nothing is allocated before
/// the client sends: the client buffer at its first bytes, the others at
/// its first whole head ([`Buffers::ready`]).
#[derive(Default)]
struct Buffers {
    /// Bytes from the client not yet handled.
    client: BytesMut,
    /// Bytes from the upstream: the response head, then body reads.
    upstream: BytesMut,
    /// The request head for the upstream.
    request: Vec<u8>,
    /// What goes to the client next.
    reply: Vec<u8>,
    /// Request body reads past what came with the head.
    body: BytesMut,
}

impl Buffers {
    /// Room for an exchange, made once per connection.
    fn ready(&mut self) {
        if self.upstream.capacity() == 0 {
            self.upstream.reserve(READ_CHUNK);
            self.request.reserve(4096);
            self.reply.reserve(4096);
        }
    }
}

/// The client buffer's first size: most heads fit.
const FIRST_READ: usize = 8192;

/// Serves a cleartext client connection: directly while each request is
/// one the direct path takes, then through hyper.
pub(crate) async fn serve(
    mut client: TcpStream,
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    builder: Builder,
    head_limit: usize,
    timeouts: Timeouts,
) {
    let mut io = Buffers::default();
    loop {
        match next_head(&mut client, &mut io.client, head_limit, timeouts).await {
            Wait::Head => {}
            Wait::Closed => return,
            Wait::TimedOut { head } => {
                crate::clients::timed_out(&shared.metrics, head);
                return;
            }
            Wait::Handover => break,
        }
        io.ready();
        match exchange(&shared, &conn, &mut client, &mut io).await {
            Next::KeepAlive => {}
            Next::Close => return,
            Next::Handover => break,
        }
    }
    shared.metrics.direct_handovers.inc();
    let replay = Replay {
        buffered: io.client.freeze(),
        inner: client,
    };
    crate::clients::serve_hyper(replay, builder, shared, conn, timeouts).await;
}

enum Wait {
    /// A whole request head is buffered.
    Head,
    Closed,
    /// Closed by a deadline: `idle_timeout` before a head, or
    /// `header_timeout` in the middle of one.
    TimedOut {
        head: bool,
    },
    /// Not for the direct path: hyper takes the connection.
    Handover,
}

/// Reads until the buffer holds a whole request head. With no request in
/// progress (nothing buffered) a connection closes after `timeouts.idle`,
/// or when its worker drains; a head must be whole `timeouts.header` after
/// its first bytes, however they trickle in. The buffer is allocated when
/// the client is readable, not before.
async fn next_head(
    client: &mut TcpStream,
    buf: &mut BytesMut,
    limit: usize,
    timeouts: Timeouts,
) -> Wait {
    // Set at the phase's first wait: a head that comes whole in one read
    // (most do) costs no clock read beyond the idle wait's.
    let mut deadline = None;
    let mut idle = buf.is_empty();
    loop {
        if has_blank_line(buf) {
            return Wait::Head;
        }
        if buf.len() > limit {
            return Wait::Handover;
        }
        if idle && !buf.is_empty() {
            // The head's first bytes: its own deadline starts.
            idle = false;
            deadline = None;
        }
        if buf.capacity() == 0 {
            // Nothing is allocated for a connection until it is readable.
            let readable = std::future::poll_fn(|cx| {
                if idle && crate::drain::draining() {
                    return Poll::Ready(false);
                }
                client.poll_read_ready(cx).map(|_| true)
            });
            match wait(readable, &mut deadline, idle, timeouts).await {
                Ok(true) => buf.reserve(FIRST_READ),
                Ok(false) => return Wait::Closed,
                Err(timed_out) => return timed_out,
            }
        } else if buf.capacity() - buf.len() < 1024 {
            buf.reserve(READ_CHUNK);
        }
        // A read's own poll: a short read clears the socket's readiness, so
        // the next wait costs no system call (a `try_read` would not).
        let read = std::future::poll_fn(|cx| {
            if idle && crate::drain::draining() {
                return Poll::Ready(None);
            }
            let mut reading = std::pin::pin!(client.read_buf(buf));
            reading.as_mut().poll(cx).map(Some)
        });
        match wait(read, &mut deadline, idle, timeouts).await {
            Ok(Some(Ok(n))) if n > 0 => {}
            // Closed, failed, or drained while idle.
            Ok(_) => return Wait::Closed,
            Err(timed_out) => return timed_out,
        }
    }
}

/// Awaits `step` of reading a head: at once when it is ready, else under
/// the phase's deadline (`idle` before a head's first byte, else the
/// head's), set at the phase's first wait.
async fn wait<F: Future>(
    step: F,
    deadline: &mut Option<Instant>,
    idle: bool,
    timeouts: Timeouts,
) -> Result<F::Output, Wait> {
    let mut step = std::pin::pin!(step);
    let now = std::future::poll_fn(|cx| Poll::Ready(step.as_mut().poll(cx)));
    if let Poll::Ready(out) = now.await {
        return Ok(out);
    }
    let allowed = if idle { timeouts.idle } else { timeouts.header };
    let until = *deadline.get_or_insert_with(|| Instant::now() + allowed);
    tokio::time::timeout_at(until, step)
        .await
        .map_err(|_| Wait::TimedOut { head: !idle })
}

/// Whether `buf` holds an empty line (the end of a message head), with
/// CRLF or bare LF line ends as httparse takes them.
fn has_blank_line(buf: &[u8]) -> bool {
    if buf.ends_with(b"\r\n\r\n") {
        return true;
    }
    let mut from = 0;
    while let Some(at) = buf[from..].iter().position(|&b| b == b'\n') {
        let next = from + at + 1;
        match &buf[next..] {
            [b'\n', ..] | [b'\r', b'\n', ..] => return true,
            _ => from = next,
        }
    }
    false
}

enum Next {
    KeepAlive,
    Close,
    Handover,
}

/// Handles the request whose head is buffered, or leaves it (and the
/// connection) to hyper.
async fn exchange(
    shared: &Shared,
    conn: &ConnInfo,
    client: &mut TcpStream,
    io: &mut Buffers,
) -> Next {
    let started = Instant::now();
    let runtime = shared.runtime.load_full();
    let mut slots = field_slots();
    let mut req = httparse::Request::new(&mut []);
    let Ok(httparse::Status::Complete(len)) = req.parse_with_uninit_headers(&io.client, &mut slots)
    else {
        return Next::Handover;
    };
    let identity = [
        runtime.auth.subject_header.as_str().as_bytes(),
        runtime.auth.roles_header.as_str().as_bytes(),
    ];
    let tracer = runtime.tracer.as_ref();
    let Some(mut head) = RequestHead::read(&req, identity, tracer.is_some()) else {
        return Next::Handover;
    };
    // From the head on, as on the hyper path (a request handed over after
    // this is traced there instead).
    let span = tracer.map(|tracer| {
        let f = &head.fields;
        tracer.request(f.traceparent, f.traceparents, f.tracestate)
    });
    // Every refusal is the hyper path's to answer, and so is a request the
    // direct path does not take: the same admission, then what only the
    // direct path asks.
    let facts = DirectHead {
        req: &req,
        head: &head,
    };
    let Ok(mut admitted) = admit(shared, &runtime, &facts, conn.peer.ip(), &mut None) else {
        return Next::Handover;
    };
    let Some(validate) = takes(&runtime, &req, &head, &admitted) else {
        return Next::Handover;
    };
    if let Some(path) = admitted.forward_path.take() {
        head.forward = Cow::Owned(forward_target(&path, head.target));
    }
    let (route, pool) = (admitted.route, admitted.pool);
    let (request_edits, cors) = (route.config.request_headers.as_ref(), admitted.cors);
    if let Some(edits) = request_edits {
        head.fields.skip |= edit_skip(edits, req.headers.iter().map(|f| f.name.as_bytes()));
    }
    let close = head.fields.close;
    let gw = &runtime.config.gateway;
    let request_id = shared.request_ids.assign_bytes(head.fields.request_id);
    // The auth service is asked, and the rate limit counted, once the
    // request is sure to be served here (one handed to hyper is asked and
    // counted there), through the same admission.
    let mut rate_fields = Vec::new();
    let mut refused = None;
    if admitted.external.is_some()
        && let Err(error) = Box::pin(admit_external(
            shared,
            &runtime,
            &mut admitted,
            &request_id,
            span.as_deref(),
        ))
        .await
    {
        refused = Some(error);
    }
    if refused.is_none()
        && let Some((limiter, key)) = admitted.limit.take()
    {
        match proxy::count_request(shared, limiter, key).await {
            Ok(fields) => rate_fields = fields,
            Err(error) => refused = Some(error),
        }
    }
    // Refused before the upstream: the access log names none.
    let before_upstream = refused.is_some();
    let roles = admitted.identity.as_ref().map(|id| id.roles.join(","));
    let forwarding = Forwarding {
        conn,
        host: Some(head.host),
        prior_for: head.fields.prior_for,
        prior_forwarded: head.fields.prior_forwarded,
        request_id: &request_id,
        identity: admitted
            .identity
            .as_ref()
            .zip(roles.as_deref())
            .map(|(id, roles)| IdentityFields {
                names: [&runtime.auth.subject_header, &runtime.auth.roles_header],
                subject: id.subject.as_bytes(),
                roles: roles.as_bytes(),
            }),
        prefix: admitted.prefix,
        edits: request_edits,
        span: span.as_deref(),
    };
    write_request(&mut io.request, &req, &head, &forwarding);
    let monitored = pool.config.monitor.then(|| request_snapshot(&req, &head));
    let debug_headers = route.config.debug_headers.unwrap_or(gw.debug_headers);
    let respond = Respond {
        request_id: &request_id,
        debug_upstream: debug_headers.then_some(&*pool.name),
        deprecation: &route.deprecation_headers,
        extra: &rate_fields,
        head_request: head.method == Method::HEAD,
        monitor: monitored.is_some(),
        repair: Repairer::of(shared, pool, &gw.realm),
        edits: route.config.response_headers.as_ref(),
        cors,
    };
    // The body goes with the head: what the client sent with it now, the
    // rest as it comes.
    let buffered = &io.client[len..];
    let first = buffered
        .len()
        .min(usize::try_from(head.body_len).unwrap_or(usize::MAX));
    io.request.extend_from_slice(&buffered[..first]);
    io.body.clear();
    // The monitor's tap on the body, when it judges it (a body validated
    // here is JSON that parsed: nothing to judge).
    let (tap, tapped) = monitored
        .as_ref()
        .filter(|_| validate.is_none())
        .and_then(|(fields, _)| {
            RequestBody::tap(
                true,
                fields,
                Some(head.body_len),
                pool.config.monitor_body_bytes,
            )
        })
        .map_or((None, None), |(tap, tapped)| (Some(tap), Some(tapped)));
    let mut body = Body {
        buf: &mut io.body,
        rest: head.body_len - first as u64,
        timeout: gw.body_timeout,
        tap,
    };
    if let Some(tap) = &mut body.tap {
        tap.data_slice(&buffered[..first]);
    }
    // body.*: a validated body is read whole first (after the rate limit,
    // as on the hyper path) and checked before anything goes upstream.
    if refused.is_none()
        && let Some(schema) = &validate
    {
        let start = io.request.len() - first;
        refused = match body.read_into(client, &mut io.request).await {
            Ok(()) => crate::validate::check(&io.request[start..], schema).err(),
            Err(error) => Some(error),
        };
    }
    let outcome = match refused {
        Some(error) => Err(error),
        None => {
            // Body-less and idempotent: may go again (to another target
            // after a connect failure, or on a fresh connection).
            let resendable = head.body_len == 0 && proxy::is_idempotent(&head.method);
            let mut attempt = DirectAttempt {
                pool,
                request: &io.request,
                client: &mut *client,
                body: &mut body,
                resendable,
                response: &mut io.upstream,
                reply: &mut io.reply,
                respond: &respond,
                close,
            };
            let may_retry = resendable && pool.config.targets.len() > 1;
            let progress = Progress::new();
            let trace = span.as_deref().map(|span| (span, &head.method));
            attempts(
                &shared.metrics,
                pool,
                may_retry,
                &mut attempt,
                &progress,
                trace,
            )
            .await
        }
    };
    let reached_upstream = !before_upstream;
    drop(admitted);
    shared.metrics.direct_requests.inc();
    let trace_id = span.as_deref().map(|s| s.trace_id().to_owned());
    let answered = |status: u16, rule: Option<&'static str>, failure| Answered {
        started,
        route: Some(&route.label),
        method: &head.method,
        path: gw.access_log.then(|| path_of(head.target)),
        status,
        rule,
        upstream: reached_upstream.then_some(&*pool.name),
        request_id: &request_id,
        span,
        failure,
    };
    // The whole body went upstream before the answer: the monitor may
    // judge it.
    if body.rest == 0
        && let Some(tap) = body.tap.take()
    {
        tap.end();
    }
    let next = match outcome {
        Ok(mut sent) => {
            // Logged now; counted once the body's end (or break) is known.
            let (key, seconds) =
                proxy::record_head(shared, conn, answered(sent.head.status, None, None));
            let count = Count {
                shared,
                key: Some(key),
                seconds,
            };
            let observation = monitored.map(|(headers, url)| {
                let mut exchange = Exchange::default();
                exchange.request.method = head.method.as_str().to_owned();
                exchange.request.url = url;
                exchange.request.headers = headers;
                exchange.response.status = sent.head.status;
                exchange.response.headers =
                    sent.head.snapshot.take().map(|h| *h).unwrap_or_default();
                Observation::new(
                    pool.name.clone(),
                    exchange,
                    pool.config.monitor_body_bytes,
                    shared.metrics.clone(),
                )
                .with_request_body(tapped)
            });
            relay(
                client,
                &mut io.upstream,
                &mut io.reply,
                sent,
                pool,
                observation,
                count,
            )
            .await
        }
        Err(error) => {
            let json = head.fields.takes_json();
            let (response, rule) = proxy::answer_error(
                shared,
                &error,
                proxy::AnswerCx {
                    request_id: &request_id,
                    trace_id: trace_id.as_deref(),
                    rate_fields: &rate_fields,
                    debug_headers,
                    accepts_json: json,
                    cors,
                },
            );
            let status = response.status().as_u16();
            let failure = error.failure_type().map(|f| f.as_str());
            proxy::record(shared, conn, answered(status, Some(rule), failure));
            let closes = write_answer(&mut io.reply, response, head.fields.close);
            if client.write_all(&io.reply).await.is_err() || closes {
                Next::Close
            } else {
                Next::KeepAlive
            }
        }
    };
    // Answered with part of the body unread (a refusal, or an upstream that
    // answered early): the rest is read away, or the connection cannot go
    // on.
    let next = match next {
        Next::KeepAlive if body.rest > 0 && !body.read_away(client).await => Next::Close,
        next => next,
    };
    io.client.advance(len + first);
    // Read past the body: the start of the next request.
    if !io.body.is_empty() {
        io.client.extend_from_slice(&io.body);
    }
    match next {
        Next::KeepAlive if close || crate::drain::draining() => Next::Close,
        next => next,
    }
}

/// What the monitor keeps of the request: the fields the rules read, as
/// forwarded, and the target.
fn request_snapshot(
    req: &httparse::Request<'_, '_>,
    head: &RequestHead<'_>,
) -> (HeaderMap, String) {
    let mut headers = HeaderMap::new();
    for (i, field) in req.headers.iter().enumerate() {
        if head.fields.skip & (1 << i) == 0
            && candor_contract::REQUEST_FIELDS
                .iter()
                .any(|n| field.name.eq_ignore_ascii_case(n.as_str()))
            && let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(field.name.as_bytes()),
                HeaderValue::from_bytes(field.value),
            )
        {
            headers.append(name, value);
        }
    }
    (headers, head.forward.clone().into_owned())
}

/// What the direct path learned from a request head, borrowed from it.
struct RequestHead<'b> {
    method: Method,
    /// The request-target, in origin form, as it came.
    target: &'b str,
    /// The path, as sent.
    path: &'b str,
    /// The target forwarded: the normal path and the query as it came.
    forward: Cow<'b, str>,
    /// The one Host, which admission checks to be a valid authority.
    host: &'b [u8],
    /// The body's length (`Content-Length`; 0 without one).
    body_len: u64,
    fields: RequestFields<&'b [u8]>,
}

impl<'b> RequestHead<'b> {
    /// The head, when it is one the direct path takes: HTTP/1.1, a method
    /// it serves, an origin-form target hyper would take too, one Host, at
    /// most one length in plain digits, and no hop-by-hop field but
    /// `Connection: keep-alive | close`. `identity`: the fields the gateway
    /// sets from a checked identity. A path that is not safe to normalise,
    /// a Host that is not an authority, and every other refusal are left
    /// to the hyper path.
    fn read(
        req: &httparse::Request<'_, 'b>,
        identity: [&[u8]; 2],
        tracing: bool,
    ) -> Option<RequestHead<'b>> {
        if req.version != Some(1) || req.headers.len() > 128 {
            return None;
        }
        let method = match req.method? {
            "GET" => Method::GET,
            "HEAD" => Method::HEAD,
            "DELETE" => Method::DELETE,
            "OPTIONS" => Method::OPTIONS,
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            "PATCH" => Method::PATCH,
            _ => return None,
        };
        let target = req.path?;
        let path = origin_form_path(target)?;
        let fields = RequestFields::scan(
            req.headers.iter().map(|f| (f.name.as_bytes(), f.value)),
            identity,
            tracing,
        );
        let takes = fields.hosts == 1
            && fields.length_lines <= 1
            && fields.length_plain
            && !fields.hop_by_hop
            && !fields.expect
            && !fields.connection_names_host
            && !fields.connection_names_other;
        if !takes {
            return None;
        }
        Some(RequestHead {
            method,
            target,
            path,
            forward: Cow::Borrowed(target),
            host: fields.host?,
            body_len: match fields.length_lines {
                0 => 0,
                _ => fields.content_length?,
            },
            fields,
        })
    }
}

/// The path of an origin-form request-target whose every byte `http`'s
/// URI parser (hyper's) accepts in its place; `None` for anything else.
fn origin_form_path(target: &str) -> Option<&str> {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, query),
        None => (target, ""),
    };
    let table = &*TARGET_BYTES;
    let ok = target.starts_with('/')
        && path.bytes().all(|b| table[usize::from(b)] & IN_PATH != 0)
        && query.bytes().all(|b| table[usize::from(b)] & IN_QUERY != 0);
    ok.then_some(path)
}

const IN_PATH: u8 = 1;
const IN_QUERY: u8 = 2;

/// Which bytes `http::uri::PathAndQuery` takes in a path and in a query,
/// asked of it once, so the direct path never forwards a target the hyper
/// path would refuse. `#` (a fragment, never sent) is refused in both.
static TARGET_BYTES: LazyLock<[u8; 256]> = LazyLock::new(|| {
    let mut table = [0u8; 256];
    for b in 0..=255u8 {
        if b == b'#' || b == b'?' {
            continue;
        }
        let takes = |text: &[u8]| {
            http::uri::PathAndQuery::try_from(text).is_ok_and(|pq| pq.as_str().as_bytes() == text)
        };
        if takes(&[b'/', b, b'a']) {
            table[usize::from(b)] |= IN_PATH;
        }
        if takes(&[b'/', b'?', b, b'a']) {
            table[usize::from(b)] |= IN_QUERY;
        }
    }
    table[usize::from(b'?')] |= IN_QUERY;
    table
});

/// A head as httparse read it, with what the direct path learned of it.
struct DirectHead<'x, 'b> {
    req: &'x httparse::Request<'x, 'b>,
    head: &'x RequestHead<'b>,
}

impl Head for DirectHead<'_, '_> {
    fn method(&self) -> &Method {
        &self.head.method
    }

    fn version(&self) -> http::Version {
        http::Version::HTTP_11
    }

    fn target_len(&self) -> usize {
        self.head.target.len()
    }

    fn header_bytes(&self) -> usize {
        self.head.fields.size
    }

    fn path(&self) -> &str {
        self.head.path
    }

    fn host(&self) -> HostField<'_> {
        // `read` takes one Host, in a Connection that names none.
        HostField {
            count: 1,
            first: Some(self.head.host),
            named_in_connection: false,
        }
    }

    fn authority(&self) -> Option<&str> {
        None
    }

    fn unsupported_coding(&self) -> Option<&[u8]> {
        // `read` takes no Transfer-Encoding.
        None
    }

    fn fields(&self, wanted: &dyn Fn(&str) -> bool) -> Option<Cow<'_, HeaderMap>> {
        let mut fields = HeaderMap::new();
        for field in self.req.headers.iter().filter(|f| wanted(f.name)) {
            fields.append(
                HeaderName::from_bytes(field.name.as_bytes()).ok()?,
                HeaderValue::from_bytes(field.value).ok()?,
            );
        }
        Some(Cow::Owned(fields))
    }

    fn field(&self, name: &str) -> Option<&[u8]> {
        self.req
            .headers
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    }
}

/// What only the direct path asks of an admitted request: a body within
/// the limit (`body.too_large` is the hyper path's to answer), a plain-HTTP
/// upstream, and on a route with a schema a body whose media type passes
/// (`body.media` too is answered by hyper). `Some(schema)` when the body is
/// to be validated here; `None` hands the request to hyper.
fn takes(
    runtime: &Runtime,
    req: &httparse::Request<'_, '_>,
    head: &RequestHead<'_>,
    admitted: &Admitted<'_, '_>,
) -> Option<Option<Arc<crate::validate::Schema>>> {
    if head.body_len > runtime.config.gateway.max_body_bytes || !serves(admitted.route) {
        return None;
    }
    match &admitted.route.schema {
        Some(schema) => {
            let content_type = req
                .headers
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case("content-type"))
                .and_then(|f| HeaderValue::from_bytes(f.value).ok());
            let validated = crate::validate::to_validate(
                &head.method,
                content_type.as_ref(),
                head.body_len == 0,
            )
            .ok()?;
            Some(validated.then(|| schema.clone()))
        }
        None => Some(None),
    }
}

/// Whether the direct path serves `route`: one to a plain-HTTP upstream.
fn serves(route: &RouteState) -> bool {
    route.pool.as_ref().is_some_and(|pool| pool.is_plain())
}

/// The request head for the upstream: the fields that go as sent, then
/// the pipeline's additions.
fn write_request(
    out: &mut Vec<u8>,
    req: &httparse::Request<'_, '_>,
    head: &RequestHead<'_>,
    forwarding: &Forwarding<'_, [u8]>,
) {
    out.clear();
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.forward.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (i, field) in req.headers.iter().enumerate() {
        if head.fields.skip & (1 << i) == 0 {
            field_line(out, field.name.as_bytes(), field.value);
        }
    }
    // Each name a literal: copied inline, where a slice would be a call;
    // inlined at every call, so each site keeps only its own field's arm.
    forwarding.each(
        #[inline(always)]
        |field, value| {
            match field {
                AddedField::ForwardedFor => out.extend_from_slice(b"x-forwarded-for: "),
                AddedField::ForwardedProto => out.extend_from_slice(b"x-forwarded-proto: "),
                AddedField::Forwarded => out.extend_from_slice(b"forwarded: "),
                AddedField::ForwardedHost => out.extend_from_slice(b"x-forwarded-host: "),
                AddedField::ForwardedPrefix => out.extend_from_slice(b"x-forwarded-prefix: "),
                AddedField::RequestId => out.extend_from_slice(b"x-request-id: "),
                AddedField::TraceParent => out.extend_from_slice(b"traceparent: "),
                AddedField::TraceState => out.extend_from_slice(b"tracestate: "),
                AddedField::Identity(name) | AddedField::Route(name) => {
                    out.extend_from_slice(name.as_str().as_bytes());
                    out.extend_from_slice(b": ");
                }
            }
            match value {
                FieldValue::Held(v) => out.extend_from_slice(v.as_bytes()),
                FieldValue::Host(h) => out.extend_from_slice(h),
                FieldValue::Static(s) => out.extend_from_slice(s.as_bytes()),
                FieldValue::Joined(parts) => parts.iter().for_each(|p| out.extend_from_slice(p)),
            }
            out.extend_from_slice(b"\r\n");
        },
    );
    out.extend_from_slice(b"\r\n");
}

fn field_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The direct path's [`Attempt`]: the request head written on a pooled
/// plain connection (sent again on a fresh one if the pooled one turns out
/// closed) or a new one, and the response head read and rewritten for the
/// client.
struct DirectAttempt<'x, 'b> {
    pool: &'x Pool,
    /// The request head, with the body bytes the client sent with it.
    request: &'x [u8],
    client: &'x mut TcpStream,
    /// The rest of the body, still to read from the client.
    body: &'x mut Body<'b>,
    /// Body-less and idempotent: sent again on a fresh connection when a
    /// pooled one turns out closed.
    resendable: bool,
    response: &'x mut BytesMut,
    reply: &'x mut Vec<u8>,
    respond: &'x Respond<'x>,
    /// The client asked to close after this response.
    close: bool,
}

impl Attempt for DirectAttempt<'_, '_> {
    type Sent = Sent;

    fn status(sent: &Sent) -> u16 {
        sent.head.status
    }

    async fn send<'a>(
        &'a mut self,
        target: &'a Target,
        resent: &'a mut bool,
        progress: &'a Progress,
    ) -> Result<Sent, SendError> {
        // Only a connection with nothing to read (no stray bytes, no end)
        // as far as the event loop has seen, whatever the request.
        if let Some(mut stream) = self.pool.checkout_raw(target) {
            progress.connected();
            match self.round_trip(&mut stream, progress).await {
                Ok(head) => return Ok(Sent::new(stream, target, head)),
                // The upstream closed it while it was idle: the
                // request was never answered; once more, fresh.
                Err(SendError::Failure(UpstreamFailure::Reset)) if self.resendable => {
                    *resent = true;
                    progress.restart();
                }
                Err(e) => return Err(e),
            }
        }
        let mut stream = self
            .pool
            .connect_raw(target)
            .await
            .map_err(SendError::Failure)?;
        progress.connected();
        let head = self.round_trip(&mut stream, progress).await?;
        Ok(Sent::new(stream, target, head))
    }
}

/// A response head received and rewritten, with the connection it came on
/// and its target (as an index in the pool: what crosses
/// `attempts` borrows nothing).
struct Sent {
    stream: TcpStream,
    target: usize,
    head: ResponseHead,
}

impl Sent {
    fn new(stream: TcpStream, target: &Target, head: ResponseHead) -> Sent {
        Sent {
            stream,
            target: target.index(),
            head,
        }
    }
}

/// What the response head said, once rewritten into the reply.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: u16,
    pub(crate) len: usize,
    pub(crate) framing: Framing,
    pub(crate) keep_alive: bool,
    /// The fields the monitor reads, when it watches the upstream.
    pub(crate) snapshot: Option<Box<HeaderMap>>,
}

impl DirectAttempt<'_, '_> {
    /// Writes the request and reads the response head (past any 1xx),
    /// rewriting it into the reply. `progress` learns when the request has
    /// gone (the response timeout starts) and how its body goes.
    async fn round_trip(
        &mut self,
        stream: &mut TcpStream,
        progress: &Progress,
    ) -> Result<ResponseHead, SendError> {
        self.response.clear();
        // The head (and what came of the body with it), then the rest of
        // the body as the client sends it; an upstream that starts its
        // answer first (or stops reading and closes) is heard at once,
        // and the request is not finished on that connection. A client
        // whose body stalls, breaks off or ends early fails the request
        // with its own fault, as on the hyper path.
        let finished = write_or_hear(stream, self.request)
            .await
            .map_err(SendError::Failure)?
            && self.body.send(self.client, stream, progress).await?;
        // Nothing more goes (all of it, or the upstream answers first):
        // from here on the upstream has response_timeout for its head.
        progress.written();
        let invalid = SendError::Failure(UpstreamFailure::InvalidResponse);
        loop {
            if has_blank_line(self.response) {
                match rewrite_response(self.response, self.respond, self.close, self.reply)
                    .map_err(SendError::Failure)?
                {
                    Parsed::Final(mut head) => {
                        // Answered before the whole request arrived: that
                        // connection is not in a state to reuse.
                        head.keep_alive &= finished;
                        return Ok(head);
                    }
                    Parsed::Informational(len) => {
                        self.response.advance(len);
                        continue;
                    }
                }
            }
            if self.response.len() > MAX_RESPONSE_HEAD {
                return Err(invalid);
            }
            if !self.response.is_empty() && invalid_so_far(self.response) {
                return Err(invalid);
            }
            self.response.reserve(READ_CHUNK);
            match stream.read_buf(self.response).await {
                Ok(n) if n > 0 => {}
                _ if !self.response.is_empty() && invalid_so_far(self.response) => {
                    return Err(invalid);
                }
                _ => return Err(SendError::Failure(UpstreamFailure::Reset)),
            }
        }
    }
}

/// The part of a request body still to come from the client, counted
/// down as it is read.
struct Body<'x> {
    /// What the reads brought; past the body, the next request's start.
    buf: &'x mut BytesMut,
    rest: u64,
    /// The longest wait for the client's next piece (`body_timeout`).
    timeout: std::time::Duration,
    /// The monitor's tap: sees each piece that went upstream whole.
    tap: Option<RequestBody>,
}

impl Body<'_> {
    /// Reads the next piece from the client: how many bytes at the start
    /// of `buf` belong to the body (bytes past it stay behind them), or how
    /// the client failed to send it (closed, or silent for the timeout).
    async fn piece(&mut self, client: &mut TcpStream) -> Result<usize, ClientBodyError> {
        self.buf.clear();
        self.buf.reserve(READ_CHUNK);
        let read = std::pin::pin!(client.read_buf(self.buf));
        match crate::deadline::within(read, self.timeout).await {
            Some(Ok(n)) if n > 0 => {
                let take = n.min(usize::try_from(self.rest).unwrap_or(usize::MAX));
                self.rest -= take as u64;
                Ok(take)
            }
            Some(_) => Err(ClientBodyError::Incomplete),
            None => Err(ClientBodyError::Stalled {
                after: self.timeout,
            }),
        }
    }

    /// Writes the rest of the body upstream as the client sends it, until
    /// the upstream starts its answer: whether all of it went. `progress`
    /// learns of each piece and of each wait on the client (which the
    /// upstream's timer does not count).
    async fn send(
        &mut self,
        client: &mut TcpStream,
        upstream: &TcpStream,
        progress: &Progress,
    ) -> Result<bool, SendError> {
        while self.rest > 0 {
            progress.waiting(true);
            let take = tokio::select! {
                biased;
                ready = upstream.readable() => {
                    progress.waiting(false);
                    ready.map_err(|_| SendError::Failure(UpstreamFailure::Reset))?;
                    return Ok(false);
                }
                take = self.piece(client) => take.map_err(SendError::ClientBody)?,
            };
            progress.waiting(false);
            let all = write_or_hear(upstream, &self.buf[..take])
                .await
                .map_err(SendError::Failure)?;
            if all && let Some(tap) = &mut self.tap {
                tap.data_slice(&self.buf[..take]);
            }
            self.buf.advance(take);
            progress.moved();
            if !all {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads the rest of the body onto `out`. A client that stops sending
    /// gets `body.malformed`, one that stalls `request.body_timeout`, as on
    /// the hyper path.
    async fn read_into(
        &mut self,
        client: &mut TcpStream,
        out: &mut Vec<u8>,
    ) -> Result<(), GatewayError> {
        while self.rest > 0 {
            let take = self.piece(client).await?;
            out.extend_from_slice(&self.buf[..take]);
            self.buf.advance(take);
        }
        Ok(())
    }

    /// Reads away the rest of a body the gateway answered without, within
    /// the lingering close's bounds (`candor_contract::read_away_pieces`), as
    /// the hyper path's `read_away`: the client reads the answer rather
    /// than a reset (RFC 9112 section 9.6), and the connection can serve
    /// its next request. Whether the body ended within them.
    async fn read_away(&mut self, client: &mut TcpStream) -> bool {
        candor_contract::read_away_pieces(&mut Away { body: self, client }).await
    }
}

/// A client body's rest, read away piece by piece.
struct Away<'a, 'x> {
    body: &'a mut Body<'x>,
    client: &'a mut TcpStream,
}

impl candor_contract::Pieces for Away<'_, '_> {
    async fn next_piece(&mut self) -> Result<Option<u64>, ()> {
        if self.body.rest == 0 {
            return Ok(None);
        }
        let take = self.body.piece(self.client).await.map_err(drop)?;
        self.body.buf.advance(take);
        Ok(Some(take as u64))
    }
}

/// Writes `data` upstream unless the upstream has something to say first
/// (an early answer, or the end of the connection): whether all of it
/// went. A write the upstream refuses (it closed) is not an error here:
/// what it answered, if anything, is read next.
async fn write_or_hear(stream: &TcpStream, mut data: &[u8]) -> Result<bool, UpstreamFailure> {
    while !data.is_empty() {
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tokio::select! {
                    biased;
                    ready = stream.readable() => {
                        ready.map_err(|_| UpstreamFailure::Reset)?;
                        return Ok(false);
                    }
                    ready = stream.writable() => {
                        ready.map_err(|_| UpstreamFailure::Reset)?;
                    }
                }
            }
            Err(_) => return Ok(false),
        }
    }
    Ok(true)
}

/// Whether the bytes so far already cannot be an HTTP/1.x response head
/// (as hyper's client fails at once, without waiting for more).
fn invalid_so_far(buf: &[u8]) -> bool {
    let mut slots = field_slots();
    httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut httparse::Response::new(&mut []), buf, &mut slots)
        .is_err()
}

pub(crate) enum Parsed {
    Final(ResponseHead),
    /// A 1xx response head of this length, to skip.
    Informational(usize),
}

/// Parses the response head in `buf` and writes the client's head into
/// `reply` as the pipeline's [`Plan`](response::Plan) says: the status
/// line, the upstream's fields it keeps, the framing and `Date` this codec
/// owes the client, the fields it adds, and `Connection: close` when the
/// client asked for it (`close`) or the gateway drains.
pub(crate) fn rewrite_response(
    buf: &[u8],
    respond: &Respond<'_>,
    close: bool,
    reply: &mut Vec<u8>,
) -> Result<Parsed, UpstreamFailure> {
    let invalid = UpstreamFailure::InvalidResponse;
    let mut slots = field_slots();
    let mut res = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut res, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return Err(invalid),
    };
    let code = res
        .code
        .and_then(|c| http::StatusCode::from_u16(c).ok())
        .ok_or(invalid)?;
    let status = code.as_u16();
    if response::informational(status)? {
        return Ok(Parsed::Informational(len));
    }
    let mut plan = response::plan(
        status,
        res.version == Some(1),
        res.headers.iter().map(|f| (f.name, f.value)),
        respond,
    )?;

    reply.clear();
    reply.extend_from_slice(b"HTTP/1.1 ");
    reply.extend_from_slice(code.as_str().as_bytes());
    reply.push(b' ');
    reply.extend_from_slice(res.reason.unwrap_or("").as_bytes());
    reply.extend_from_slice(b"\r\n");
    let mut snapshot = respond.monitor.then(Box::<HeaderMap>::default);
    for field in res.headers.iter() {
        let (name, value) = (field.name, field.value);
        if !plan.keep(name) {
            continue;
        }
        if let Some(snapshot) = &mut snapshot
            && plan.watched(name)
            && let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value),
            )
        {
            snapshot.append(n, v);
        }
        field_line(reply, name.as_bytes(), value);
    }
    let framing = plan.framing();
    if matches!(framing, Framing::Chunked | Framing::UntilClose) {
        reply.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if plan.needs_date() {
        reply.extend_from_slice(b"date: ");
        http_date(reply);
        reply.extend_from_slice(b"\r\n");
    }
    plan.added()
        .each(|name, value| field_line(reply, name.as_str().as_bytes(), value.as_bytes()));
    if close || crate::drain::draining() {
        reply.extend_from_slice(b"connection: close\r\n");
    }
    reply.extend_from_slice(b"\r\n");
    Ok(Parsed::Final(ResponseHead {
        status,
        len,
        framing,
        keep_alive: plan.reusable(),
        snapshot,
    }))
}

/// Appends the current time as an HTTP-date, formatted once a second per
/// thread.
fn http_date(out: &mut Vec<u8>) {
    thread_local! {
        static DATE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|date| {
        let mut date = date.borrow_mut();
        if date.0 != second {
            *date = (second, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(date.1.as_bytes());
    });
}

/// The count of a relayed response (`candor_requests_total` and the
/// latency histogram), made once, as soon as the body's end or break is
/// known and before its last bytes go out: a client holding the whole
/// response finds it counted.
struct Count<'x> {
    shared: &'x Shared,
    key: Option<RequestKey<'x>>,
    /// Until the response head was ready.
    seconds: f64,
}

impl Count<'_> {
    fn ended(&mut self, aborted: bool) {
        if let Some(mut key) = self.key.take() {
            key.aborted = aborted;
            self.shared.metrics.observe_request(key, self.seconds);
        }
    }
}

/// Sends the rewritten head and relays the body; the upstream connection
/// goes back to its pool when the body ended exactly where its framing
/// said and nothing more is readable (see `Pool::checkin_raw`). Bytes past
/// the end in the reads here drop it, counted as stray bytes. The monitor,
/// when it watches, sees the body's bytes as they pass and judges the
/// exchange when the body ends (not when it breaks). The request is counted
/// as aborted when the upstream broke the body off.
async fn relay(
    client: &mut TcpStream,
    upstream: &mut BytesMut,
    reply: &mut Vec<u8>,
    sent: Sent,
    pool: &Arc<Pool>,
    mut observation: Option<Observation>,
    mut count: Count<'_>,
) -> Next {
    let Sent {
        mut stream,
        target,
        head,
    } = sent;
    let obs = &mut observation;
    let got = &upstream[head.len..];
    let ended = match head.framing {
        Framing::Empty => {
            let ended = if got.is_empty() {
                Ended::Clean
            } else {
                Ended::Excess
            };
            count.ended(false);
            client.write_all(reply).await.map(|()| ended)
        }
        Framing::Length(n) => {
            let now = got.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            let excess = now < got.len();
            tap(obs, &got[..now]);
            reply.extend_from_slice(&got[..now]);
            let rest = n - now as u64;
            let ended =
                relay_length(client, &mut stream, reply, upstream, rest, obs, &mut count).await;
            ended.map(|e| if excess { e.and_excess() } else { e })
        }
        Framing::Chunked => {
            let mut chunks = ChunkedScanner::default();
            match chunks.feed_with(got, &mut |data| tap(obs, data)) {
                Ok(Some(end)) => {
                    let ended = if end == got.len() {
                        Ended::Clean
                    } else {
                        Ended::Excess
                    };
                    reply.extend_from_slice(&got[..end]);
                    count.ended(false);
                    client.write_all(reply).await.map(|()| ended)
                }
                Ok(None) => {
                    reply.extend_from_slice(got);
                    relay_chunked(
                        client,
                        &mut stream,
                        reply,
                        upstream,
                        chunks,
                        obs,
                        &mut count,
                    )
                    .await
                }
                // The head goes out; the body stops where it broke.
                Err(()) => {
                    count.ended(true);
                    client.write_all(reply).await.map(|()| Ended::Truncated)
                }
            }
        }
        Framing::UntilClose => {
            tap(obs, got);
            chunk(reply, got);
            relay_until_close(client, &mut stream, reply, upstream, obs, &mut count).await
        }
    };
    match ended {
        Ok(end @ (Ended::Clean | Ended::Excess | Ended::Closed)) => {
            count.ended(false);
            if let Some(obs) = observation {
                obs.finish();
            }
            match end {
                Ended::Clean if head.keep_alive => {
                    if let Some(target) = pool.target(target) {
                        pool.checkin_raw(target, stream);
                    }
                }
                // It would have gone back to the pool, with the start of
                // a response nobody asked for.
                Ended::Excess if head.keep_alive => pool.discard(Discard::StrayBytes),
                _ => {}
            }
            Next::KeepAlive
        }
        // The upstream's body failed: the client's message stays
        // incomplete (its connection closes), and it is counted.
        Ok(Ended::Truncated) => {
            count.ended(true);
            count
                .shared
                .metrics
                .truncated
                .get_or_create(&UpstreamLabels {
                    upstream: pool.name.clone(),
                })
                .inc();
            Next::Close
        }
        // The client went away.
        Err(_) => {
            count.ended(false);
            Next::Close
        }
    }
}

/// Shows body bytes to the monitor, when it watches.
fn tap(observation: &mut Option<Observation>, data: &[u8]) {
    if let Some(obs) = observation {
        obs.data_slice(data);
    }
}

/// How a relayed body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Complete, and the connection is where the next response starts.
    Clean,
    /// Complete, but the upstream sent more than the message: the
    /// connection is not reused.
    Excess,
    /// Complete: the upstream closed the connection to end it.
    Closed,
    /// The upstream's body ended early or broke its framing.
    Truncated,
}

impl Ended {
    fn and_excess(self) -> Ended {
        match self {
            Ended::Clean => Ended::Excess,
            other => other,
        }
    }
}

/// Relays `rest` more body bytes after sending `first`.
async fn relay_length(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    first: &[u8],
    buf: &mut BytesMut,
    mut rest: u64,
    obs: &mut Option<Observation>,
    count: &mut Count<'_>,
) -> io::Result<Ended> {
    if rest == 0 {
        count.ended(false);
    }
    client.write_all(first).await?;
    while rest > 0 {
        buf.clear();
        buf.reserve(READ_CHUNK);
        let n = match upstream.read_buf(buf).await {
            Ok(0) | Err(_) => return Ok(Ended::Truncated),
            Ok(n) => n,
        };
        let take = n.min(usize::try_from(rest).unwrap_or(usize::MAX));
        tap(obs, &buf[..take]);
        rest -= take as u64;
        if rest == 0 {
            count.ended(false);
        }
        client.write_all(&buf[..take]).await?;
        if take < n {
            return Ok(Ended::Excess);
        }
    }
    Ok(Ended::Clean)
}

/// Relays a chunked body as it came, checking its framing chunk by chunk.
async fn relay_chunked(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    first: &[u8],
    buf: &mut BytesMut,
    mut chunks: ChunkedScanner,
    obs: &mut Option<Observation>,
    count: &mut Count<'_>,
) -> io::Result<Ended> {
    client.write_all(first).await?;
    loop {
        buf.clear();
        buf.reserve(READ_CHUNK);
        match upstream.read_buf(buf).await {
            Ok(0) | Err(_) => return Ok(Ended::Truncated),
            Ok(_) => {}
        }
        match chunks.feed_with(buf, &mut |data| tap(obs, data)) {
            Ok(Some(end)) => {
                count.ended(false);
                client.write_all(&buf[..end]).await?;
                return Ok(if end == buf.len() {
                    Ended::Clean
                } else {
                    Ended::Excess
                });
            }
            Ok(None) => client.write_all(buf).await?,
            Err(()) => return Ok(Ended::Truncated),
        }
    }
}

/// Relays a body the upstream ends by closing, as chunks of its own
/// (`head` holds the head and the first chunk).
async fn relay_until_close(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    head: &mut Vec<u8>,
    buf: &mut BytesMut,
    obs: &mut Option<Observation>,
    count: &mut Count<'_>,
) -> io::Result<Ended> {
    client.write_all(head).await?;
    loop {
        buf.clear();
        buf.reserve(READ_CHUNK);
        let n = match upstream.read_buf(buf).await {
            Ok(0) => break,
            // A reset is not an end: the body stays incomplete.
            Err(_) => return Ok(Ended::Truncated),
            Ok(n) => n,
        };
        tap(obs, &buf[..n]);
        head.clear();
        chunk(head, &buf[..n]);
        client.write_all(head).await?;
    }
    count.ended(false);
    client.write_all(b"0\r\n\r\n").await?;
    // The upstream closed: nothing to reuse.
    Ok(Ended::Closed)
}

/// Appends `data` as one chunk (nothing when empty).
fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let digits = format!("{:x}\r\n", data.len());
    out.extend_from_slice(digits.as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Follows a chunked body's framing (RFC 9112 section 7.1) through the
/// bytes it is fed, to find where the message ends.
#[derive(Debug, Default)]
struct ChunkedScanner {
    state: Chunk,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the size's hex digits (how many so far, the value).
    #[default]
    SizeStart,
    Size {
        digits: u8,
        size: u64,
    },
    /// After the size: whitespace or extensions, up to CRLF.
    Extension {
        size: u64,
    },
    SizeLf {
        size: u64,
    },
    Data {
        rest: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line, or the final empty line.
    TrailerStart,
    TrailerLine,
    EndLf,
    Done,
}

impl ChunkedScanner {
    /// Feeds the next bytes: `Some(n)` when the body ends after the first
    /// `n` of them, `None` when it goes on, `Err` when the framing is
    /// broken.
    #[cfg(any(test, feature = "fuzzing"))]
    fn feed(&mut self, data: &[u8]) -> Result<Option<usize>, ()> {
        self.feed_with(data, &mut |_| {})
    }

    /// [`ChunkedScanner::feed`], showing `on_data` the chunks' data.
    fn feed_with(
        &mut self,
        data: &[u8],
        on_data: &mut dyn FnMut(&[u8]),
    ) -> Result<Option<usize>, ()> {
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            self.state = match self.state {
                Chunk::SizeStart => Chunk::Size {
                    digits: 1,
                    size: u64::from(hex(b).ok_or(())?),
                },
                Chunk::Size { digits, size } => match hex(b) {
                    Some(d) if digits < 16 => Chunk::Size {
                        digits: digits + 1,
                        size: size << 4 | u64::from(d),
                    },
                    Some(_) => return Err(()),
                    None => match b {
                        b'\r' => Chunk::SizeLf { size },
                        b';' | b' ' | b'\t' => Chunk::Extension { size },
                        _ => return Err(()),
                    },
                },
                Chunk::Extension { size } => match b {
                    b'\r' => Chunk::SizeLf { size },
                    b'\n' => return Err(()),
                    _ => Chunk::Extension { size },
                },
                Chunk::SizeLf { size } => match (b, size) {
                    (b'\n', 0) => Chunk::TrailerStart,
                    (b'\n', size) => Chunk::Data { rest: size },
                    _ => return Err(()),
                },
                Chunk::Data { rest } => {
                    let take = (data.len() - i).min(usize::try_from(rest).unwrap_or(usize::MAX));
                    on_data(&data[i..i + take]);
                    i += take;
                    let rest = rest - take as u64;
                    self.state = if rest == 0 {
                        Chunk::DataCr
                    } else {
                        Chunk::Data { rest }
                    };
                    continue;
                }
                Chunk::DataCr if b == b'\r' => Chunk::DataLf,
                Chunk::DataLf if b == b'\n' => Chunk::SizeStart,
                Chunk::DataCr | Chunk::DataLf => return Err(()),
                Chunk::TrailerStart => match b {
                    b'\r' => Chunk::EndLf,
                    b'\n' => return Err(()),
                    _ => Chunk::TrailerLine,
                },
                Chunk::TrailerLine => match b {
                    b'\n' => Chunk::TrailerStart,
                    _ => Chunk::TrailerLine,
                },
                Chunk::EndLf if b == b'\n' => {
                    self.state = Chunk::Done;
                    return Ok(Some(i + 1));
                }
                Chunk::EndLf | Chunk::Done => return Err(()),
            };
            i += 1;
        }
        Ok(None)
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A gateway-made answer as bytes: its status line and fields, the
/// framing, `Date`, the request id, and its body. Whether the connection
/// closes after it: the client asked to (`close`), or the answer says so
/// (a 408).
fn write_answer(out: &mut Vec<u8>, response: Response<Full<Bytes>>, close: bool) -> bool {
    let (parts, body) = response.into_parts();
    let mut body = std::pin::pin!(body);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    // A `Full` body is ready at once, in one frame.
    let data = match body.as_mut().poll_frame(&mut cx) {
        Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    };
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let close = close || parts.headers.contains_key(http::header::CONNECTION);
    // The answer as `answer_error` made it (request id and rate-limit
    // fields included), framed here.
    for (name, value) in &parts.headers {
        if name != http::header::CONNECTION {
            field_line(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    field_line(out, b"content-length", data.len().to_string().as_bytes());
    out.extend_from_slice(b"date: ");
    http_date(out);
    out.extend_from_slice(b"\r\n");
    if close || crate::drain::draining() {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&data);
    close
}

/// A client connection handed to hyper: the bytes the direct path read
/// but did not handle come first, then the socket.
struct Replay {
    buffered: Bytes,
    inner: TcpStream,
}

impl AsyncRead for Replay {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.buffered.is_empty() {
            let n = this.buffered.len().min(buf.remaining());
            buf.put_slice(&this.buffered[..n]);
            this.buffered.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

write_through!([] Replay, inner);

/// The direct path's parsers on any bytes, with the properties they must
/// keep: for the fuzz targets (`fuzz/`, the `fuzzing` feature) and the tests.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing {
    use candor_contract::{Authority, PathOptions, content_length_digits, normalize_path};

    use super::*;
    use crate::config::RouteAuth;
    use crate::pipeline::response::HOP_BY_HOP;

    /// A request head: when the direct path takes it, every piece of it is
    /// one hyper's own types take (so hyper would not have refused it), and
    /// what goes upstream reads back as one request head with one Host, one
    /// request id, at most one `Content-Length` (the body's) and no
    /// hop-by-hop or identity field.
    pub fn request_head(bytes: &[u8]) {
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut req = httparse::Request::new(&mut fields);
        let Ok(httparse::Status::Complete(_)) = req.parse(bytes) else {
            return;
        };
        let Some(mut head) = RequestHead::read(&req, [b"x-subject", b"x-roles"], false) else {
            return;
        };
        // Admission hands a head whose Host is no authority to hyper.
        if Authority::parse(head.host).is_err() {
            return;
        }
        let method = req.method.unwrap_or_default();
        assert_eq!(
            Method::from_bytes(method.as_bytes()).ok(),
            Some(head.method.clone())
        );
        let uri = http::Uri::try_from(head.target).expect("hyper takes the target");
        assert_eq!(uri.path(), head.path);
        // What goes upstream is the normal path (as admission makes it),
        // which hyper takes too.
        let Ok(normal) = normalize_path(head.path, PathOptions::default()) else {
            return;
        };
        if let Cow::Owned(normal) = &normal {
            head.forward = Cow::Owned(forward_target(normal, head.target));
        }
        let forwarded =
            http::Uri::try_from(&*head.forward).expect("hyper takes the forwarded target");
        assert_eq!(forwarded.path(), normal);
        assert_eq!(forwarded.query(), uri.query());
        for field in req.headers.iter() {
            http::HeaderName::from_bytes(field.name.as_bytes()).expect("hyper takes the name");
            HeaderValue::from_bytes(field.value).expect("hyper takes the value");
        }
        let conn = ConnInfo::new(std::net::SocketAddr::from(([192, 0, 2, 1], 1)), false);
        let mut out = Vec::new();
        let id = HeaderValue::from_static("id");
        let forwarding = Forwarding {
            conn: &conn,
            host: Some(head.host),
            prior_for: head.fields.prior_for,
            prior_forwarded: head.fields.prior_forwarded,
            request_id: &id,
            identity: None,
            prefix: None,
            edits: None,
            span: None,
        };
        write_request(&mut out, &req, &head, &forwarding);
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS + 8];
        let mut sent = httparse::Request::new(&mut fields);
        assert_eq!(sent.parse(&out), Ok(httparse::Status::Complete(out.len())));
        let count = |name: &str| {
            sent.headers
                .iter()
                .filter(|f| f.name.eq_ignore_ascii_case(name))
                .count()
        };
        for gone in HOP_BY_HOP
            .iter()
            .map(|n| n.as_str())
            .chain(["x-subject", "x-roles", "expect"])
        {
            assert_eq!(count(gone), 0, "{gone} is not forwarded");
        }
        assert_eq!(count("host"), 1);
        assert_eq!(count("x-request-id"), 1);
        // The body's framing goes as it came: one length, no chunking.
        let lengths: Vec<&[u8]> = sent
            .headers
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case("content-length"))
            .map(|f| f.value.trim_ascii())
            .collect();
        match lengths.as_slice() {
            [] => assert_eq!(head.body_len, 0),
            [one] => assert_eq!(content_length_digits(one), Some(head.body_len)),
            more => panic!("{} lengths forwarded", more.len()),
        }
    }

    /// A response: when the direct path takes its head, what the client
    /// gets reads back as one response head without hop-by-hop fields, and
    /// a chunked body is scanned alike whole and split at `split`.
    pub fn response(bytes: &[u8], split: usize) {
        let mut reply = Vec::new();
        let Ok(Parsed::Final(head)) = rewrite(bytes, false, &mut reply) else {
            return;
        };
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS + 8];
        let mut sent = httparse::Response::new(&mut fields);
        assert_eq!(
            sent.parse(&reply),
            Ok(httparse::Status::Complete(reply.len()))
        );
        assert_eq!(sent.code, Some(head.status));
        for gone in HOP_BY_HOP.iter().map(|n| n.as_str()) {
            let framing = gone == "transfer-encoding"
                && matches!(head.framing, Framing::Chunked | Framing::UntilClose);
            let n = sent
                .headers
                .iter()
                .filter(|f| f.name.eq_ignore_ascii_case(gone))
                .count();
            assert_eq!(n, usize::from(framing), "{gone}");
        }
        if head.framing == Framing::Chunked {
            let body = &bytes[head.len..];
            let whole = ChunkedScanner::default().feed(body);
            let at = split.min(body.len());
            let mut parts = ChunkedScanner::default();
            let split_result = match parts.feed(&body[..at]) {
                Ok(None) => parts.feed(&body[at..]).map(|end| end.map(|n| n + at)),
                other => other,
            };
            assert_eq!(whole, split_result);
        }
    }

    /// `rewrite_response` for a route with a deprecation field, debug
    /// headers on, request id `rid`.
    pub(super) fn rewrite(
        response: &[u8],
        head_request: bool,
        reply: &mut Vec<u8>,
    ) -> Result<Parsed, UpstreamFailure> {
        let route = RouteState {
            config: crate::config::Route {
                path: "/x".into(),
                methods: None,
                action: crate::config::Action::Proxy {
                    upstream: "svc".into(),
                },
                deprecated: None,
                maintenance: None,
                debug_headers: None,
                auth: RouteAuth::None,
                roles: Vec::new(),
                conceal: false,
                request_schema: None,
                rate_limit: None,
                strip_prefix: None,
                add_prefix: None,
                request_headers: None,
                response_headers: None,
                cors: None,
                line: None,
            },
            label: Arc::from("/x"),
            pool: None,
            deprecation_headers: vec![(
                http::header::HeaderName::from_static("sunset"),
                HeaderValue::from_static("Wed, 30 Jun 2027 00:00:00 GMT"),
            )],
            schema: None,
            cors: None,
            prefix: None,
        };
        let id = HeaderValue::from_static("rid");
        let respond = Respond {
            request_id: &id,
            debug_upstream: Some("svc"),
            deprecation: &route.deprecation_headers,
            extra: &[],
            head_request,
            monitor: true,
            repair: None,
            edits: None,
            cors: None,
        };
        rewrite_response(response, &respond, false, reply)
    }
}

/// The path of a request target (the query cut off): a byte scan, cheaper
/// than a `char` pattern for the access log's every line.
fn path_of(target: &str) -> &str {
    match target.bytes().position(|b| b == b'?') {
        Some(end) => target.get(..end).unwrap_or(target),
        None => target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_added_fields_are_written_under_their_names() {
        let conn = ConnInfo::new(std::net::SocketAddr::from(([192, 0, 2, 1], 1)), false);
        let id = HeaderValue::from_static("id");
        let (subject, roles) = (
            HeaderName::from_static("x-s"),
            HeaderName::from_static("x-r"),
        );
        let forwarding = Forwarding {
            conn: &conn,
            host: Some(&b"h"[..]),
            prior_for: None,
            prior_forwarded: None,
            request_id: &id,
            identity: Some(IdentityFields {
                names: [&subject, &roles],
                subject: b"s",
                roles: b"r",
            }),
            prefix: None,
            edits: None,
            span: None,
        };
        let mut fields = [httparse::EMPTY_HEADER; 4];
        let mut req = httparse::Request::new(&mut fields);
        req.parse(b"GET / HTTP/1.1\r\nhost: h\r\n\r\n").unwrap();
        let head = RequestHead::read(&req, [b"x-s", b"x-r"], false).unwrap();
        let mut out = Vec::new();
        write_request(&mut out, &req, &head, &forwarding);
        let mut names = Vec::new();
        forwarding.each(|field, _| names.push(field.name().as_str().to_owned()));
        let text = String::from_utf8(out).unwrap();
        let written: Vec<&str> = text
            .lines()
            .skip(2)
            .filter_map(|l| l.split_once(": ").map(|(n, _)| n))
            .collect();
        assert_eq!(written, names);
    }

    #[test]
    fn a_head_ends_at_the_first_empty_line_with_either_line_end() {
        assert!(has_blank_line(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n"));
        assert!(has_blank_line(b"GET / HTTP/1.1\nhost: a\n\n"));
        assert!(has_blank_line(b"GET / HTTP/1.1\r\n\r\nGET /next"));
        assert!(!has_blank_line(b"GET / HTTP/1.1\r\nhost: a\r\n"));
        assert!(!has_blank_line(b"GET / HTTP/1.1\r\nhost: a\r\n\r"));
        assert!(!has_blank_line(b""));
    }

    #[test]
    fn only_origin_form_targets_hyper_takes_are_direct() {
        assert_eq!(origin_form_path("/users/7?x=1&y=%20"), Some("/users/7"));
        assert_eq!(origin_form_path("/"), Some("/"));
        assert_eq!(origin_form_path("/a?b?c"), Some("/a"));
        for refused in [
            "*",
            "http://h/x",
            "h/x",
            "/a#frag",
            "/a\"b",
            "/a b",
            "/a{b}",
        ] {
            let hyper_takes = http::uri::PathAndQuery::try_from(refused)
                .is_ok_and(|pq| pq.as_str() == refused && refused.starts_with('/'));
            assert_eq!(
                origin_form_path(refused).is_some(),
                hyper_takes,
                "{refused}: the direct path takes what hyper takes, no more"
            );
        }
        assert_eq!(origin_form_path("*"), None);
        assert_eq!(origin_form_path("/a#frag"), None);
    }

    #[test]
    fn every_byte_the_table_takes_parses_as_hyper_would() {
        for b in 0..=255u8 {
            let path = [b'/', b'x', b];
            let text = String::from_utf8_lossy(&path);
            if let Some(p) = std::str::from_utf8(&path).ok().and_then(origin_form_path) {
                let pq = http::uri::PathAndQuery::try_from(&path[..]).unwrap();
                assert_eq!(pq.path(), p, "{text}");
            }
        }
    }

    /// Feeds `body` whole and one byte at a time: both must agree.
    fn scan(body: &[u8]) -> Result<Option<usize>, ()> {
        let whole = ChunkedScanner::default().feed(body);
        let mut bytewise = ChunkedScanner::default();
        let mut found = Ok(None);
        for (i, b) in body.iter().enumerate() {
            match bytewise.feed(std::slice::from_ref(b)) {
                Ok(Some(1)) => {
                    found = Ok(Some(i + 1));
                    break;
                }
                Ok(Some(n)) => panic!("one byte fed, {n} consumed"),
                Ok(None) => {}
                Err(()) => {
                    found = Err(());
                    break;
                }
            }
        }
        assert_eq!(whole, found, "{}", String::from_utf8_lossy(body));
        whole
    }

    #[test]
    fn chunked_bodies_end_where_their_last_chunk_and_trailers_end() {
        let body = b"5\r\nhello\r\n7;name=\"v\"\r\n, world\r\n0\r\n\r\n";
        assert_eq!(scan(body), Ok(Some(body.len())));
        let trailers = b"3\r\nabc\r\n0\r\nx-sum: 1\r\nx-more: 2\r\n\r\n";
        assert_eq!(scan(trailers), Ok(Some(trailers.len())));
        let mut pipelined = body.to_vec();
        pipelined.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(scan(&pipelined), Ok(Some(body.len())));
        assert_eq!(scan(b"A\r\n0123456789\r\n0\r\n\r\n"), Ok(Some(20)));
        assert_eq!(scan(b"5\r\nhel"), Ok(None));
        assert_eq!(scan(b"0\r\n"), Ok(None));
    }

    #[test]
    fn broken_chunk_framing_is_refused() {
        for broken in [
            &b"zz\r\nok\r\n0\r\n\r\n"[..],
            b"\r\n",
            b"2\nok\r\n0\r\n\r\n",
            b"2\r\nokk\r\n0\r\n\r\n",
            b"2\r\nok\n0\r\n\r\n",
            b"0\r\n\n",
            // 17 hex digits: more than a u64.
            b"10000000000000000\r\n",
            b"-1\r\n",
        ] {
            assert_eq!(scan(broken), Err(()), "{}", String::from_utf8_lossy(broken));
        }
    }

    fn reply_for(
        response: &[u8],
        head_request: bool,
    ) -> (Result<ResponseHead, UpstreamFailure>, String) {
        let mut reply = Vec::new();
        let head = fuzzing::rewrite(response, head_request, &mut reply).and_then(|p| match p {
            Parsed::Final(head) => Ok(head),
            Parsed::Informational(_) => Err(UpstreamFailure::Reset),
        });
        (head, String::from_utf8(reply).unwrap())
    }

    #[test]
    fn the_client_gets_the_upstream_head_without_hop_by_hop_fields() {
        let (head, reply) = reply_for(
            b"HTTP/1.1 503 Busy\r\nConnection: x-secret\r\nx-secret: 1\r\nKeep-Alive: timeout=5\r\nX-Request-Id: theirs\r\nX-Upstream-Service: deeper\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\ntransfer-encoding: chunked\r\ncontent-length: 99\r\nretry-after: 5\r\n\r\n",
            false,
        );
        let head = head.unwrap();
        assert_eq!(head.status, 503);
        assert_eq!(head.framing, Framing::Chunked);
        assert_eq!(
            reply,
            "HTTP/1.1 503 Busy\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\nretry-after: 5\r\ntransfer-encoding: chunked\r\nx-request-id: rid\r\nx-upstream-service: svc\r\nsunset: Wed, 30 Jun 2027 00:00:00 GMT\r\n\r\n"
        );
    }

    #[test]
    fn a_response_to_head_has_no_body_and_keeps_its_declared_length() {
        let (head, reply) = reply_for(b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n", true);
        assert_eq!(head.unwrap().framing, Framing::Empty);
        assert!(reply.contains("content-length: 12\r\n"), "{reply}");
        assert!(
            reply.contains("\r\ndate: "),
            "a Date when the upstream sent none: {reply}"
        );
    }

    #[test]
    fn the_fuzz_properties_hold_for_sample_messages() {
        fuzzing::request_head(
            b"GET /a?b HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nX-Forwarded-For: 1.2.3.4\r\nx-subject: m\r\ncontent-length: 0\r\n\r\n",
        );
        fuzzing::request_head(
            b"DELETE / HTTP/1.1\r\nhost: h\r\nx-request-id: a\r\nx-request-id: b\r\n\r\n",
        );
        let chunked = b"HTTP/1.1 200 OK\r\nconnection: te\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        for split in 0..20 {
            fuzzing::response(chunked, split);
        }
        fuzzing::response(b"HTTP/1.1 204 No Content\r\nkeep-alive: 1\r\n\r\n", 0);
    }

    #[test]
    fn unasked_upgrades_and_bad_status_lines_are_invalid() {
        for bad in [
            &b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n"[..],
            b"HTTP/1.1 099 Low\r\n\r\n",
            b"HTTP/2 200 OK\r\n\r\n",
            b"hello\r\n\r\n",
        ] {
            let (head, _) = reply_for(bad, false);
            assert_eq!(head.unwrap_err(), UpstreamFailure::InvalidResponse);
        }
        assert!(invalid_so_far(b"hello"));
        assert!(!invalid_so_far(b"HTTP/1.1 20"));
    }

    mod both_codecs {
        //! Both codecs, given one request head the direct path takes, hand
        //! the pipeline the same facts and send the upstream the same
        //! fields.
        use super::*;
        use proptest::prelude::*;

        const IDENTITY: [&[u8]; 2] = [b"x-auth-subject", b"x-auth-roles"];

        fn field() -> impl Strategy<Value = (&'static str, &'static str)> {
            let names = prop::sample::select(vec![
                "Host",
                "host",
                "X-Forwarded-For",
                "x-forwarded-for",
                "Forwarded",
                "X-Forwarded-Proto",
                "x-forwarded-host",
                "Connection",
                "X-Request-Id",
                "accept",
                "X-Auth-Subject",
                "x-auth-roles",
                "x-other",
                "Content-Length",
                "TE",
                "Keep-Alive",
                "Expect",
                "user-agent",
                "X-Forwarded-Prefix",
                "x-edit",
                "X-Gone",
            ]);
            let values = prop::sample::select(vec![
                "api.example",
                "10.0.0.1",
                "for=\"open",
                "for=192.0.2.9",
                "close",
                "keep-alive",
                "x-other",
                "5",
                "0",
                "chunked",
                "application/json",
                "text/html",
                "id-7",
                "",
            ]);
            (names, values)
        }

        /// Name and value pairs, lowercased names, sorted: a field multiset.
        fn multiset<'a>(
            pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        ) -> Vec<(String, Vec<u8>)> {
            let mut out: Vec<(String, Vec<u8>)> = pairs
                .map(|(n, v)| (String::from_utf8_lossy(n).to_ascii_lowercase(), v.to_vec()))
                .collect();
            out.sort();
            out
        }

        proptest! {
            #[test]
            fn both_codecs_forward_a_head_alike(
                fields in prop::collection::vec(field(), 0..8),
                prior_host in any::<bool>(),
                edited in any::<bool>(),
            ) {
                let mut raw = b"GET /echo HTTP/1.1\r\n".to_vec();
                if prior_host {
                    raw.extend_from_slice(b"host: api.example\r\n");
                }
                for (name, value) in &fields {
                    raw.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                }
                raw.extend_from_slice(b"\r\n");
                let mut slots = [httparse::EMPTY_HEADER; 16];
                let mut req = httparse::Request::new(&mut slots);
                prop_assume!(matches!(req.parse(&raw), Ok(httparse::Status::Complete(_))));
                let Some(mut head) = RequestHead::read(&req, IDENTITY, false) else {
                    // Not the direct path's: hyper answers it alone.
                    return Ok(());
                };
                // A route that strips a prefix and edits fields.
                let edits = crate::config::HeaderEdits {
                    set: vec![(HeaderName::from_static("x-edit"), HeaderValue::from_static("1"))],
                    add: vec![(HeaderName::from_static("x-other"), HeaderValue::from_static("2"))],
                    remove: vec![HeaderName::from_static("x-gone")],
                };
                let prefix = HeaderValue::from_static("/api");
                let (edits, prefix) = match edited {
                    true => (Some(&edits), Some(&prefix)),
                    false => (None, None),
                };
                if let Some(edits) = edits {
                    head.fields.skip |= edit_skip(edits, req.headers.iter().map(|f| f.name.as_bytes()));
                }
                // The hyper path's view: a header map of the same fields.
                let mut map = HeaderMap::new();
                for f in req.headers.iter() {
                    map.append(
                        HeaderName::from_bytes(f.name.as_bytes()).unwrap(),
                        HeaderValue::from_bytes(f.value).unwrap(),
                    );
                }
                let hyper_fields = RequestFields::scan(
                    map.iter().map(|(n, v)| (n.as_str().as_bytes(), v)),
                    IDENTITY,
                    false,
                )
                .map(HeaderValue::clone);
                let bytes = |v: &Option<HeaderValue>| v.as_ref().map(|v| v.as_bytes().to_vec());
                let direct_bytes = |v: &Option<&[u8]>| v.map(<[u8]>::to_vec);
                let d = &head.fields;
                prop_assert_eq!(d.size, hyper_fields.size);
                prop_assert_eq!(direct_bytes(&d.host), bytes(&hyper_fields.host));
                prop_assert_eq!(d.content_length, hyper_fields.content_length);
                prop_assert_eq!(direct_bytes(&d.request_id), bytes(&hyper_fields.request_id));
                prop_assert_eq!(direct_bytes(&d.accept), bytes(&hyper_fields.accept));
                prop_assert_eq!(direct_bytes(&d.prior_for), bytes(&hyper_fields.prior_for));
                prop_assert_eq!(direct_bytes(&d.prior_forwarded), bytes(&hyper_fields.prior_forwarded));
                prop_assert_eq!(d.close, hyper_fields.close);
                prop_assert_eq!(d.takes_json(), hyper_fields.takes_json());

                let conn = ConnInfo::new(std::net::SocketAddr::from(([192, 0, 2, 1], 1)), false);
                let id = HeaderValue::from_static("rid");
                let forwarding = Forwarding {
                    conn: &conn,
                    host: Some(head.host),
                    prior_for: d.prior_for,
                    prior_forwarded: d.prior_forwarded,
                    request_id: &id,
                    identity: None,
                    prefix,
                    edits,
                    span: None,
                };
                let mut out = Vec::new();
                write_request(&mut out, &req, &head, &forwarding);
                let mut sent_slots = [httparse::EMPTY_HEADER; 32];
                let mut sent = httparse::Request::new(&mut sent_slots);
                prop_assert!(matches!(sent.parse(&out), Ok(httparse::Status::Complete(_))));
                let direct_sent = multiset(sent.headers.iter().map(|f| (f.name.as_bytes(), f.value)));

                let uri: http::Uri = "/echo".parse().unwrap();
                let forwarded = crate::proxy::forward_headers(
                    map, &uri, &conn, &id, &hyper_fields, IDENTITY,
                    crate::proxy::Added {
                        identity: None,
                        prefix,
                        edits,
                        span: None,
                    },
                );
                let hyper_sent = multiset(forwarded.iter().map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes())));
                prop_assert_eq!(direct_sent, hyper_sent);
            }
        }
    }
}
