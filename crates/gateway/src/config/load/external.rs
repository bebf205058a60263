//! `[auth.external]`: the auth service a route with `auth = "external"`
//! asks, what it is sent, what its answer names, and how long it is kept.

use std::time::Duration;

use candor_contract::fields::HOP_BY_HOP;
use http::HeaderName;
use toml::Spanned;

use crate::config::file::FileExternal;
use crate::config::model::{AuthCache, ExternalAuth};

use super::error::ConfigError;
use super::source::Source;
use super::values::{Zero, count, duration};

const KEY: &str = "auth.external";

/// Fields that describe this hop or the gateway's own question (beside
/// the hop-by-hop ones), never sent on to the auth service as the client's.
const NOT_SENT: &[&str] = &["host", "content-length", "content-type"];

/// `[auth.external]`; its upstream is checked once the upstreams are read.
pub(super) fn build_external(
    e: Spanned<FileExternal>,
    src: &Source<'_>,
) -> Result<ExternalAuth, ConfigError> {
    let e = e.into_inner();
    let path = match e.path {
        None => "/introspect".to_owned(),
        Some(path) => {
            let text = path.get_ref();
            let valid = text.starts_with('/')
                && http::uri::PathAndQuery::try_from(text.as_str())
                    .is_ok_and(|pq| pq.as_str() == text);
            if !valid {
                return Err(src.error(
                    path.span(),
                    &format!("{KEY}.path"),
                    format!("{text:?} is not an origin-form path like \"/introspect\""),
                ));
            }
            path.into_inner()
        }
    };
    let send = match e.send {
        None => vec![http::header::AUTHORIZATION],
        Some(list) => {
            if list.get_ref().is_empty() {
                return Err(src.error(
                    list.span(),
                    &format!("{KEY}.send"),
                    "lists no field; the auth service needs the client's credentials",
                ));
            }
            let mut names: Vec<HeaderName> = Vec::new();
            for (i, name) in list.into_inner().into_iter().enumerate() {
                let key = format!("{KEY}.send[{i}]");
                let text = name.get_ref();
                let Ok(parsed) = HeaderName::from_bytes(text.as_bytes()) else {
                    return Err(src.error(
                        name.span(),
                        &key,
                        format!("invalid header name {text:?}"),
                    ));
                };
                if NOT_SENT.contains(&parsed.as_str()) || HOP_BY_HOP.contains(&parsed.as_str()) {
                    return Err(src.error(
                        name.span(),
                        &key,
                        format!("{text:?} describes this hop, not the client; it is never sent"),
                    ));
                }
                if names.contains(&parsed) {
                    return Err(src.error(name.span(), &key, format!("duplicate field {text:?}")));
                }
                names.push(parsed);
            }
            names
        }
    };
    let member = |value: Option<Spanned<String>>, name: &str, default: &str| match value {
        None => Ok(default.to_owned()),
        Some(v) if v.get_ref().is_empty() => Err(src.error(
            v.span(),
            &format!("{KEY}.{name}"),
            "must name a member of the service's JSON answer",
        )),
        Some(v) => Ok(v.into_inner()),
    };
    let subject = member(e.subject, "subject", "sub")?;
    let roles = member(e.roles, "roles", "roles")?;
    let timeout = duration(
        e.timeout,
        &format!("{KEY}.timeout"),
        Duration::from_secs(2),
        Zero::Refused,
        src,
    )?;
    let cache = match e.cache {
        None => None,
        Some(cache) => {
            let c = cache.into_inner();
            let ttl = duration(
                Some(c.ttl),
                &format!("{KEY}.cache.ttl"),
                Duration::ZERO,
                Zero::Refused,
                src,
            )?;
            let negative_ttl = duration(
                c.negative_ttl,
                &format!("{KEY}.cache.negative_ttl"),
                ttl,
                Zero::Allowed,
                src,
            )?;
            let max_entries = count(
                c.max_entries,
                &format!("{KEY}.cache.max_entries"),
                10_000usize,
                src,
            )?;
            Some(AuthCache {
                ttl,
                negative_ttl,
                max_entries,
            })
        }
    };
    Ok(ExternalAuth {
        upstream: e.upstream.into_inner(),
        path,
        send,
        subject,
        roles,
        timeout,
        cache,
    })
}
