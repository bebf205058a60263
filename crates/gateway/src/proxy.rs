//! The data path: limits, routing, route policies, then the upstream.
//!
//! The order of the checks is the contract's precedence (section 1):
//! request limits, overload, unknown route, retired route, method,
//! maintenance, then the upstream. Errors are typed and answered by
//! `error::rescue`; upstream statuses pass through unchanged.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use std::borrow::Cow;

use candor_contract::Exchange;
use http::header::{CONNECTION, HOST, HeaderMap, HeaderName, HeaderValue, ORIGIN};
use http::{Method, Request, Response, Version};
use http_body::Body as _;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::admission::{Admitted, Head, HostField, admit, admit_external, forward_target};
use crate::attempts::{Attempt, attempts};
use crate::body::LimitedIncoming;
use crate::config::HeaderEdits;
use crate::config::OnStoreError;
use crate::deadline::Progress;
use crate::error::{ErrorContext, GatewayError, X_REQUEST_ID, rescue};
use crate::field_value::shared_value;
use crate::metrics::{LimitLabels, RequestKey, RuleLabels, Tally, method_label};
use crate::monitor::{Observation, RequestBody, Tapped};
use crate::pipeline::cors::CorsAnswer;
use crate::pipeline::request::{
    AddedField, ConnInfo, FieldValue, Forwarding, IdentityFields, Known, RequestCx, RequestFields,
    list_items,
};
use crate::pipeline::response::{self, Repairer, Respond, Value};
use crate::ratelimit::Decision;
use crate::routing::RouteState;
use crate::state::{Runtime, Shared};
use crate::trace::RequestSpan;
use crate::upstream::{Lease, Pool, SendError, Target, UpstreamBody, UpstreamFailure};

/// What the client gets: a gateway-made body or the upstream's, streamed.
pub type ResponseBody = Either<Full<Bytes>, UpstreamBody>;

/// What the access log and metrics learn while a request is handled.
struct Trace {
    route: Option<Arc<str>>,
    /// RateLimit-Policy / RateLimit of a limited route, for the response.
    rate_fields: Vec<(HeaderName, HeaderValue)>,
    upstream: Option<Arc<str>>,
    debug_headers: bool,
    /// A route with a CORS policy, and the client's Origin: the gateway's
    /// own answers get the policy's fields too, so a browser's script can
    /// read them.
    cors: Option<(Arc<RouteState>, Option<HeaderValue>)>,
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
    let tracer = runtime.tracer.as_ref();
    let fields = RequestFields::scan(
        req.headers()
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes(), value)),
        identity_names(&runtime),
        tracer.is_some(),
    )
    .map(HeaderValue::clone);
    let request_id = shared.request_ids.assign(fields.request_id.as_ref());
    let span = tracer.map(|tracer| {
        tracer.request(
            fields.traceparent.as_ref().map(HeaderValue::as_bytes),
            fields.traceparents,
            fields.tracestate.as_ref().map(HeaderValue::as_bytes),
        )
    });
    let json = fields.takes_json();
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
        cors: None,
    };

    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    let cx = RequestCx {
        shared: &shared,
        runtime: &runtime,
        conn: &conn,
        fields: &fields,
        request_id: &request_id,
        span: span.as_deref(),
    };
    let result = route_request(&cx, parts, &mut body, &mut trace).await;
    // Answered without reading the body: read the rest away in the
    // background, so a client still sending it gets the answer, not a reset.
    if let Some(body) = body
        && !body.is_end_stream()
    {
        tokio::spawn(candor_contract::axum::read_away(body));
    }
    // An upstream's response has the request id and the rate-limit
    // fields from its plan (`pipeline::response`), the gateway's own
    // answers from `answer_error`.
    let (mut response, rule, failure) = match result {
        Ok(response) => (response, None, None),
        Err(error) => {
            let cors = trace.cors.as_ref().and_then(|(route, origin)| {
                let policy = route.cors.as_ref()?;
                Some(CorsAnswer {
                    policy,
                    allowed: policy.allow(origin.as_ref().map(HeaderValue::as_bytes)),
                })
            });
            let (response, rule) = answer_error(
                &shared,
                &error,
                AnswerCx {
                    request_id: &request_id,
                    trace_id: span.as_deref().map(RequestSpan::trace_id),
                    rate_fields: &trace.rate_fields,
                    debug_headers: trace.debug_headers,
                    accepts_json: json,
                    cors,
                },
            );
            let failure = error.failure_type().map(|f| f.as_str());
            (response.map(Either::Left), Some(rule), failure)
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
        span,
        failure,
    };
    match response.body_mut() {
        // An upstream's body may still break off: counted when it ends.
        Either::Right(body) => {
            let (key, seconds) = record_head(&shared, &conn, answered);
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

/// What a gateway-made answer carries of its request, as either codec
/// holds it.
pub(crate) struct AnswerCx<'a> {
    pub request_id: &'a HeaderValue,
    pub trace_id: Option<&'a str>,
    /// The route's rate-limit fields, on every answer of a limited route.
    pub rate_fields: &'a [(HeaderName, HeaderValue)],
    pub debug_headers: bool,
    pub accepts_json: bool,
    pub cors: Option<CorsAnswer<'a>>,
}

/// The contract's answer to a gateway-made error, counted by rule.
pub(crate) fn answer_error(
    shared: &Shared,
    error: &GatewayError,
    answer: AnswerCx<'_>,
) -> (Response<Full<Bytes>>, &'static str) {
    let AnswerCx {
        request_id,
        trace_id,
        rate_fields,
        debug_headers,
        accepts_json,
        cors,
    } = answer;
    let rule = error.rule();
    shared
        .metrics
        .gateway_errors
        .get_or_create(&RuleLabels { rule: rule.id })
        .inc();
    let cx = ErrorContext {
        // Checked when assigned: visible ASCII only.
        request_id: request_id.to_str().unwrap_or_default(),
        trace_id,
        debug_headers,
        accepts_json,
    };
    let mut response = rescue(error, cx);
    let headers = response.headers_mut();
    headers.insert(&X_REQUEST_ID, request_id.clone());
    // Every response of a limited route says where the client stands.
    for (name, value) in rate_fields {
        headers.insert(name, value.clone());
    }
    // A preflight's answer has its own CORS fields, or none (refused).
    if let Some(cors) = cors
        && !matches!(
            error,
            GatewayError::Preflight { .. } | GatewayError::PreflightDenied { .. }
        )
    {
        cors.policy.each_actual(cors.allowed, |name, value| {
            headers.append(name.clone(), value.clone());
        });
    }
    (response, rule.id)
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
    /// The request's span, ended with the answer (tracing on).
    pub span: Option<Box<RequestSpan>>,
    /// The failure type of an upstream failure.
    pub failure: Option<&'static str>,
}

/// Counts an answered request and writes its access log line (when the
/// log is on), once its response head is ready: for a response whose body
/// cannot break off after that (the gateway's own).
pub(crate) fn record(shared: &Shared, conn: &ConnInfo, a: Answered<'_>) {
    let (key, seconds) = record_head(shared, conn, a);
    shared.metrics.observe_request(key, seconds);
}

/// Writes the access log line of a request whose response head is ready
/// (when the log is on), and returns what its count takes: its labels and
/// the time until then. An upstream's response is counted when its body
/// ends, as `class="aborted"` if the upstream broke it off.
pub(crate) fn record_head<'a>(
    shared: &Shared,
    conn: &ConnInfo,
    a: Answered<'a>,
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
            request_id: a.request_id.as_bytes(),
            peer: conn.peer,
            method: a.method.as_str(),
            path,
            status: a.status,
            rule: a.rule,
            route: a.route.map(|r| &**r),
            upstream: a.upstream,
            trace_id: a.span.as_deref().map(RequestSpan::trace_id),
            micros: elapsed.as_micros(),
        });
    }
    if let Some(span) = a.span {
        (*span).end(crate::trace::Answer {
            method: a.method.as_str(),
            route: a.route.map(|r| &**r),
            status: a.status,
            rule: a.rule,
            failure: a.failure,
            upstream: a.upstream,
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
async fn route_request(
    cx: &RequestCx<'_, HeaderValue>,
    parts: http::request::Parts,
    body: &mut Option<Incoming>,
    trace: &mut Trace,
) -> Result<Response<ResponseBody>, GatewayError> {
    let (shared, runtime, conn, fields) = (cx.shared, cx.runtime, cx.conn, cx.fields);
    let mut matched = None;
    let head = HyperHead {
        parts: &parts,
        fields,
    };
    let admitted = admit(shared, runtime, &head, conn.peer.ip(), &mut matched);
    if let Some(route) = matched {
        trace.route = Some(route.label.clone());
        if route.cors.is_some() {
            trace.cors = Some((route.clone(), parts.headers.get(ORIGIN).cloned()));
        }
        if let Some(debug) = route.config.debug_headers {
            trace.debug_headers = debug;
        }
    }
    let mut admitted = admitted?;
    // auth_service.*: a route with external auth waits for its answer.
    if admitted.external.is_some() {
        Box::pin(admit_external(
            shared,
            runtime,
            &mut admitted,
            cx.request_id,
            cx.span,
        ))
        .await?;
    }
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
    let outbound = outbound(cx, admitted.pool, parts, body, body_empty, &admitted)?;
    let pool = admitted.pool;
    let respond = Respond {
        request_id: cx.request_id,
        debug_upstream: trace.debug_headers.then_some(&*pool.name),
        deprecation: &route.deprecation_headers,
        extra: &trace.rate_fields,
        head_request: outbound.method == Method::HEAD,
        monitor: outbound.monitor.is_some(),
        repair: Repairer::of(shared, pool, &gw.realm),
        edits: route.config.response_headers.as_ref(),
        cors: admitted.cors,
    };
    let (edited, sent) = exchange(shared, pool, outbound, &respond, cx.span).await?;
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
    fields: &'h RequestFields<HeaderValue>,
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

    fn field(&self, name: &str) -> Option<&[u8]> {
        self.parts.headers.get(name).map(HeaderValue::as_bytes)
    }
}

/// The request body, once (and whether it is empty), unless its declared
/// length is already over the limit (body.too_large). A refused body stays
/// in `slot`, to be read away behind the answer.
fn take_body(
    slot: &mut Option<Incoming>,
    fields: &RequestFields<HeaderValue>,
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
    monitor: Option<Box<Watched>>,
}

/// What the monitor keeps of a request: its fields the rules read, its
/// target, and its body's tap when it judges the body.
type Watched = (HeaderMap, String, Option<Tapped>);

/// Builds the upstream request: early body-size check, forwarding fields,
/// identity fields from the gateway only.
fn outbound(
    cx: &RequestCx<'_, HeaderValue>,
    pool: &Pool,
    parts: http::request::Parts,
    mut body: crate::upstream::UpstreamRequestBody,
    body_empty: bool,
    admitted: &Admitted<'_, '_>,
) -> Result<Outbound, GatewayError> {
    let runtime = cx.runtime;
    let identity = admitted.identity.as_ref();
    let path_and_query = match (&admitted.forward_path, parts.uri.path_and_query()) {
        (None, Some(pq)) => pq.clone(),
        (None, None) => http::uri::PathAndQuery::from_static("/"),
        // Never a path the gateway did not route: the normal one (as the
        // route rewrites it), with the query as it came.
        (Some(path), pq) => {
            let target = forward_target(path, pq.map_or("", http::uri::PathAndQuery::as_str));
            http::uri::PathAndQuery::try_from(target).map_err(|_| GatewayError::PathUnsafe {
                why: "cannot be forwarded once normalised",
            })?
        }
    };
    let roles = identity.map(|id| id.roles.join(","));
    let identity = identity
        .zip(roles.as_deref())
        .map(|(id, roles)| IdentityFields {
            names: [&runtime.auth.subject_header, &runtime.auth.roles_header],
            subject: id.subject.as_bytes(),
            roles: roles.as_bytes(),
        });
    let added = Added {
        identity,
        prefix: admitted.prefix,
        edits: admitted.route.config.request_headers.as_ref(),
        span: cx.span,
    };
    let headers = forward_headers(
        parts.headers,
        &parts.uri,
        cx.conn,
        cx.request_id,
        cx.fields,
        identity_names(runtime),
        added,
    );
    let monitor = pool.config.monitor.then(|| {
        let fields = snapshot(&headers, candor_contract::REQUEST_FIELDS);
        // The monitor's tap on a streamed body, when it judges it (a body
        // validated here is JSON that parsed: nothing to judge).
        let declared = if body_empty {
            Some(0)
        } else {
            cx.fields.content_length
        };
        let tapped = match &mut body {
            Either::Left(streamed) => {
                RequestBody::tap(true, &fields, declared, pool.config.monitor_body_bytes).map(
                    |(tap, tapped)| {
                        streamed.tap(tap);
                        tapped
                    },
                )
            }
            Either::Right(_) => None,
        };
        Box::new((fields, path_and_query.as_str().to_owned(), tapped))
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
    monitor: Option<Box<Watched>>,
}

/// Sends the request to a target of `pool`, with the response-head timer,
/// one retry on another target after a connect failure (body-less
/// idempotent requests only), and every failure counted and classified.
async fn exchange(
    shared: &Shared,
    pool: &Arc<Pool>,
    out: Outbound,
    respond: &Respond<'_>,
    span: Option<&RequestSpan>,
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
    let trace = span.map(|span| (span, &method));
    let edited = attempts(
        &shared.metrics,
        pool,
        may_retry,
        &mut attempt,
        progress,
        trace,
    )
    .await?;
    Ok((edited, Sent { method, monitor }))
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

    fn status(sent: &Edited) -> u16 {
        sent.response.status().as_u16()
    }

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
        let (req_headers, url, tapped) = *request;
        let mut exchange = Exchange::default();
        exchange.request.method = sent.method.as_str().to_owned();
        exchange.request.url = url;
        exchange.request.headers = req_headers;
        exchange.response.status = parts.status.as_u16();
        exchange.response.headers = snapshot.unwrap_or_default();
        Box::new(
            Observation::new(
                pool.name.clone(),
                exchange,
                pool.config.monitor_body_bytes,
                shared.metrics.clone(),
            )
            .with_request_body(tapped),
        )
    });
    let body = UpstreamBody::new(body, observation, shared.metrics.clone(), lease);
    Response::from_parts(parts, Either::Right(body))
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

/// The names of the fields the gateway sets from a checked identity.
pub(crate) fn identity_names(runtime: &Runtime) -> [&[u8]; 2] {
    [
        runtime.auth.subject_header.as_str().as_bytes(),
        runtime.auth.roles_header.as_str().as_bytes(),
    ]
}

/// What a request's route adds on its way upstream, besides the fields
/// every request gets.
#[derive(Default)]
pub(crate) struct Added<'p> {
    pub identity: Option<IdentityFields<'p>>,
    /// The prefix the route stripped.
    pub prefix: Option<&'p HeaderValue>,
    /// The route's request field edits.
    pub edits: Option<&'p HeaderEdits>,
    /// The request's span, when it is traced.
    pub span: Option<&'p RequestSpan>,
}

/// The request headers for the upstream: what the pipeline drops removed
/// (hop-by-hop fields, those `Connection` names, the gateway's own, those
/// the route sets or removes), the client's Host kept, and the pipeline's
/// additions set (the route's appended).
pub(crate) fn forward_headers(
    mut headers: HeaderMap,
    uri: &http::Uri,
    conn: &ConnInfo,
    request_id: &HeaderValue,
    fields: &RequestFields<HeaderValue>,
    identity_names: [&[u8]; 2],
    added: Added<'_>,
) -> HeaderMap {
    let tracing = added.span.is_some();
    // Fields `Connection` names go too (RFC 9110 section 7.6.1), and what
    // the scan saw of them no longer counts: the rest is read again.
    let rescanned;
    let fields = if fields.connection_names_other || fields.connection_names_host {
        remove_connection_named(&mut headers);
        rescanned = RequestFields::scan(
            headers.iter().map(|(n, v)| (n.as_str().as_bytes(), v)),
            identity_names,
            tracing,
        )
        .map(HeaderValue::clone);
        &rescanned
    } else {
        fields
    };
    if fields.dropped {
        let gone: Vec<HeaderName> = headers
            .keys()
            .filter(|n| {
                !Known::of(n.as_str().as_bytes(), identity_names).forwarded_as_sent(tracing)
            })
            .cloned()
            .collect();
        for name in gone {
            headers.remove(name);
        }
    }
    if let Some(edits) = added.edits {
        for name in edits.set.iter().map(|(n, _)| n).chain(&edits.remove) {
            headers.remove(name);
        }
    }
    // An HTTP/2 request names its authority in the target, not in Host.
    let mut host = fields.host.clone();
    if host.is_none()
        && let Some(authority) = uri.authority()
        && let Ok(v) = HeaderValue::from_str(authority.as_str())
    {
        headers.insert(HOST, v.clone());
        host = Some(v);
    }
    headers.reserve(8);
    let forwarding = Forwarding {
        conn,
        host: host.as_ref(),
        prior_for: fields.prior_for.as_ref().map(HeaderValue::as_bytes),
        prior_forwarded: fields.prior_forwarded.as_ref().map(HeaderValue::as_bytes),
        request_id,
        identity: added.identity,
        prefix: added.prefix,
        edits: added.edits,
        span: added.span,
    };
    forwarding.each(|name, value| {
        let value = match value {
            FieldValue::Held(v) | FieldValue::Host(v) => Some(v.clone()),
            FieldValue::Static(s) => Some(HeaderValue::from_static(s)),
            FieldValue::Joined(parts) => shared_value(parts),
        };
        match (value, name) {
            (Some(value), AddedField::Route(name)) => {
                headers.append(name.clone(), value);
            }
            (Some(value), name) => {
                headers.insert(name.name().clone(), value);
            }
            (None, _) => {}
        }
    });
    headers
}

/// Removes the fields `Connection` names.
fn remove_connection_named(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| list_items(v.as_bytes()))
        .filter_map(|name| HeaderName::from_bytes(name).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::request::{
        FORWARDED, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO,
    };
    use http::header::{ACCEPT, RETRY_AFTER, TE, WWW_AUTHENTICATE};

    static SUBJECT: HeaderName = HeaderName::from_static("x-subject");
    static ROLES: HeaderName = HeaderName::from_static("x-roles");

    /// `forward_headers` as the data path calls it, after the scan.
    fn forward(h: HeaderMap, uri: &str, conn: &ConnInfo, id: &HeaderValue) -> HeaderMap {
        let names = [SUBJECT.as_str().as_bytes(), ROLES.as_str().as_bytes()];
        let fields = RequestFields::scan(
            h.iter().map(|(n, v)| (n.as_str().as_bytes(), v)),
            names,
            false,
        )
        .map(HeaderValue::clone);
        forward_headers(
            h,
            &uri.parse().unwrap(),
            conn,
            id,
            &fields,
            names,
            Added::default(),
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
        let conn = ConnInfo::new("192.0.2.7:4000".parse().unwrap(), false);
        let out = forward(h, "/x", &conn, &HeaderValue::from_static("id"));
        for gone in ["connection", "x-secret", "keep-alive", "te"] {
            assert!(!out.contains_key(gone), "{gone}");
        }
        assert!(out.contains_key("x-kept"));
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
