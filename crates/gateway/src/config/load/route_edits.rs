//! A route's edits of what passes through it: the path's prefix, fields
//! set, added and removed on either side, and its CORS policy.

use std::collections::BTreeMap;
use std::time::Duration;

use candor_contract::fields::HOP_BY_HOP;
use http::{HeaderName, HeaderValue, Method};
use toml::Spanned;

use crate::config::file::{FileCors, FileHeaderEdits};
use crate::config::model::{Auth, Cors, HeaderEdits};

use super::error::ConfigError;
use super::source::Source;
use super::values::{Zero, duration};

/// `strip_prefix` or `add_prefix`: a normal path of whole segments,
/// without a trailing slash or a pattern. `strip_prefix` must also be the
/// start of the route's own pattern (at a segment's end), so every path
/// the route matches starts with it.
pub(super) fn path_prefix(
    value: &Spanned<String>,
    pattern: Option<&str>,
    key: &str,
    src: &Source<'_>,
) -> Result<String, ConfigError> {
    let prefix = value.get_ref();
    let relaxed = candor_contract::PathOptions {
        keep_encoded_slashes: true,
    };
    let problem = if !prefix.starts_with('/') || prefix.len() < 2 {
        Some("must start with '/' and name at least one segment".to_owned())
    } else if prefix.ends_with('/') {
        Some(format!(
            "write it without the trailing slash: {:?}",
            prefix.trim_end_matches('/')
        ))
    } else if prefix.contains(['{', '}', '?', '#']) {
        Some("a prefix is a plain path: no pattern, query or fragment".to_owned())
    } else if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("must not contain spaces or control characters".to_owned())
    } else if http::uri::PathAndQuery::try_from(prefix.as_str()).is_err() {
        Some("is not a valid path".to_owned())
    } else {
        match candor_contract::normalize_path(prefix, relaxed) {
            Ok(normal) if normal == prefix.as_str() => None,
            Ok(normal) => Some(format!("is not a normal path; write {normal:?}")),
            Err(e) => Some(format!("{e}")),
        }
    };
    let problem = problem.or_else(|| {
        let pattern = pattern?;
        let starts = pattern == prefix.as_str()
            || pattern
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
        (!starts).then(|| {
            format!("the route's path {pattern:?} does not start with it (at a segment's end)")
        })
    });
    match problem {
        Some(why) => Err(src.error(
            value.span(),
            key,
            format!("invalid prefix {prefix:?}: {why}"),
        )),
        None => Ok(prefix.clone()),
    }
}

/// Which side of the exchange a route's field edits apply to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Request,
    Response,
}

/// Why a route may not set or remove the field `name` (lower case), if
/// it may not.
fn reserved(name: &str, side: Side, auth: &Auth, cors: bool) -> Option<&'static str> {
    let framing = "frames the message or the connection; the gateway sets it, a route cannot";
    if name == "content-length" || HOP_BY_HOP.contains(&name) {
        return Some(framing);
    }
    if name == "x-request-id" {
        return Some("the gateway sets it to the request's id");
    }
    match side {
        Side::Request => match name {
            "host" => {
                Some("names the authority the client asked for; the gateway forwards it as sent")
            }
            "expect" => Some("asks for an interim answer the gateway handles itself"),
            "x-forwarded-for" | "x-forwarded-proto" | "x-forwarded-host" | "x-forwarded-prefix"
            | "forwarded" => Some("the gateway sets it from the connection and the route"),
            "traceparent" | "tracestate" => {
                Some("Trace Context: the gateway passes it on, or sets its own when it traces")
            }
            _ if name == auth.subject_header.as_str() || name == auth.roles_header.as_str() => {
                Some("the gateway sets it from the identity it checked ([auth] names it)")
            }
            _ => None,
        },
        Side::Response => match name {
            // Added or repaired per the contract (a challenge on 401, a
            // wait on 429/503, the date): a route's copy would be a second.
            "date" | "retry-after" | "www-authenticate" => {
                Some("the gateway keeps or repairs it as the contract says")
            }
            _ if cors && name.starts_with("access-control-") => {
                Some("the route's `cors` sets the CORS fields")
            }
            _ => None,
        },
    }
}

/// A route's `request_headers` or `response_headers`.
pub(super) fn header_edits(
    value: Spanned<FileHeaderEdits>,
    side: Side,
    auth: &Auth,
    cors: bool,
    key: &str,
    src: &Source<'_>,
) -> Result<HeaderEdits, ConfigError> {
    let span = value.span();
    let file = value.into_inner();
    let mut seen: Vec<(HeaderName, &'static str)> = Vec::new();
    let mut name_of = |name: &Spanned<String>,
                       list: &'static str,
                       entry_key: String|
     -> Result<HeaderName, ConfigError> {
        let parsed = HeaderName::from_bytes(name.get_ref().as_bytes()).map_err(|_| {
            src.error(
                name.span(),
                &entry_key,
                format!(
                    "invalid field name {:?}: a token (letters, digits, !#$%&'*+-.^_`|~)",
                    name.get_ref()
                ),
            )
        })?;
        if let Some(why) = reserved(parsed.as_str(), side, auth, cors) {
            return Err(src.error(
                name.span(),
                &entry_key,
                format!("{:?} cannot be edited by a route: {why}", name.get_ref()),
            ));
        }
        if let Some((_, other)) = seen.iter().find(|(n, _)| *n == parsed) {
            let why = if *other == list {
                format!(
                    "{:?} is named twice (names are case-insensitive)",
                    name.get_ref()
                )
            } else {
                format!(
                    "{:?} is also in `{other}`; use one of `set`, `add`, `remove` per field",
                    name.get_ref()
                )
            };
            return Err(src.error(name.span(), &entry_key, why));
        }
        seen.push((parsed.clone(), list));
        Ok(parsed)
    };
    let mut fields = |map: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
                      list: &'static str|
     -> Result<Vec<(HeaderName, HeaderValue)>, ConfigError> {
        let mut out = Vec::new();
        for (name, value) in map.into_iter().flatten() {
            let entry_key = format!("{key}.{list}.{}", name.get_ref());
            let parsed = name_of(&name, list, entry_key.clone())?;
            let text = value.get_ref();
            // Visible ASCII, spaces and tabs inside: no CR, LF or NUL
            // could split a field line, and no edge whitespace is lost.
            let valid = text
                .bytes()
                .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
                && text.trim() == text.as_str();
            let header = HeaderValue::from_str(text).ok().filter(|_| valid);
            let Some(header) = header else {
                return Err(src.error(
                    value.span(),
                    &entry_key,
                    format!(
                        "invalid field value {text:?}: visible ASCII and inner spaces only (no CR, LF or other control characters)"
                    ),
                ));
            };
            out.push((parsed, header));
        }
        Ok(out)
    };
    let set = fields(file.set, "set")?;
    let add = fields(file.add, "add")?;
    let mut remove = Vec::new();
    for (i, name) in file.remove.into_iter().flatten().enumerate() {
        remove.push(name_of(&name, "remove", format!("{key}.remove[{i}]"))?);
    }
    if set.is_empty() && add.is_empty() && remove.is_empty() {
        return Err(src.error(
            span,
            key,
            "edits nothing; give `set`, `add` or `remove`, or leave it out",
        ));
    }
    Ok(HeaderEdits { set, add, remove })
}

/// A route's `cors`. `route_methods`: the methods the route serves (None:
/// every method), the default of `allow_methods`.
pub(super) fn cors(
    value: Spanned<FileCors>,
    route_methods: Option<&[Method]>,
    key: &str,
    src: &Source<'_>,
) -> Result<Cors, ConfigError> {
    let c = value.into_inner();
    let origins_key = format!("{key}.allow_origins");
    let list = c.allow_origins.get_ref();
    if list.is_empty() {
        return Err(src.error(
            c.allow_origins.span(),
            &origins_key,
            "lists no origin; list them, or [\"*\"] for any",
        ));
    }
    let any = list.iter().any(|o| o.get_ref() == "*");
    let origins = if any {
        if list.len() > 1 {
            return Err(src.error(
                c.allow_origins.span(),
                &origins_key,
                "\"*\" admits every origin: it stands alone",
            ));
        }
        None
    } else {
        let mut out: Vec<String> = Vec::new();
        for (i, origin) in list.iter().enumerate() {
            let entry_key = format!("{origins_key}[{i}]");
            if let Some(why) = origin_problem(origin.get_ref()) {
                return Err(src.error(
                    origin.span(),
                    &entry_key,
                    format!("invalid origin {:?}: {why}", origin.get_ref()),
                ));
            }
            if out.contains(origin.get_ref()) {
                return Err(src.error(
                    origin.span(),
                    &entry_key,
                    format!("duplicate origin {:?}", origin.get_ref()),
                ));
            }
            out.push(origin.get_ref().clone());
        }
        Some(out)
    };
    let credentials = c.allow_credentials.as_ref().is_some_and(|v| *v.get_ref());
    if credentials && any {
        let span = c.allow_credentials.map(|v| v.span()).unwrap_or_default();
        return Err(src.error(
            span,
            &format!("{key}.allow_credentials"),
            "browsers refuse credentials with any origin (\"*\"): list the origins",
        ));
    }
    let methods = match c.allow_methods {
        Some(list) => {
            let methods_key = format!("{key}.allow_methods");
            if list.get_ref().is_empty() {
                return Err(src.error(
                    list.span(),
                    &methods_key,
                    "lists no method; leave it out for the route's methods",
                ));
            }
            if let Some((i, star)) = list
                .get_ref()
                .iter()
                .enumerate()
                .find(|(_, m)| m.get_ref() == "*")
            {
                return Err(src.error(
                    star.span(),
                    &format!("{methods_key}[{i}]"),
                    "\"*\" is not taken here: list the methods",
                ));
            }
            self::route_methods(list, &methods_key, src)?
        }
        None => match route_methods {
            Some(methods) => methods.to_vec(),
            None => vec![Method::GET, Method::HEAD, Method::POST],
        },
    };
    let names =
        |list: Option<Vec<Spanned<String>>>, name: &str| -> Result<Vec<HeaderName>, ConfigError> {
            let mut out: Vec<HeaderName> = Vec::new();
            for (i, field) in list.into_iter().flatten().enumerate() {
                // `*` is a token, but a wildcard to browsers (and ignored
                // by them with credentials): the fields are listed instead.
                if field.get_ref() == "*" {
                    return Err(src.error(
                        field.span(),
                        &format!("{key}.{name}[{i}]"),
                        "\"*\" is not taken here: list the field names",
                    ));
                }
                let parsed = HeaderName::from_bytes(field.get_ref().as_bytes()).map_err(|_| {
                    src.error(
                        field.span(),
                        &format!("{key}.{name}[{i}]"),
                        format!("invalid field name {:?}", field.get_ref()),
                    )
                })?;
                if !out.contains(&parsed) {
                    out.push(parsed);
                }
            }
            Ok(out)
        };
    let headers = names(c.allow_headers, "allow_headers")?;
    let expose = names(c.expose_headers, "expose_headers")?;
    let max_age = match c.max_age {
        Some(v) => Some(duration(
            Some(v),
            &format!("{key}.max_age"),
            Duration::ZERO,
            Zero::Allowed,
            src,
        )?),
        None => None,
    };
    Ok(Cors {
        origins,
        methods,
        headers,
        expose,
        credentials,
        max_age,
    })
}

/// Why `origin` is not an origin as a browser sends it
/// (`scheme://host[:port]`, lower case, no path), if it is not.
fn origin_problem(origin: &str) -> Option<&'static str> {
    if origin == "null" {
        return Some(
            "\"null\" is what sandboxed and file pages send; admitting it admits them all",
        );
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Some("expected scheme://host[:port], e.g. https://app.example");
    };
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    if !scheme_ok {
        return Some("the scheme is lower-case letters, digits, '+', '-' or '.'");
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Some("an origin has a host and no path (no trailing slash), query or user");
    }
    if rest.bytes().any(|b| b.is_ascii_uppercase()) {
        return Some("browsers send the host in lower case; write it so");
    }
    if !rest.bytes().all(|b| b.is_ascii_graphic()) {
        return Some("must be visible ASCII (write an IDN host in its xn-- form)");
    }
    None
}

pub(super) fn route_methods(
    methods: Spanned<Vec<Spanned<String>>>,
    key: &str,
    src: &Source<'_>,
) -> Result<Vec<Method>, ConfigError> {
    if methods.get_ref().is_empty() {
        return Err(src.error(
            methods.span(),
            key,
            "lists no method; leave `methods` out to serve every method",
        ));
    }
    let mut out: Vec<Method> = Vec::with_capacity(methods.get_ref().len());
    for (i, method) in methods.into_inner().into_iter().enumerate() {
        let name = method.get_ref().to_ascii_uppercase();
        let parsed = is_token(&name)
            .then(|| Method::from_bytes(name.as_bytes()).ok())
            .flatten();
        let Some(parsed) = parsed else {
            return Err(src.error(
                method.span(),
                &format!("{key}[{i}]"),
                format!("invalid method {:?}", method.get_ref()),
            ));
        };
        if out.contains(&parsed) {
            return Err(src.error(
                method.span(),
                &format!("{key}[{i}]"),
                format!("duplicate method {parsed}"),
            ));
        }
        out.push(parsed);
    }
    Ok(out)
}

/// An HTTP token (RFC 9110 section 5.6.2).
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
