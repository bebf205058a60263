//! The data path: limits, routing, route policies, then the upstream.
//!
//! The order of the checks is the contract's precedence (section 1):
//! request limits, overload, unknown route, retired route, method,
//! maintenance, then the upstream. Errors are typed and answered by
//! `error::rescue`; upstream statuses pass through unchanged.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use std::borrow::Cow;

use candor_contract::{Exchange, content_length_value, forwarded_quotes_closed};
use http::header::{
    ACCEPT, CONNECTION, CONTENT_LENGTH, HOST, HeaderMap, HeaderName, HeaderValue, TRANSFER_ENCODING,
};
use http::{Method, Request, Response, Version};
use http_body::Body as _;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::admission::{Admitted, Head, HostField, admit, forward_target};
use crate::auth::{self, AuthError, Identity, Scheme};
use crate::body::{LimitedIncoming, UpstreamBody};
use crate::config::OnStoreError;
use crate::deadline::{Phase, Progress};
use crate::error::{ErrorContext, GatewayError, X_REQUEST_ID, accepts_json, rescue};
use crate::metrics::{
    LimitLabels, RequestKey, RuleLabels, Tally, UpstreamFailureLabels, UpstreamLabels, method_label,
};
use crate::monitor::Observation;
use crate::pipeline::response::{self, HOP_BY_HOP, Repairer, Respond, Value};
use crate::ratelimit::Decision;
use crate::routing::RouteState;
use crate::state::{Runtime, Shared};
use crate::upstream::{Lease, Pick, Pool, SendError, Target, UpstreamFailure};

/// What the client gets: a gateway-made body or the upstream's, streamed.
pub type ResponseBody = Either<Full<Bytes>, UpstreamBody>;

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

/// What the access log and metrics learn while a request is handled.
struct Trace {
    route: Option<Arc<str>>,
    /// RateLimit-Policy / RateLimit of a limited route, for the response.
    rate_fields: Vec<(HeaderName, HeaderValue)>,
    upstream: Option<Arc<str>>,
    debug_headers: bool,
}

static UNMATCHED: std::sync::LazyLock<Arc<str>> =
    std::sync::LazyLock::new(|| Arc::from("unmatched"));

/// Handles one request; never fails (errors become contract responses).
pub async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let started = Instant::now();
    let runtime = shared.runtime.load_full();
    let fields = Fields::scan(
        req.headers(),
        [&runtime.auth.subject_header, &runtime.auth.roles_header],
    );
    let request_id = shared.request_ids.assign(fields.request_id.as_ref());
    let json = fields.json;
    let method = req.method().clone();
    // Kept for the access log only (the request itself moves on).
    let path = runtime
        .config
        .gateway
        .access_log
        .then(|| req.uri().path().to_owned());
    let mut trace = Trace {
        route: None,
        rate_fields: Vec::new(),
        upstream: None,
        debug_headers: runtime.config.gateway.debug_headers,
    };

    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    let result = route_request(
        &shared,
        &runtime,
        &conn,
        parts,
        &fields,
        &mut body,
        &request_id,
        &mut trace,
    )
    .await;
    // Answered without reading the body: read the rest away in the
    // background, so a client still sending it gets the answer, not a reset.
    if let Some(body) = body
        && !body.is_end_stream()
    {
        tokio::spawn(candor_contract::axum::read_away(body));
    }
    // An upstream's response has the request id and the rate-limit
    // fields from its plan (`pipeline::response`); the gateway's own
    // answers get them here.
    let (mut response, rule) = match result {
        Ok(response) => (response, None),
        Err(error) => {
            let (mut response, rule) =
                answer_error(&shared, &error, &request_id, trace.debug_headers, json);
            let headers = response.headers_mut();
            headers.insert(&X_REQUEST_ID, request_id.clone());
            // Every response of a limited route says where the client stands.
            for (name, value) in trace.rate_fields.drain(..) {
                headers.insert(name, value);
            }
            (response.map(Either::Left), Some(rule))
        }
    };
    let answered = Answered {
        started,
        route: trace.route.as_ref(),
        method: &method,
        path: path.as_deref(),
        status: response.status().as_u16(),
        rule,
        upstream: trace.upstream.as_deref(),
        request_id: &request_id,
    };
    match response.body_mut() {
        // An upstream's body may still break off: counted when it ends.
        Either::Right(body) => {
            let (key, seconds) = record_head(&shared, &conn, &answered);
            let (method, status) = (key.method, key.status);
            let route = trace.route.take().unwrap_or_else(|| UNMATCHED.clone());
            body.count_at_end(Tally {
                route,
                method,
                status,
                seconds,
            });
        }
        Either::Left(_) => record(&shared, &conn, answered),
    }
    Ok(response)
}

/// The contract's answer to a gateway-made error, counted by rule.
pub(crate) fn answer_error(
    shared: &Shared,
    error: &GatewayError,
    request_id: &HeaderValue,
    debug_headers: bool,
    accepts_json: bool,
) -> (Response<Full<Bytes>>, &'static str) {
    let rule = error.rule();
    shared
        .metrics
        .gateway_errors
        .get_or_create(&RuleLabels { rule: rule.id })
        .inc();
    let cx = ErrorContext {
        // Checked when assigned: visible ASCII only.
        request_id: request_id.to_str().unwrap_or_default(),
        debug_headers,
        accepts_json,
    };
    (rescue(error, cx), rule.id)
}

/// What the metrics and the access log learn of an answered request.
pub(crate) struct Answered<'a> {
    pub started: Instant,
    pub route: Option<&'a Arc<str>>,
    pub method: &'a Method,
    /// The path, when the access log is on.
    pub path: Option<&'a str>,
    pub status: u16,
    /// The rule of a gateway-made answer.
    pub rule: Option<&'static str>,
    pub upstream: Option<&'a str>,
    pub request_id: &'a HeaderValue,
}

/// Counts an answered request and writes its access log line (when the
/// log is on), once its response head is ready: for a response whose body
/// cannot break off after that (the gateway's own).
pub(crate) fn record(shared: &Shared, conn: &ConnInfo, a: Answered<'_>) {
    let (key, seconds) = record_head(shared, conn, &a);
    shared.metrics.observe_request(key, seconds);
}

/// Writes the access log line of a request whose response head is ready
/// (when the log is on), and returns what its count takes: its labels and
/// the time until then. An upstream's response is counted when its body
/// ends, as `class="aborted"` if the upstream broke it off.
pub(crate) fn record_head<'a>(
    shared: &Shared,
    conn: &ConnInfo,
    a: &Answered<'a>,
) -> (RequestKey<'a>, f64) {
    let elapsed = a.started.elapsed();
    let key = RequestKey {
        route: a.route.unwrap_or(&UNMATCHED),
        method: method_label(a.method),
        status: a.status,
        gateway: a.rule.is_some(),
        aborted: false,
    };
    if let Some(path) = a.path {
        shared.access_log.log(crate::access_log::Line {
            request_id: a.request_id.to_str().unwrap_or_default(),
            peer: conn.peer,
            method: a.method.as_str(),
            path,
            status: a.status,
            rule: a.rule,
            route: a.route.map(|r| &**r),
            upstream: a.upstream,
            micros: elapsed.as_micros(),
        });
    }
    (key, elapsed.as_secs_f64())
}

/// Runs a request through the gateway's checks and the upstream. The
/// common route (no rate limit, no body schema) has nothing to wait for
/// before the upstream, so only the upstream exchange is awaited inline;
/// the policies that wait (a rate-limit store, a whole body to validate)
/// are awaited behind a box each, which keeps this future, moved into
/// hyper's connection task on every request, small.
#[allow(clippy::too_many_arguments)]
async fn route_request(
    shared: &Shared,
    runtime: &Runtime,
    conn: &ConnInfo,
    parts: http::request::Parts,
    fields: &Fields,
    body: &mut Option<Incoming>,
    request_id: &HeaderValue,
    trace: &mut Trace,
) -> Result<Response<ResponseBody>, GatewayError> {
    let mut matched = None;
    let head = HyperHead {
        parts: &parts,
        fields,
    };
    let admitted = admit(shared, runtime, &head, conn.peer.ip(), &mut matched);
    if let Some(route) = matched {
        trace.route = Some(route.label.clone());
        if let Some(debug) = route.config.debug_headers {
            trace.debug_headers = debug;
        }
    }
    let mut admitted = admitted?;
    let route = admitted.route;
    let gw = &runtime.config.gateway;
    // rate.limited: after authentication (quotas follow the subject),
    // before the body is read.
    if let Some((limiter, key)) = admitted.limit.take() {
        trace.rate_fields = Box::pin(count_request(shared, limiter, key)).await?;
    }
    trace.upstream = Some(admitted.pool.name.clone());
    let (body, body_empty) = take_body(body, fields, gw.max_body_bytes)?;
    // body.*: only routes with a schema read the body whole, here, after
    // every cheaper check; other bodies stream.
    let body = match &route.schema {
        Some(schema) => Either::Right(Full::new(
            Box::pin(crate::validate::read_valid_body(
                &parts.method,
                parts.headers.get(http::header::CONTENT_TYPE),
                body,
                schema,
                gw.max_body_bytes,
                gw.body_timeout,
            ))
            .await?,
        )),
        None => Either::Left(LimitedIncoming::new(
            body,
            gw.max_body_bytes,
            gw.body_timeout,
        )),
    };
    let outbound = outbound(
        runtime,
        admitted.pool,
        conn,
        parts,
        fields,
        body,
        body_empty,
        request_id,
        &admitted,
    )?;
    let pool = admitted.pool;
    let respond = Respond {
        request_id,
        debug_upstream: trace.debug_headers.then_some(&*pool.name),
        deprecation: &route.deprecation_headers,
        extra: &trace.rate_fields,
        head_request: outbound.method == Method::HEAD,
        monitor: outbound.monitor.is_some(),
        repair: Repairer::of(shared, pool, &gw.realm),
    };
    let (edited, sent) = exchange(shared, pool, outbound, &respond).await?;
    Ok(upstream_response(shared, pool, edited, sent))
}

/// Counts a request against `limiter` under `key`: the fields for the
/// response when allowed; `rate.limited`, or the store's failure as the
/// limit's `on_store_error` says, otherwise.
pub(crate) async fn count_request(
    shared: &Shared,
    limiter: &crate::ratelimit::Limiter,
    key: String,
) -> Result<Vec<(HeaderName, HeaderValue)>, GatewayError> {
    match limiter.check(key).await {
        Decision::Allowed { fields } => Ok(fields),
        Decision::Limited {
            retry_after,
            fields,
        } => Err(GatewayError::RateLimited {
            retry_after,
            headers: fields,
        }),
        Decision::StoreFailed(policy) => {
            let outcome = match policy {
                OnStoreError::Allow => "allowed",
                OnStoreError::Deny => "denied",
            };
            shared
                .metrics
                .rate_store_errors
                .get_or_create(&LimitLabels {
                    limit: Arc::from(limiter.config.name.as_str()),
                    outcome,
                })
                .inc();
            match policy {
                OnStoreError::Deny => Err(GatewayError::RateStoreUnavailable),
                OnStoreError::Allow => Ok(Vec::new()),
            }
        }
    }
}

/// A head as hyper's server parsed it, with the facts the scan gathered.
struct HyperHead<'h> {
    parts: &'h http::request::Parts,
    fields: &'h Fields,
}

impl Head for HyperHead<'_> {
    fn method(&self) -> &Method {
        &self.parts.method
    }

    fn version(&self) -> Version {
        self.parts.version
    }

    fn target_len(&self) -> usize {
        self.parts
            .uri
            .path_and_query()
            .map_or(1, |pq| pq.as_str().len())
    }

    fn header_bytes(&self) -> usize {
        self.fields.size
    }

    fn path(&self) -> &str {
        self.parts.uri.path()
    }

    fn host(&self) -> HostField<'_> {
        HostField {
            count: self.fields.hosts,
            first: self.fields.host.as_ref().map(HeaderValue::as_bytes),
            named_in_connection: self.fields.connection_names_host,
        }
    }

    fn authority(&self) -> Option<&str> {
        self.parts.uri.authority().map(http::uri::Authority::as_str)
    }

    fn unsupported_coding(&self) -> Option<&[u8]> {
        self.fields
            .unsupported_coding
            .as_ref()
            .map(HeaderValue::as_bytes)
    }

    fn fields(&self, _wanted: &dyn Fn(&str) -> bool) -> Option<Cow<'_, HeaderMap>> {
        Some(Cow::Borrowed(&self.parts.headers))
    }
}

/// The request body, once (and whether it is empty), unless its declared
/// length is already over the limit (body.too_large). A refused body stays
/// in `slot`, to be read away behind the answer.
fn take_body(
    slot: &mut Option<Incoming>,
    fields: &Fields,
    max_body_bytes: u64,
) -> Result<(Incoming, bool), GatewayError> {
    if let Some(len) = fields.content_length
        && len > max_body_bytes
    {
        return Err(GatewayError::BodyTooLarge {
            limit: max_body_bytes,
        });
    }
    let Some(body) = slot.take() else {
        return Err(GatewayError::Internal {
            detail: "the request body was taken twice".to_owned(),
        });
    };
    let empty = body.is_end_stream();
    Ok((body, empty))
}

/// The request as it goes upstream, and what a second attempt needs.
struct Outbound {
    method: Method,
    /// Sent in origin form (the connection already knows the target).
    path_and_query: http::uri::PathAndQuery,
    headers: HeaderMap,
    body: crate::upstream::UpstreamRequestBody,
    /// Body-less and idempotent: may be sent again.
    resendable: bool,
    /// What the monitor keeps of the request, on monitored upstreams.
    monitor: Option<Box<(HeaderMap, String)>>,
}

/// Builds the upstream request: early body-size check, forwarding fields,
/// identity fields from the gateway only.
#[allow(clippy::too_many_arguments)]
fn outbound(
    runtime: &Runtime,
    pool: &Pool,
    conn: &ConnInfo,
    parts: http::request::Parts,
    fields: &Fields,
    body: crate::upstream::UpstreamRequestBody,
    body_empty: bool,
    request_id: &HeaderValue,
    admitted: &Admitted<'_, '_>,
) -> Result<Outbound, GatewayError> {
    let identity = admitted.identity.as_ref();
    let path_and_query = match (&admitted.normalised, parts.uri.path_and_query()) {
        (None, Some(pq)) => pq.clone(),
        (None, None) => http::uri::PathAndQuery::from_static("/"),
        // Never a path the gateway did not route: the normal one, with the
        // query as it came.
        (Some(path), pq) => {
            let target = forward_target(path, pq.map_or("", http::uri::PathAndQuery::as_str));
            http::uri::PathAndQuery::try_from(target).map_err(|_| GatewayError::PathUnsafe {
                why: "cannot be forwarded once normalised",
            })?
        }
    };
    let (subject_header, roles_header) = (&runtime.auth.subject_header, &runtime.auth.roles_header);
    let mut headers = forward_headers(
        parts.headers,
        &parts.uri,
        conn,
        request_id,
        fields,
        [subject_header, roles_header],
    );
    if let Some(id) = identity {
        if let Ok(v) = HeaderValue::from_str(&id.subject) {
            headers.insert(subject_header.clone(), v);
        }
        if let Ok(v) = HeaderValue::from_str(&id.roles.join(",")) {
            headers.insert(roles_header.clone(), v);
        }
    }
    let monitor = pool.config.monitor.then(|| {
        Box::new((
            snapshot(&headers, candor_contract::REQUEST_FIELDS),
            path_and_query.as_str().to_owned(),
        ))
    });
    Ok(Outbound {
        resendable: body_empty && is_idempotent(&parts.method),
        method: parts.method,
        path_and_query,
        headers,
        body,
        monitor,
    })
}

/// The upstream's answer to an [`Outbound`] request.
struct Sent {
    method: Method,
    monitor: Option<Box<(HeaderMap, String)>>,
}

/// Sends the request to a target of `pool`, with the response-head timer,
/// one retry on another target after a connect failure (body-less
/// idempotent requests only), and every failure counted and classified.
async fn exchange(
    shared: &Shared,
    pool: &Arc<Pool>,
    out: Outbound,
    respond: &Respond<'_>,
) -> Result<(Edited, Sent), GatewayError> {
    let Outbound {
        method,
        path_and_query,
        headers,
        body,
        resendable,
        monitor,
    } = out;
    let may_retry = resendable && pool.config.targets.len() > 1;
    // A body streamed from the client tells the attempt's timers, from the
    // upstream connection's task, how far it got.
    let (body, upload) = match body {
        Either::Left(streamed) if !streamed.is_end_stream() => {
            let progress = Arc::new(Progress::new());
            (
                Either::Left(streamed.reporting(progress.clone())),
                Some(progress),
            )
        }
        other => (other, None),
    };
    let mut attempt = HyperAttempt {
        pool,
        method: &method,
        path_and_query,
        headers: Some(headers),
        body: Some(body),
        resendable,
        keep_copy: may_retry,
        respond,
    };
    let here;
    let progress = match &upload {
        Some(progress) => &**progress,
        None => {
            here = Progress::new();
            &here
        }
    };
    let edited = attempts(shared, pool, may_retry, &mut attempt, progress).await?;
    Ok((edited, Sent { method, monitor }))
}

/// One way of sending a request to a chosen target (hyper's client, or
/// the direct path's own connections), for [`attempts`].
pub(crate) trait Attempt {
    type Sent;
    /// Sends the request to `target`; `resent` says whether it went a
    /// second time on a fresh connection (a pooled one had closed under it).
    /// `progress` is told when the connection is there (and again after a
    /// restart on a fresh one) and when the request has been written: the
    /// timers of [`attempts`] follow it.
    fn send<'a>(
        &'a mut self,
        target: &'a Target,
        resent: &'a mut bool,
        progress: &'a Progress,
    ) -> impl Future<Output = Result<Self::Sent, SendError>> + Send + 'a;
}

/// The hyper client's attempt: the request is rebuilt from its parts for
/// a second target or a resend.
struct HyperAttempt<'x> {
    pool: &'x Arc<Pool>,
    method: &'x Method,
    /// Sent in origin form (the connection already knows the target).
    path_and_query: http::uri::PathAndQuery,
    headers: Option<HeaderMap>,
    body: Option<crate::upstream::UpstreamRequestBody>,
    resendable: bool,
    /// A second target may be tried: the first attempt sends a copy.
    keep_copy: bool,
    respond: &'x Respond<'x>,
}

fn upstream_request(
    method: &Method,
    path_and_query: &http::uri::PathAndQuery,
    body: crate::upstream::UpstreamRequestBody,
    headers: HeaderMap,
) -> Request<crate::upstream::UpstreamRequestBody> {
    let mut up = Request::new(body);
    *up.method_mut() = method.clone();
    *up.version_mut() = Version::HTTP_11;
    *up.uri_mut() = http::Uri::from(path_and_query.clone());
    *up.headers_mut() = headers;
    up
}

impl Attempt for HyperAttempt<'_> {
    type Sent = Edited;

    fn send<'a>(
        &'a mut self,
        target: &'a Target,
        resent: &'a mut bool,
        progress: &'a Progress,
    ) -> impl Future<Output = Result<Self::Sent, SendError>> + Send + 'a {
        let empty = || Either::Right(Full::new(Bytes::new()));
        // A request that may go to a second target keeps a copy.
        let h = if self.keep_copy {
            self.headers.clone().unwrap_or_default()
        } else {
            self.headers.take().unwrap_or_default()
        };
        self.keep_copy = false;
        let (first, again) = if self.resendable {
            (h.clone(), Some(h))
        } else {
            (h, None)
        };
        let body = self.body.take().unwrap_or_else(empty);
        let (method, path) = (self.method, &self.path_and_query);
        let request = upstream_request(method, path, body, first);
        let again = again.map(|h| move || upstream_request(method, path, empty(), h));
        let sending = self.pool.send(target, request, again, resent, progress);
        let respond = self.respond;
        async move {
            let (response, lease) = sending.await?;
            edit(response, lease, respond).map_err(SendError::Failure)
        }
    }
}

/// An upstream's response with its head edited for the client.
pub(crate) struct Edited {
    response: Response<Incoming>,
    /// Its connection, unless the plan says it is not to be reused.
    lease: Option<Lease>,
    /// The fields the monitor reads, when it watches.
    snapshot: Option<HeaderMap>,
}

/// Applies the pipeline's plan (`response::plan`: the verdict on what
/// hyper's client let through, and the edits) to hyper's head: the
/// fields it drops removed, the ones it adds appended. The gateway
/// answers in its own version (RFC 9110 section 6.2): an HTTP/1.0
/// upstream's body of unknown length is chunked for an HTTP/1.1 client,
/// as on the direct path; hyper's server frames the body and adds `Date`.
fn edit(
    response: Response<Incoming>,
    lease: Lease,
    respond: &Respond<'_>,
) -> Result<Edited, UpstreamFailure> {
    let (mut parts, body) = response.into_parts();
    let (snapshot, may_reuse) = edit_head(&mut parts, respond)?;
    Ok(Edited {
        response: Response::from_parts(parts, body),
        lease: may_reuse.then_some(lease),
        snapshot,
    })
}

/// [`edit`] on the head alone: the monitor's fields (when it watches) and
/// whether the connection may be reused.
pub(crate) fn edit_head(
    parts: &mut http::response::Parts,
    respond: &Respond<'_>,
) -> Result<(Option<HeaderMap>, bool), UpstreamFailure> {
    let mut plan = response::plan(
        parts.status.as_u16(),
        parts.version == Version::HTTP_11,
        parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
        respond,
    )?;
    // Most heads lose a field or two (hyper keeps `Transfer-Encoding`,
    // `Connection`): names only, removed once the plan is done reading.
    let mut dropped: Vec<HeaderName> = Vec::new();
    let mut snapshot = respond.monitor.then(HeaderMap::new);
    for (name, value) in &parts.headers {
        if !plan.keep(name.as_str()) {
            if !dropped.contains(name) {
                dropped.push(name.clone());
            }
        } else if let Some(snapshot) = &mut snapshot
            && plan.watched(name.as_str())
        {
            snapshot.append(name.clone(), value.clone());
        }
    }
    let added = plan.added();
    let may_reuse = plan.may_reuse();
    for name in &dropped {
        parts.headers.remove(name);
    }
    added.each(|name, value| {
        let value = match value {
            Value::Field(v) => v.clone(),
            Value::Text(text) => match HeaderValue::from_str(text) {
                Ok(v) => v,
                Err(_) => return,
            },
        };
        parts.headers.append(name.clone(), value);
    });
    parts.version = Version::HTTP_11;
    Ok((snapshot, may_reuse))
}

/// Sends a request to a target of `pool` with `send`, under the timers of
/// its phases (`connect_timeout` for the connect, `response_timeout` once
/// the request is written, see [`Progress`]): one retry on another target
/// after a connect failure when `may_retry` (body-less idempotent requests
/// only), every upstream failure counted and classified, and the target's
/// health recorded. A client's body that fails on the way is the client's
/// answer, not counted against the upstream. `send` says, through its
/// flag, whether it sent the request a second time on a fresh connection
/// (a pooled one had closed under it). Both data paths send through here.
pub(crate) async fn attempts<A: Attempt>(
    shared: &Shared,
    pool: &Pool,
    may_retry: bool,
    attempt: &mut A,
    progress: &Progress,
) -> Result<A::Sent, GatewayError> {
    let mut avoid = None;
    let (connect, response) = (pool.config.connect_timeout, pool.config.response_timeout);
    loop {
        let target = match pool.pick(avoid) {
            Pick::Target(t) => t,
            Pick::AllEjected { retry_after } => {
                return Err(GatewayError::NoHealthyUpstream {
                    upstream: pool.name.clone(),
                    retry_after,
                });
            }
        };
        let mut resent = false;
        if avoid.is_some() {
            progress.restart();
        }
        // The send future is made where it is pinned, so it is not moved
        // once made: it is most of this future's size.
        let outcome = {
            let sending = std::pin::pin!(attempt.send(target, &mut resent, progress));
            crate::deadline::guard(sending, progress, connect, response).await
        };
        if resent {
            shared
                .metrics
                .resends
                .get_or_create(&UpstreamLabels {
                    upstream: pool.name.clone(),
                })
                .inc();
        }
        let failure = match outcome {
            Ok(Ok(sent)) => {
                pool.record_success(target);
                return Ok(sent);
            }
            Err(Phase::Connecting) => UpstreamFailure::ConnectTimeout,
            Err(Phase::Sending | Phase::Written) => UpstreamFailure::Timeout,
            Ok(Err(SendError::ClientBody(e))) => return Err(e.into()),
            Ok(Err(SendError::Failure(failure))) => failure,
        };
        shared
            .metrics
            .upstream_failures
            .get_or_create(&UpstreamFailureLabels {
                upstream: pool.name.clone(),
                failure: failure.as_str(),
            })
            .inc();
        if failure.is_connect() {
            pool.record_failure(target);
        }
        if may_retry && avoid.is_none() && failure.is_connect() && pool.has_other_target(target) {
            shared
                .metrics
                .retries
                .get_or_create(&UpstreamLabels {
                    upstream: pool.name.clone(),
                })
                .inc();
            avoid = Some(target);
            continue;
        }
        return Err(GatewayError::Upstream {
            upstream: pool.name.clone(),
            failure,
            detail: failure.describe().to_owned(),
        });
    }
}

/// The upstream's response, its head edited (see [`edit`]), as the client
/// gets it: the monitor attached, and a body that aborts the client's
/// stream if the upstream's fails.
fn upstream_response(
    shared: &Shared,
    pool: &Arc<Pool>,
    edited: Edited,
    sent: Sent,
) -> Response<ResponseBody> {
    let Edited {
        response,
        lease,
        snapshot,
    } = edited;
    let (parts, body) = response.into_parts();
    let observation = sent.monitor.map(|request| {
        let (req_headers, url) = *request;
        let mut exchange = Exchange::default();
        exchange.request.method = sent.method.as_str().to_owned();
        exchange.request.url = url;
        exchange.request.headers = req_headers;
        exchange.response.status = parts.status.as_u16();
        exchange.response.headers = snapshot.unwrap_or_default();
        Box::new(Observation::new(
            pool.name.clone(),
            exchange,
            pool.config.monitor_body_bytes,
            shared.metrics.clone(),
        ))
    });
    let body = UpstreamBody::new(body, observation, shared.metrics.clone(), lease);
    Response::from_parts(parts, Either::Right(body))
}

/// The route's roles against the identity: `authz.denied`, or
/// `authz.concealed` on a concealed route (`path` for its answer).
pub(crate) fn authorize(
    runtime: &Runtime,
    route: &RouteState,
    identity: Option<&Identity>,
    path: &str,
) -> Result<(), GatewayError> {
    if route.config.roles.is_empty()
        || identity.is_some_and(|id| auth::has_any_role(id, &route.config.roles))
    {
        return Ok(());
    }
    if route.config.conceal {
        return Err(GatewayError::Concealed {
            path: path.to_owned(),
        });
    }
    let needed = route.config.roles.join(" ");
    let challenges = match identity.map(|id| id.scheme) {
        Some(Scheme::ApiKey) => None,
        _ => Some(
            runtime
                .auth
                .challenge(
                    Scheme::Bearer,
                    &[("error", "insufficient_scope"), ("scope", &needed)],
                )
                .to_string(),
        ),
    };
    Err(GatewayError::Forbidden { challenges, needed })
}

/// Runs the route's authentication and maps its failure to the contract.
pub(crate) fn authenticate(
    runtime: &Runtime,
    route: &RouteState,
    headers: &HeaderMap,
) -> Result<Option<Identity>, GatewayError> {
    let accepts = route.config.auth;
    runtime
        .auth
        .authenticate(accepts, headers)
        .map_err(|e| match e {
            AuthError::Missing => GatewayError::Unauthenticated {
                challenges: runtime.auth.challenges(accepts, &[]),
            },
            AuthError::Invalid { scheme, why } => GatewayError::InvalidCredentials {
                challenges: runtime
                    .auth
                    .challenge(
                        scheme,
                        &[("error", "invalid_token"), ("error_description", &why)],
                    )
                    .to_string(),
                why,
            },
            AuthError::BadRequest { scheme, why } => GatewayError::MalformedCredentials {
                challenges: runtime
                    .auth
                    .challenge(
                        scheme,
                        &[("error", "invalid_request"), ("error_description", &why)],
                    )
                    .to_string(),
                why,
            },
        })
}

/// A copy of just the `names` fields of `headers`: what the monitor keeps,
/// rather than the whole header map of every monitored exchange. One pass
/// over the fields (name comparisons) rather than a lookup per name: most
/// of the names are absent, and a lookup hashes either way.
fn snapshot(headers: &HeaderMap, names: &[HeaderName]) -> HeaderMap {
    // Allocated at the first field found: often there is none.
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        if names.contains(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// What the data path asks of a request's fields, gathered in one pass
/// over them (name comparisons, no hashing). Most requests carry none of
/// the fields the gateway replaces or removes, and then no lookup is made
/// for them. Where a field repeats, the first one counts, as a lookup's.
struct Fields {
    /// The header section's size as sent: names, values, ": " and CRLF.
    size: usize,
    /// The client's X-Request-Id, not yet checked.
    request_id: Option<HeaderValue>,
    /// The client takes problem+json (also when it sent no Accept).
    json: bool,
    /// The declared Content-Length, when numeric.
    content_length: Option<u64>,
    host: Option<HeaderValue>,
    /// How many Host fields came (more than one is refused).
    hosts: u8,
    /// `Connection` names Host (refused: it would remove it on the way).
    connection_names_host: bool,
    /// A transfer coding the gateway does not implement: anything but one
    /// `chunked`.
    unsupported_coding: Option<HeaderValue>,
    forwarded_for: bool,
    forwarded: bool,
    hop_by_hop: bool,
    /// A field the gateway sets from the identity it checked, which a
    /// client must not supply.
    identity: bool,
}

impl Fields {
    fn scan(headers: &HeaderMap, identity: [&HeaderName; 2]) -> Fields {
        let mut f = Fields {
            size: 0,
            request_id: None,
            json: true,
            content_length: None,
            host: None,
            hosts: 0,
            connection_names_host: false,
            unsupported_coding: None,
            forwarded_for: false,
            forwarded: false,
            hop_by_hop: false,
            identity: false,
        };
        let mut accept_seen = false;
        let mut length_seen = false;
        let mut chunked = false;
        for (name, value) in headers {
            f.size += name.as_str().len() + value.len() + 4;
            if name == HOST {
                f.host.get_or_insert_with(|| value.clone());
                f.hosts = f.hosts.saturating_add(1);
            } else if name == ACCEPT {
                if !accept_seen {
                    accept_seen = true;
                    f.json = accepts_json(Some(value));
                }
            } else if name == CONTENT_LENGTH {
                if !length_seen {
                    length_seen = true;
                    f.content_length = content_length_value(value);
                }
            } else if name == X_REQUEST_ID {
                f.request_id.get_or_insert_with(|| value.clone());
            } else if name == X_FORWARDED_FOR {
                f.forwarded_for = true;
            } else if name == FORWARDED {
                f.forwarded = true;
            } else if is_hop_by_hop(name) {
                f.hop_by_hop = true;
                if name == CONNECTION {
                    f.connection_names_host |=
                        list_items(value).any(|t| t.eq_ignore_ascii_case(b"host"));
                } else if name == TRANSFER_ENCODING && f.unsupported_coding.is_none() {
                    // One `chunked`, the only coding the gateway decodes.
                    for coding in list_items(value) {
                        if chunked || !coding.eq_ignore_ascii_case(b"chunked") {
                            f.unsupported_coding = Some(value.clone());
                        }
                        chunked = true;
                    }
                }
            } else if identity.contains(&name) {
                f.identity = true;
            }
        }
        f
    }
}

/// The non-empty items of a comma-separated field value, trimmed.
fn list_items(value: &HeaderValue) -> impl Iterator<Item = &[u8]> {
    value
        .as_bytes()
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|item| !item.is_empty())
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Removes hop-by-hop fields (RFC 9110 section 7.6.1): `Connection`, every
/// field it names, and the fixed list.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages have none: one pass over the names (comparisons, no
    // hashing) spares seven lookups.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name)
}

/// The request headers for the upstream: hop-by-hop fields removed, the
/// client's Host kept, and Forwarded / X-Forwarded-* / X-Request-Id set.
///
/// On the path of every proxied request: the per-connection parts come
/// ready-made from `conn`, and each new value is built with one allocation
/// at most.
fn forward_headers(
    mut headers: HeaderMap,
    uri: &http::Uri,
    conn: &ConnInfo,
    request_id: &HeaderValue,
    fields: &Fields,
    identity: [&HeaderName; 2],
) -> HeaderMap {
    // What the scan found, unless hop-by-hop removal (which may name any
    // field in Connection) changed the map: then the map is asked.
    let (mut host, prior_xff, prior_forwarded) = if fields.hop_by_hop {
        strip_hop_by_hop(&mut headers);
        (headers.get(HOST).cloned(), true, true)
    } else {
        (fields.host.clone(), fields.forwarded_for, fields.forwarded)
    };
    // Identity fields come from the gateway only, never from the client.
    if fields.identity {
        for name in identity {
            headers.remove(name);
        }
    }
    headers.reserve(6);
    let proto = if conn.tls { "https" } else { "http" };
    if host.is_none()
        && let Some(authority) = uri.authority()
        && let Ok(v) = HeaderValue::from_str(authority.as_str())
    {
        headers.insert(HOST, v.clone());
        host = Some(v);
    }

    let xff = match prior_value(&headers, &X_FORWARDED_FOR, prior_xff) {
        Some(prior) => joined(prior, conn.peer_ip.as_bytes()),
        None => Some(conn.peer_ip.clone()),
    };
    if let Some(v) = xff {
        headers.insert(&X_FORWARDED_FOR, v);
    }
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    let host_text = host.as_ref().and_then(|h| h.to_str().ok());
    let element = match host_text {
        Some(host) => shared_value(&[
            conn.forwarded_for.as_bytes(),
            b";host=\"",
            host.as_bytes(),
            b"\"",
        ]),
        None => Some(conn.forwarded_for.clone()),
    };
    // A prior value with an open quote would swallow this hop's element.
    let prior = prior_value(&headers, &FORWARDED, prior_forwarded)
        .filter(|v| forwarded_quotes_closed(v.as_bytes()));
    let forwarded = match prior {
        Some(prior) => element.and_then(|e| joined(prior, e.as_bytes())),
        None => element,
    };
    if let Some(v) = forwarded {
        headers.insert(&FORWARDED, v);
    }
    if let Some(host) = host {
        headers.insert(&X_FORWARDED_HOST, host);
    }
    headers.insert(&X_REQUEST_ID, request_id.clone());
    headers
}

/// The text of a list field a previous hop set, looked up only when the
/// scan saw it.
fn prior_value<'h>(headers: &'h HeaderMap, name: &HeaderName, present: bool) -> Option<&'h str> {
    if !present {
        return None;
    }
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A field value made on the hot path from a few parts: one allocation, and
/// its clones only count references (a value made from a `Vec` is
/// allocated again the first time it is cloned, as the resend copy and the
/// response's request id do).
pub(crate) fn shared_value(parts: &[&[u8]]) -> Option<HeaderValue> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let bytes = if len <= Inline::CAPACITY {
        let mut inline = Inline {
            bytes: [0; Inline::CAPACITY],
            len: 0,
        };
        for part in parts {
            inline.bytes[inline.len..inline.len + part.len()].copy_from_slice(part);
            inline.len += part.len();
        }
        Bytes::from_owner(inline)
    } else {
        Bytes::from(parts.concat())
    };
    HeaderValue::from_maybe_shared(bytes).ok()
}

/// The bytes of a short field value, stored with its reference count.
struct Inline {
    bytes: [u8; Inline::CAPACITY],
    len: usize,
}

impl Inline {
    const CAPACITY: usize = 112;
}

impl AsRef<[u8]> for Inline {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// `prior, next` as one field value (a list field that grows by a hop).
fn joined(prior: &str, next: &[u8]) -> Option<HeaderValue> {
    let mut v = Vec::with_capacity(prior.len() + 2 + next.len());
    v.extend_from_slice(prior.as_bytes());
    v.extend_from_slice(b", ");
    v.extend_from_slice(next);
    HeaderValue::from_maybe_shared(Bytes::from(v)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{RETRY_AFTER, TE, WWW_AUTHENTICATE};

    static SUBJECT: HeaderName = HeaderName::from_static("x-subject");
    static ROLES: HeaderName = HeaderName::from_static("x-roles");

    /// `forward_headers` as the data path calls it, after the scan.
    fn forward(h: HeaderMap, uri: &str, conn: &ConnInfo, id: &HeaderValue) -> HeaderMap {
        let fields = Fields::scan(&h, [&SUBJECT, &ROLES]);
        forward_headers(
            h,
            &uri.parse().unwrap(),
            conn,
            id,
            &fields,
            [&SUBJECT, &ROLES],
        )
    }

    #[test]
    fn a_snapshot_keeps_every_value_of_the_named_fields_only() {
        let mut h = HeaderMap::new();
        h.append(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        h.append(ACCEPT, HeaderValue::from_static("*/*"));
        h.append(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
        let out = snapshot(&h, &[WWW_AUTHENTICATE, RETRY_AFTER]);
        assert_eq!(out.len(), 2);
        let values: Vec<_> = out.get_all(WWW_AUTHENTICATE).iter().collect();
        assert_eq!(values, ["Bearer", "Basic"]);
        assert!(snapshot(&h, &[RETRY_AFTER]).is_empty());
    }

    #[test]
    fn shared_values_hold_their_parts_short_or_long() {
        let short = shared_value(&[b"for=a", b";host=\"", b"h", b"\""]).unwrap();
        assert_eq!(short, "for=a;host=\"h\"");
        assert_eq!(short.clone(), short);
        let long_part = "x".repeat(Inline::CAPACITY);
        let long = shared_value(&[b"a", long_part.as_bytes()]).unwrap();
        assert_eq!(long.len(), Inline::CAPACITY + 1);
        assert_eq!(shared_value(&[]).unwrap(), "");
        assert!(shared_value(&[b"bad\nvalue"]).is_none());
    }

    #[test]
    fn one_pass_finds_what_the_data_path_asks() {
        let mut h = HeaderMap::new();
        h.append(HOST, HeaderValue::from_static("api.example"));
        h.append(ACCEPT, HeaderValue::from_static("text/html"));
        h.append(ACCEPT, HeaderValue::from_static("application/json"));
        h.append(CONTENT_LENGTH, HeaderValue::from_static(" 12 "));
        h.append(&X_REQUEST_ID, HeaderValue::from_static("first"));
        h.append(&X_REQUEST_ID, HeaderValue::from_static("second"));
        let f = Fields::scan(&h, [&SUBJECT, &ROLES]);
        let size: usize = h.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
        assert_eq!(f.size, size);
        assert_eq!(f.host.as_ref().unwrap(), "api.example");
        assert!(!f.json, "the first Accept decides, as a lookup would");
        assert_eq!(f.content_length, Some(12));
        assert_eq!(f.request_id.as_ref().unwrap(), "first");
        assert!(!f.forwarded_for && !f.forwarded && !f.hop_by_hop && !f.identity);

        h.append(&X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.1"));
        h.append(&FORWARDED, HeaderValue::from_static("for=203.0.113.1"));
        h.append(TE, HeaderValue::from_static("trailers"));
        h.append(&ROLES, HeaderValue::from_static("admin"));
        let f = Fields::scan(&h, [&SUBJECT, &ROLES]);
        assert!(f.forwarded_for && f.forwarded && f.hop_by_hop && f.identity);
        assert!(Fields::scan(&HeaderMap::new(), [&SUBJECT, &ROLES]).json);
    }

    #[test]
    fn client_identity_fields_never_reach_the_upstream() {
        let mut h = HeaderMap::new();
        h.insert(&SUBJECT, HeaderValue::from_static("mallory"));
        h.insert(&ROLES, HeaderValue::from_static("admin"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        let conn = ConnInfo::new("192.0.2.7:4000".parse().unwrap(), false);
        let out = forward(h, "/x", &conn, &HeaderValue::from_static("id"));
        assert!(!out.contains_key(&SUBJECT) && !out.contains_key(&ROLES));
        assert_eq!(out["x-kept"], "1");
    }

    #[test]
    fn a_host_named_in_connection_is_not_forwarded_as_x_forwarded_host() {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("api.example"));
        h.insert(CONNECTION, HeaderValue::from_static("host"));
        let conn = ConnInfo::new("192.0.2.7:4000".parse().unwrap(), false);
        let out = forward(h, "/x", &conn, &HeaderValue::from_static("id"));
        assert!(!out.contains_key(HOST));
        assert!(!out.contains_key(&X_FORWARDED_HOST));
        assert_eq!(out[&FORWARDED], "for=192.0.2.7;proto=http");
    }

    #[test]
    fn hop_by_hop_fields_and_those_connection_names_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn forwarded_headers_append_to_what_came_before() {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("api.example"));
        h.insert(&X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.9"));
        let conn = ConnInfo::new("[::1]:5000".parse().unwrap(), true);
        let id = HeaderValue::from_static("id-1");
        let out = forward(h, "/x", &conn, &id);
        assert_eq!(out[&X_FORWARDED_FOR], "203.0.113.9, ::1");
        assert_eq!(out[&X_FORWARDED_PROTO], "https");
        assert_eq!(
            out[&FORWARDED],
            "for=\"[::1]\";proto=https;host=\"api.example\""
        );
        assert_eq!(out[&X_REQUEST_ID], "id-1");
    }

    #[test]
    fn a_first_hop_starts_the_forwarding_fields() {
        let conn = ConnInfo::new("192.0.2.7:4000".parse().unwrap(), false);
        let id = HeaderValue::from_static("id-2");
        let out = forward(HeaderMap::new(), "/x", &conn, &id);
        assert_eq!(out[&X_FORWARDED_FOR], "192.0.2.7");
        assert_eq!(out[&X_FORWARDED_PROTO], "http");
        assert_eq!(out[&FORWARDED], "for=192.0.2.7;proto=http");
        assert!(!out.contains_key(&X_FORWARDED_HOST));
        // The same connection serves the next request the same way.
        let again = forward(HeaderMap::new(), "/y", &conn, &id);
        assert_eq!(again[&FORWARDED], "for=192.0.2.7;proto=http");
    }
}
