//! `[[routes]]`: path, methods, access, schema, and the cross-route check
//! that every path fits the router next to the others.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

use http::Method;
use toml::Spanned;

use crate::config::file::{FileCors, FileHeaderEdits, FileRoute, FileRouteAuth};
use crate::config::model::{
    Action, Auth, Cors, HeaderEdits, Route, RouteAuth, SchemaDoc, Upstream,
};

use super::error::ConfigError;
use super::notices::{deprecation, link, maintenance};
use super::route_edits::{Side, cors, header_edits, path_prefix, route_methods};
use super::source::Source;
use super::values::{read_text, role_names};

/// A route with what the cross-route checks need.
pub(super) struct CheckedRoute {
    pub(super) rate_limit: Option<Spanned<String>>,
    pub(super) route: Route,
    pub(super) key: String,
    pub(super) path_span: Range<usize>,
    pub(super) line: usize,
}

pub(super) fn build_route(
    index: usize,
    route: Spanned<FileRoute>,
    upstreams: &BTreeMap<String, Arc<Upstream>>,
    auth: &Auth,
    src: &Source<'_>,
) -> Result<CheckedRoute, ConfigError> {
    let key = format!("routes[{index}]");
    let span = route.span();
    let line = src.line(&span);
    let r = route.into_inner();

    let path = r.path.get_ref();
    let path_problem = if !path.starts_with('/') {
        Some("must start with '/'")
    } else if path.contains(['?', '#']) {
        Some("a route path has no query or fragment")
    } else if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("must not contain spaces or control characters")
    } else {
        None
    };
    if let Some(why) = path_problem {
        return Err(src.error(
            r.path.span(),
            &format!("{key}.path"),
            format!("invalid path {path:?}: {why}"),
        ));
    }
    // Requests are routed on their normalised path: a pattern that is not
    // itself normal could never match.
    let relaxed = candor_contract::PathOptions {
        keep_encoded_slashes: true,
    };
    match candor_contract::normalize_path(path, relaxed) {
        Ok(normal) if normal == path.as_str() => {}
        outcome => {
            let why = match outcome {
                Ok(normal) => format!(
                    "requests are routed on their normalised path, which this pattern never is; write {normal:?}"
                ),
                Err(e) => format!("{e}"),
            };
            return Err(src.error(
                r.path.span(),
                &format!("{key}.path"),
                format!("invalid path {path:?}: {why}"),
            ));
        }
    }

    let action = match (r.upstream, r.retired) {
        (Some(upstream), None) => {
            if !upstreams.contains_key(upstream.get_ref()) {
                let defined = upstreams.keys().map(String::as_str).collect::<Vec<_>>();
                let defined = if defined.is_empty() {
                    "no upstreams are defined".to_owned()
                } else {
                    format!("defined: {}", defined.join(", "))
                };
                return Err(src.error(
                    upstream.span(),
                    &format!("{key}.upstream"),
                    format!("unknown upstream {:?} ({defined})", upstream.get_ref()),
                ));
            }
            Action::Proxy {
                upstream: upstream.into_inner(),
            }
        }
        (None, Some(retired)) => {
            let successor = match retired.into_inner().successor {
                Some(successor) => Some(link(successor, &format!("{key}.retired.successor"), src)?),
                None => None,
            };
            Action::Retired { successor }
        }
        (Some(_), Some(retired)) => {
            return Err(src.error(
                retired.span(),
                &format!("{key}.retired"),
                "a route either proxies to an `upstream` or is `retired`, not both",
            ));
        }
        (None, None) => {
            return Err(src.error(
                span,
                &key,
                "a route needs `upstream` (to proxy) or `retired` (to answer 410 Gone)",
            ));
        }
    };

    let methods = match r.methods {
        Some(methods) => Some(route_methods(methods, &format!("{key}.methods"), src)?),
        None => None,
    };

    let deprecated = match r.deprecated {
        Some(deprecated) if matches!(action, Action::Retired { .. }) => {
            return Err(src.error(
                deprecated.span(),
                &format!("{key}.deprecated"),
                "a retired route is gone, not deprecated: use one or the other",
            ));
        }
        Some(deprecated) => Some(deprecation(
            deprecated.into_inner(),
            &format!("{key}.deprecated"),
            src,
        )?),
        None => None,
    };

    let maintenance = r
        .maintenance
        .map(|m| maintenance(m, &format!("{key}.maintenance"), src))
        .transpose()?;

    let request_schema = match &r.request_schema {
        Some(value) => Some(request_schema(value, &action, &key, src)?),
        None => None,
    };

    let edits = route_edits(
        RouteEdits {
            strip_prefix: r.strip_prefix,
            add_prefix: r.add_prefix,
            request_headers: r.request_headers,
            response_headers: r.response_headers,
            cors: r.cors,
        },
        r.path.get_ref(),
        &action,
        methods.as_deref(),
        auth,
        &key,
        src,
    )?;

    let access = RouteAccess {
        auth: r.auth,
        roles: r.roles,
        conceal: r.conceal,
    };
    let (route_auth, roles, conceal) = route_access(access, &action, &key, auth, src)?;

    Ok(CheckedRoute {
        route: Route {
            path: r.path.get_ref().clone(),
            methods,
            action,
            deprecated,
            maintenance,
            debug_headers: r.debug_headers,
            auth: route_auth,
            roles,
            conceal,
            request_schema,
            rate_limit: r.rate_limit.as_ref().map(|n| n.get_ref().clone()),
            strip_prefix: edits.strip_prefix,
            add_prefix: edits.add_prefix,
            request_headers: edits.request_headers,
            response_headers: edits.response_headers,
            cors: edits.cors,
            line: Some(line),
        },
        rate_limit: r.rate_limit,
        key,
        path_span: r.path.span(),
        line,
    })
}

/// A route's edits, as written.
struct RouteEdits {
    strip_prefix: Option<Spanned<String>>,
    add_prefix: Option<Spanned<String>>,
    request_headers: Option<Spanned<FileHeaderEdits>>,
    response_headers: Option<Spanned<FileHeaderEdits>>,
    cors: Option<Spanned<FileCors>>,
}

/// A route's edits, checked.
struct CheckedEdits {
    strip_prefix: Option<String>,
    add_prefix: Option<String>,
    request_headers: Option<HeaderEdits>,
    response_headers: Option<HeaderEdits>,
    cors: Option<Cors>,
}

/// What a proxy route changes on the way: the path's prefix, fields on
/// either side, CORS. A retired route forwards nothing, so has none.
fn route_edits(
    e: RouteEdits,
    pattern: &str,
    action: &Action,
    methods: Option<&[Method]>,
    auth: &Auth,
    key: &str,
    src: &Source<'_>,
) -> Result<CheckedEdits, ConfigError> {
    if matches!(action, Action::Retired { .. }) {
        let written = [
            e.strip_prefix.as_ref().map(|v| (v.span(), "strip_prefix")),
            e.add_prefix.as_ref().map(|v| (v.span(), "add_prefix")),
            e.request_headers
                .as_ref()
                .map(|v| (v.span(), "request_headers")),
            e.response_headers
                .as_ref()
                .map(|v| (v.span(), "response_headers")),
            e.cors.as_ref().map(|v| (v.span(), "cors")),
        ];
        if let Some((span, name)) = written.into_iter().flatten().min_by_key(|(s, _)| s.start) {
            return Err(src.error(
                span,
                &format!("{key}.{name}"),
                "a retired route answers 410 and forwards nothing",
            ));
        }
    }
    let strip_prefix = e
        .strip_prefix
        .map(|v| path_prefix(&v, Some(pattern), &format!("{key}.strip_prefix"), src))
        .transpose()?;
    let add_prefix = e
        .add_prefix
        .map(|v| path_prefix(&v, None, &format!("{key}.add_prefix"), src))
        .transpose()?;
    let has_cors = e.cors.is_some();
    let request_headers = e
        .request_headers
        .map(|v| {
            let k = format!("{key}.request_headers");
            header_edits(v, Side::Request, auth, has_cors, &k, src)
        })
        .transpose()?;
    let response_headers = e
        .response_headers
        .map(|v| {
            let k = format!("{key}.response_headers");
            header_edits(v, Side::Response, auth, has_cors, &k, src)
        })
        .transpose()?;
    let cors = e
        .cors
        .map(|v| cors(v, methods, &format!("{key}.cors"), src))
        .transpose()?;
    Ok(CheckedEdits {
        strip_prefix,
        add_prefix,
        request_headers,
        response_headers,
        cors,
    })
}

/// A route's `request_schema`: read, parsed and compiled now, so that a
/// broken schema is refused with the configuration instead of at a request.
fn request_schema(
    value: &Spanned<String>,
    action: &Action,
    key: &str,
    src: &Source<'_>,
) -> Result<SchemaDoc, ConfigError> {
    let key = format!("{key}.request_schema");
    if matches!(action, Action::Retired { .. }) {
        return Err(src.error(
            value.span(),
            &key,
            "a retired route answers 410 to everyone; it has no body to validate",
        ));
    }
    let (path, text) = read_text(value, &key, src)?;
    let json = serde_json::from_str(&text).map_err(|e| {
        let shown = format!("{:?}", path.display().to_string());
        src.error(value.span(), &key, format!("{shown} is not JSON: {e}"))
    })?;
    let doc = SchemaDoc { path, json };
    crate::validate::Schema::compile(&doc.path, &doc.json)
        .map_err(|why| src.error(value.span(), &key, why))?;
    Ok(doc)
}

/// A route's `auth`, `roles` and `conceal`, as written.
struct RouteAccess {
    auth: Option<Spanned<FileRouteAuth>>,
    roles: Option<Spanned<Vec<Spanned<String>>>>,
    conceal: Option<Spanned<bool>>,
}

/// Who may use a route: the credentials it accepts (which `[auth]` must
/// configure), the roles it needs, and whether a denial hides it.
fn route_access(
    access: RouteAccess,
    action: &Action,
    key: &str,
    auth: &Auth,
    src: &Source<'_>,
) -> Result<(RouteAuth, Vec<String>, bool), ConfigError> {
    if matches!(action, Action::Retired { .. }) {
        let written = [
            access.auth.as_ref().map(|v| (v.span(), "auth")),
            access.roles.as_ref().map(|v| (v.span(), "roles")),
            access.conceal.as_ref().map(|v| (v.span(), "conceal")),
        ];
        if let Some((span, name)) = written.into_iter().flatten().min_by_key(|(s, _)| s.start) {
            return Err(src.error(
                span,
                &format!("{key}.{name}"),
                "a retired route answers 410 to everyone",
            ));
        }
    }

    let method = match access.auth.as_ref().map(|v| *v.get_ref()) {
        None | Some(FileRouteAuth::None) => RouteAuth::None,
        Some(FileRouteAuth::Jwt) => RouteAuth::Jwt,
        Some(FileRouteAuth::ApiKey) => RouteAuth::ApiKey,
        Some(FileRouteAuth::Any) => RouteAuth::Any,
        Some(FileRouteAuth::External) => RouteAuth::External,
    };
    let (jwt, api_keys) = (auth.jwt.is_some(), auth.api_keys.is_some());
    let missing = match method {
        RouteAuth::Jwt if !jwt => Some(("jwt", "an [auth.jwt] table")),
        RouteAuth::ApiKey if !api_keys => Some(("api_key", "an [auth.api_keys] table")),
        RouteAuth::Any if !(jwt && api_keys) => {
            Some(("any", "both [auth.jwt] and [auth.api_keys]"))
        }
        RouteAuth::External if auth.external.is_none() => {
            Some(("external", "an [auth.external] table"))
        }
        _ => None,
    };
    if let (Some((name, needed)), Some(value)) = (missing, &access.auth) {
        return Err(src.error(
            value.span(),
            &format!("{key}.auth"),
            format!("auth = \"{name}\" needs {needed}"),
        ));
    }

    let roles = match access.roles {
        None => Vec::new(),
        Some(list) => {
            let roles_key = format!("{key}.roles");
            if method == RouteAuth::None {
                return Err(src.error(
                    list.span(),
                    &roles_key,
                    "roles need an auth method: set `auth` to \"jwt\", \"api_key\", \"any\" or \"external\"",
                ));
            }
            if list.get_ref().is_empty() {
                return Err(src.error(
                    list.span(),
                    &roles_key,
                    "lists no role; leave `roles` out to admit every authenticated client",
                ));
            }
            role_names(list.into_inner(), &roles_key, src)?
        }
    };

    let conceal = match access.conceal {
        Some(value) if *value.get_ref() && roles.is_empty() => {
            return Err(src.error(
                value.span(),
                &format!("{key}.conceal"),
                "conceal hides the route from clients that lack its roles; it needs `roles`",
            ));
        }
        Some(value) => *value.get_ref(),
        None => false,
    };
    Ok((method, roles, conceal))
}

/// Two routes on one path are one route split by method; otherwise every
/// path must be accepted by the router next to the others.
pub(super) fn check_routing(routes: &[CheckedRoute], src: &Source<'_>) -> Result<(), ConfigError> {
    let mut router = matchit::Router::new();
    let mut by_path: HashMap<&str, Vec<&CheckedRoute>> = HashMap::new();
    for (i, checked) in routes.iter().enumerate() {
        let path = checked.route.path.as_str();
        let path_key = format!("{}.path", checked.key);
        if let Some(earlier) = by_path.get_mut(path) {
            for other in earlier.iter() {
                let clash = match (&other.route.methods, &checked.route.methods) {
                    (Some(theirs), Some(ours)) => ours
                        .iter()
                        .find(|m| theirs.contains(m))
                        .map(|m| format!("both serve {m}")),
                    _ => Some("both must list `methods`, and disjoint ones".to_owned()),
                };
                if let Some(clash) = clash {
                    return Err(src.error(
                        checked.path_span.clone(),
                        &path_key,
                        format!(
                            "{path:?} is also routed by {} at line {}: {clash}",
                            other.key, other.line
                        ),
                    ));
                }
            }
            earlier.push(checked);
            continue;
        }
        if let Err(error) = router.insert(path, i) {
            let mut message = format!("rejected by the router: {error}");
            if let matchit::InsertError::Conflict { with } = &error
                && let Some(other) = routes.iter().find(|r| r.route.path == *with)
            {
                message.push_str(&format!(" ({} at line {})", other.key, other.line));
            }
            return Err(src.error(checked.path_span.clone(), &path_key, message));
        }
        by_path.insert(path, vec![checked]);
    }
    Ok(())
}
