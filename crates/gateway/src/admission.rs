//! Admission: the contract's checks before the upstream, in its order,
//! written once for both data paths over what either codec read of a head.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use candor_contract::{Authority, HostError, PathOptions, normalize_path};
use http::{HeaderMap, HeaderValue, Method, Version};

use crate::access::{authenticate, authorize};
use crate::auth::Identity;
use crate::config::{Action, RouteAuth};
use crate::error::GatewayError;
use crate::pipeline::cors::{CorsAnswer, Denied};
use crate::ratelimit::Limiter;
use crate::routing::{PathEntry, RouteState};
use crate::state::{InFlight, Runtime, Shared};
use crate::upstream::Pool;

/// What admission reads of a request head, from either codec.
pub(crate) trait Head {
    fn method(&self) -> &Method;
    fn version(&self) -> Version;
    /// The request-target's length as sent (`request.uri_too_long`).
    fn target_len(&self) -> usize;
    /// The header section's size: names, values, ": " and CRLF.
    fn header_bytes(&self) -> usize;
    /// The path as sent, before normalisation.
    fn path(&self) -> &str;
    /// The Host fields: how many came, the first, and whether `Connection`
    /// names Host.
    fn host(&self) -> HostField<'_>;
    /// An HTTP/2 request's `:authority`, which stands in for Host.
    fn authority(&self) -> Option<&str>;
    /// A transfer coding other than one `chunked`.
    fn unsupported_coding(&self) -> Option<&[u8]>;
    /// The fields `wanted` names, as a header map (credentials and a rate
    /// limit's key header); `None` when one is not a valid field.
    fn fields(&self, wanted: &dyn Fn(&str) -> bool) -> Option<Cow<'_, HeaderMap>>;
    /// The first field named `name` (lower case), read only on routes
    /// with a CORS policy.
    fn field(&self, name: &str) -> Option<&[u8]>;
}

/// The Host fields of a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostField<'h> {
    pub count: u8,
    pub first: Option<&'h [u8]>,
    pub named_in_connection: bool,
}

/// A request that passed every check before the upstream that does not
/// wait: its route and upstream, who sent it, its rate-limit key, the path
/// it is routed and forwarded on, and its place among the requests in
/// flight.
pub(crate) struct Admitted<'r, 's> {
    pub route: &'r Arc<RouteState>,
    pub pool: &'r Arc<Pool>,
    pub identity: Option<Identity>,
    /// The route's rate limit, and the key the request counts under.
    pub limit: Option<(&'r Limiter, String)>,
    /// The path forwarded, when it differs from the one sent: the
    /// normalised one, rewritten by the route's `strip_prefix` and
    /// `add_prefix`.
    pub forward_path: Option<String>,
    /// The prefix the route stripped, for `X-Forwarded-Prefix`.
    pub prefix: Option<&'r HeaderValue>,
    /// The route's CORS policy and this request's origin's verdict.
    pub cors: Option<CorsAnswer<'r>>,
    /// On a route with `auth = "external"`: what the auth service is to
    /// be asked, by [`admit_external`].
    pub external: Option<Box<Pending<'r>>>,
    _in_flight: InFlight<'s>,
}

/// The checks of an external-auth route that wait for the auth service:
/// its question, and what authorization and the rate limit then need.
pub(crate) struct Pending<'r> {
    fields: HeaderMap,
    path: String,
    peer: IpAddr,
    limiter: Option<&'r Limiter>,
}

/// The checks in the contract's precedence (section 1), up to the ones
/// that wait: request.* (limits, method, coding, Host, path), overload,
/// route, retired, method, maintenance, authentication, authorization.
/// `matched` learns the route as soon as one is found, for the log and
/// the route's debug headers, whatever the outcome.
pub(crate) fn admit<'r, 's>(
    shared: &'s Shared,
    runtime: &'r Runtime,
    head: &impl Head,
    peer: IpAddr,
    matched: &mut Option<&'r Arc<RouteState>>,
) -> Result<Admitted<'r, 's>, GatewayError> {
    let gw = &runtime.config.gateway;

    // request.*
    let target_len = head.target_len();
    if target_len > gw.max_uri_bytes {
        return Err(GatewayError::UriTooLong {
            len: target_len,
            limit: gw.max_uri_bytes,
        });
    }
    let header_bytes = head.header_bytes();
    if header_bytes > gw.max_header_bytes {
        return Err(GatewayError::HeadersTooLarge {
            len: header_bytes,
            limit: gw.max_header_bytes,
        });
    }
    check_line_and_host(head)?;
    let paths = PathOptions {
        keep_encoded_slashes: gw.keep_encoded_slashes,
    };
    let path = normalize_path(head.path(), paths)
        .map_err(|e| GatewayError::PathUnsafe { why: e.why() })?;

    // gateway.overloaded: shed before any work is spent.
    let in_flight = shared.admit(gw.max_concurrent_requests)?;

    // route.unknown, route.retired, route.method
    let entry = runtime
        .routes
        .find(&path)
        .ok_or_else(|| GatewayError::RouteUnknown {
            path: path.clone().into_owned(),
        })?;
    if let Some(retired) = entry.retired() {
        *matched = Some(retired);
        let successor = match &retired.config.action {
            Action::Retired { successor } => successor.clone(),
            Action::Proxy { .. } => None,
        };
        return Err(GatewayError::Retired { successor });
    }
    let method = head.method();
    // cors.*: a preflight asks about a method (it is not that method) and
    // carries no credentials, so it is answered here, ahead of the
    // method, maintenance and credential checks, without the upstream.
    if entry.cors && *method == Method::OPTIONS {
        preflight(entry, head, matched)?;
    }
    let route = entry
        .route_for(method)
        .ok_or_else(|| GatewayError::MethodNotAllowed {
            method: method.to_string(),
            allow: entry.allow.clone(),
        })?;
    *matched = Some(route);

    // gateway.maintenance (the route's window first, then the gateway's);
    // the clock is read only where a window is configured.
    for window in [route.config.maintenance, gw.maintenance]
        .into_iter()
        .flatten()
    {
        let now = SystemTime::now();
        if window.is_open(now) {
            let retry_after = window.until.duration_since(now).unwrap_or_default();
            return Err(GatewayError::Maintenance { retry_after });
        }
    }

    // auth.*, then authz.*, on the fields they read (and the rate limit's
    // key header), gathered once.
    let limiter = route
        .config
        .rate_limit
        .as_ref()
        .and_then(|name| runtime.limiters.get(name))
        .map(|l| &**l);
    let authenticates = route.config.auth != RouteAuth::None;
    let external = match route.config.auth {
        RouteAuth::External => {
            Some(
                runtime
                    .external
                    .as_ref()
                    .ok_or_else(|| GatewayError::Internal {
                        detail: format!(
                            "route {} asks an auth service none configures",
                            route.label
                        ),
                    })?,
            )
        }
        _ => None,
    };
    let key_header = limiter.and_then(Limiter::key_header);
    let fields = if authenticates || key_header.is_some() {
        let wanted = |name: &str| {
            (authenticates
                && match external {
                    Some(check) => check.reads(name),
                    None => runtime.auth.reads(name),
                })
                || key_header.is_some_and(|h| name.eq_ignore_ascii_case(h.as_str()))
        };
        head.fields(&wanted).ok_or_else(|| GatewayError::Internal {
            detail: "a request field is not a valid field value".to_owned(),
        })?
    } else {
        Cow::Owned(HeaderMap::new())
    };
    let Some(pool) = &route.pool else {
        return Err(GatewayError::Internal {
            detail: format!("route {} has no upstream", route.label),
        });
    };
    let cors = route.cors.as_ref().map(|policy| CorsAnswer {
        policy,
        allowed: policy.allow(head.field("origin")),
    });
    // The route rewrites the normalised path, never the one sent.
    let forward_path = match route.rewrite(&path) {
        Some(rewritten) => Some(rewritten),
        None => match &path {
            Cow::Borrowed(_) => None,
            Cow::Owned(path) => Some(path.clone()),
        },
    };
    let prefix = route.prefix.as_ref();
    // The auth service is asked by `admit_external`, which both data
    // paths await: the rest of authentication, authorization and the rate
    // limit's key wait for its answer.
    if external.is_some() {
        return Ok(Admitted {
            route,
            pool,
            identity: None,
            limit: None,
            external: Some(Box::new(Pending {
                fields: fields.into_owned(),
                path: path.into_owned(),
                peer,
                limiter,
            })),
            forward_path,
            prefix,
            cors,
            _in_flight: in_flight,
        });
    }
    let identity = authenticate(runtime, route, &fields)?;
    authorize(runtime, route, identity.as_ref(), &path)?;
    let limit = limiter.map(|l| (l, l.key(identity.as_ref(), peer, &fields)));
    Ok(Admitted {
        route,
        pool,
        identity,
        limit,
        external: None,
        forward_path,
        prefix,
        cors,
        _in_flight: in_flight,
    })
}

/// The auth service's part of admission, for a request [`admit`] left
/// pending: its decision (auth.*, auth_service.*), then the route's roles
/// (authz.*) and the rate limit's key, as `admit` does for local checks.
/// One implementation, awaited by both data paths.
pub(crate) async fn admit_external(
    shared: &Shared,
    runtime: &Runtime,
    admitted: &mut Admitted<'_, '_>,
    request_id: &http::HeaderValue,
    span: Option<&crate::trace::RequestSpan>,
) -> Result<(), GatewayError> {
    let Some(pending) = admitted.external.take() else {
        return Ok(());
    };
    let Some(check) = &runtime.external else {
        return Err(GatewayError::Internal {
            detail: "no auth service is configured".to_owned(),
        });
    };
    let identity = check
        .check(&shared.metrics, &pending.fields, request_id, span)
        .await?;
    authorize(runtime, admitted.route, Some(&identity), &pending.path)?;
    admitted.limit = pending
        .limiter
        .map(|l| (l, l.key(Some(&identity), pending.peer, &pending.fields)));
    admitted.identity = Some(identity);
    Ok(())
}

/// A CORS preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`) on a path some route of which has a
/// CORS policy: answered by the policy of the route serving the method
/// asked for; refused when there is none, or it does not admit the origin,
/// the method or a field asked for. Any other `OPTIONS` goes on.
fn preflight<'r>(
    entry: &'r PathEntry,
    head: &impl Head,
    matched: &mut Option<&'r Arc<RouteState>>,
) -> Result<(), GatewayError> {
    let (Some(origin), Some(asked)) = (
        head.field("origin"),
        head.field("access-control-request-method"),
    ) else {
        return Ok(());
    };
    let route = Method::from_bytes(asked)
        .ok()
        .and_then(|m| entry.route_for(&m))
        .or_else(|| entry.routes.iter().find(|r| r.cors.is_some()));
    *matched = route;
    let Some(policy) = route.and_then(|r| r.cors.as_ref()) else {
        return Err(GatewayError::PreflightDenied {
            why: Denied::Method.why(),
        });
    };
    match policy.preflight(origin, asked, head.field("access-control-request-headers")) {
        Ok(fields) => Err(GatewayError::Preflight { fields }),
        Err(denied) => Err(GatewayError::PreflightDenied { why: denied.why() }),
    }
}

/// The request line and Host: `CONNECT` is never forwarded, a transfer
/// coding other than one `chunked` is not implemented, and Host is one
/// valid authority (RFC 9112 section 3.2; an HTTP/2 request may carry
/// `:authority` instead) that `Connection` does not name.
fn check_line_and_host(head: &impl Head) -> Result<(), GatewayError> {
    if *head.method() == Method::CONNECT {
        return Err(GatewayError::MethodUnsupported {
            method: head.method().to_string(),
        });
    }
    if let Some(coding) = head.unsupported_coding() {
        return Err(GatewayError::CodingUnsupported {
            coding: String::from_utf8_lossy(coding).into_owned(),
        });
    }
    let host = head.host();
    let checked = match (host.count, host.first) {
        (1, Some(value)) => Authority::parse(value).map(drop),
        (0, _) if head.version() >= Version::HTTP_2 => match head.authority() {
            Some(authority) => Authority::parse(authority.as_bytes()).map(drop),
            None => Err(HostError::Missing),
        },
        (0, _) => Err(HostError::Missing),
        _ => Err(HostError::Repeated),
    };
    let checked = match host.named_in_connection {
        true => checked.and(Err(HostError::NamedInConnection)),
        false => checked,
    };
    checked.map_err(|e| GatewayError::BadHost { why: e.why() })
}

/// The target forwarded for a path that normalisation changed: the normal
/// path, and the query as it came.
pub(crate) fn forward_target(normal: &str, target: &str) -> String {
    match target.split_once('?') {
        Some((_, query)) => format!("{normal}?{query}"),
        None => normal.to_owned(),
    }
}
