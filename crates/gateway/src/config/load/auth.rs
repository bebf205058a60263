//! `[auth]`: which credentials routes may ask for and the headers that
//! carry the client's identity upstream.

use http::HeaderName;
use toml::Spanned;

use crate::config::file::FileAuth;
use crate::config::model::Auth;

use super::api_keys::build_api_keys;
use super::error::ConfigError;
use super::external::build_external;
use super::jwt::build_jwt;
use super::source::Source;

const DEFAULT_API_KEY_HEADER: &str = "x-api-key";

/// Headers with a meaning in HTTP itself: never a home for an API key, a
/// subject or roles.
const STANDARD_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "content-type",
    "content-encoding",
    "forwarded",
];

/// `[auth]`: the credentials routes may ask for, and the headers that carry
/// the client's identity to the upstream.
pub(super) fn build_auth(a: FileAuth, src: &Source<'_>) -> Result<Auth, ConfigError> {
    let defaults = Auth::default();
    let subject_header = match &a.subject_header {
        Some(value) => own_header(value, "auth.subject_header", "X-Auth-Subject", src)?,
        None => defaults.subject_header,
    };
    let roles_header = match &a.roles_header {
        Some(value) => own_header(value, "auth.roles_header", "X-Auth-Roles", src)?,
        None => defaults.roles_header,
    };
    let api_key_header = match &a.api_keys {
        Some(keys) => Some(match &keys.get_ref().header {
            Some(value) => own_header(value, "auth.api_keys.header", "X-API-Key", src)?,
            None => HeaderName::from_static(DEFAULT_API_KEY_HEADER),
        }),
        None => None,
    };
    let mut headers = vec![
        (
            "auth.subject_header",
            &subject_header,
            a.subject_header.as_ref(),
        ),
        ("auth.roles_header", &roles_header, a.roles_header.as_ref()),
    ];
    if let (Some(header), Some(keys)) = (&api_key_header, &a.api_keys) {
        headers.push((
            "auth.api_keys.header",
            header,
            keys.get_ref().header.as_ref(),
        ));
    }
    distinct_headers(&headers, src)?;

    let jwt = a.jwt.map(|jwt| build_jwt(jwt, src)).transpose()?;
    let api_keys = match (a.api_keys, api_key_header) {
        (Some(keys), Some(header)) => Some(build_api_keys(keys.into_inner(), header, src)?),
        _ => None,
    };
    let external = a.external.map(|e| build_external(e, src)).transpose()?;
    Ok(Auth {
        jwt,
        api_keys,
        external,
        subject_header,
        roles_header,
    })
}

/// A header name the gateway reads credentials from or writes an identity
/// to: valid, and without a meaning of its own in HTTP.
fn own_header(
    value: &Spanned<String>,
    key: &str,
    example: &str,
    src: &Source<'_>,
) -> Result<HeaderName, ConfigError> {
    let text = value.get_ref();
    let Ok(name) = HeaderName::from_bytes(text.as_bytes()) else {
        return Err(src.error(value.span(), key, format!("invalid header name {text:?}")));
    };
    if STANDARD_HEADERS.contains(&name.as_str()) {
        return Err(src.error(
            value.span(),
            key,
            format!("{text:?} is a standard HTTP header; use one of your own, e.g. {example}"),
        ));
    }
    Ok(name)
}

/// Each auth header has one purpose. An entry's value is None when the
/// header is a default; defaults never collide with each other, so a clash
/// is reported where a header is written.
fn distinct_headers(
    headers: &[(&str, &HeaderName, Option<&Spanned<String>>)],
    src: &Source<'_>,
) -> Result<(), ConfigError> {
    for (i, &(key, name, value)) in headers.iter().enumerate() {
        for &(other_key, other_name, other_value) in &headers[..i] {
            if name != other_name {
                continue;
            }
            let (written, written_key, also) = match (value, other_value) {
                (Some(value), _) => (value, key, other_key),
                (None, Some(other)) => (other, other_key, key),
                (None, None) => continue,
            };
            return Err(src.error(
                written.span(),
                written_key,
                format!(
                    "{:?} is also {also}; each needs a header of its own",
                    written.get_ref()
                ),
            ));
        }
    }
    Ok(())
}
