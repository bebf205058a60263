//! A route's CORS policy, its field values made once: what a preflight is
//! answered, and what an actual request's answer gets, for both codecs.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, VARY,
};
use http::{HeaderName, HeaderValue, Method};

use crate::config::Cors;

/// A route's CORS policy, ready to answer.
#[derive(Debug)]
pub(crate) struct CorsPolicy {
    /// The admitted origins as field values; None: any (`*`).
    origins: Option<Vec<HeaderValue>>,
    methods: Vec<Method>,
    headers: Vec<HeaderName>,
    allow_methods: HeaderValue,
    allow_headers: Option<HeaderValue>,
    expose: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
}

static ANY: HeaderValue = HeaderValue::from_static("*");
static TRUE: HeaderValue = HeaderValue::from_static("true");
static ORIGIN: HeaderValue = HeaderValue::from_static("origin");

/// Why a preflight is not admitted (the 403's detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    Origin,
    Method,
    Headers,
}

impl Denied {
    pub(crate) fn why(self) -> &'static str {
        match self {
            Denied::Origin => "the origin is not allowed on this route",
            Denied::Method => "the requested method is not allowed on this route",
            Denied::Headers => "a requested header is not allowed on this route",
        }
    }
}

pub(crate) use crate::error::PreflightFields;

fn joined<T: AsRef<str>>(items: &[T]) -> Option<HeaderValue> {
    let text = items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    (!text.is_empty())
        .then(|| HeaderValue::from_str(&text).ok())
        .flatten()
}

impl CorsPolicy {
    /// The policy of a checked configuration (its names and origins are
    /// valid field values).
    pub(crate) fn new(cors: &Cors) -> CorsPolicy {
        let methods: Vec<&str> = cors.methods.iter().map(Method::as_str).collect();
        CorsPolicy {
            origins: cors.origins.as_ref().map(|list| {
                list.iter()
                    .filter_map(|o| HeaderValue::from_str(o).ok())
                    .collect()
            }),
            allow_methods: joined(&methods).unwrap_or_else(|| HeaderValue::from_static("GET")),
            methods: cors.methods.clone(),
            allow_headers: joined(&cors.headers),
            headers: cors.headers.clone(),
            expose: joined(&cors.expose),
            credentials: cors.credentials,
            max_age: cors.max_age.map(|age| HeaderValue::from(age.as_secs())),
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request from
    /// `origin`: `*`, or the origin itself when it is listed (compared
    /// exactly, as browsers serialise origins); None when not admitted.
    pub(crate) fn allow(&self, origin: Option<&[u8]>) -> Option<&HeaderValue> {
        let origin = origin?;
        match &self.origins {
            None => Some(&ANY),
            Some(list) => list.iter().find(|o| o.as_bytes() == origin),
        }
    }

    /// The answer to a preflight from `origin` asking for `method` and the
    /// fields `asked` lists (`Access-Control-Request-Headers`).
    pub(crate) fn preflight(
        &self,
        origin: &[u8],
        method: &[u8],
        asked: Option<&[u8]>,
    ) -> Result<PreflightFields, Denied> {
        let allow_origin = self.allow(Some(origin)).ok_or(Denied::Origin)?;
        // Methods are case-sensitive (RFC 9110 section 9.1).
        if !self.methods.iter().any(|m| m.as_str().as_bytes() == method) {
            return Err(Denied::Method);
        }
        let every_header_allowed = asked
            .into_iter()
            .flat_map(crate::field_value::list_items)
            .all(|name| {
                self.headers
                    .iter()
                    .any(|h| h.as_str().as_bytes().eq_ignore_ascii_case(name))
            });
        if !every_header_allowed {
            return Err(Denied::Headers);
        }
        let mut fields = Vec::with_capacity(6);
        fields.push((ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin.clone()));
        if self.credentials {
            fields.push((ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE.clone()));
        }
        fields.push((ACCESS_CONTROL_ALLOW_METHODS, self.allow_methods.clone()));
        if let Some(headers) = &self.allow_headers {
            fields.push((ACCESS_CONTROL_ALLOW_HEADERS, headers.clone()));
        }
        if let Some(age) = &self.max_age {
            fields.push((ACCESS_CONTROL_MAX_AGE, age.clone()));
        }
        if self.origins.is_some() {
            fields.push((VARY, ORIGIN.clone()));
        }
        Ok(fields)
    }

    /// The fields an actual request's answer gets, `allowed` being
    /// [`CorsPolicy::allow`]'s verdict: the CORS fields when admitted, and
    /// `Vary: Origin` whenever the answer depends on the origin (a listed
    /// policy), so a cache keeps one answer per origin.
    pub(crate) fn each_actual<'a>(
        &'a self,
        allowed: Option<&'a HeaderValue>,
        mut f: impl FnMut(&'a HeaderName, &'a HeaderValue),
    ) {
        if let Some(origin) = allowed {
            f(&ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            if self.credentials {
                f(&ACCESS_CONTROL_ALLOW_CREDENTIALS, &TRUE);
            }
            if let Some(expose) = &self.expose {
                f(&ACCESS_CONTROL_EXPOSE_HEADERS, expose);
            }
        }
        if self.origins.is_some() {
            f(&VARY, &ORIGIN);
        }
    }
}

/// What one request's answer gets of its route's CORS policy.
#[derive(Clone, Copy)]
pub(crate) struct CorsAnswer<'r> {
    pub policy: &'r CorsPolicy,
    /// The `Access-Control-Allow-Origin` value, when the origin is admitted.
    pub allowed: Option<&'r HeaderValue>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy(origins: Option<&[&str]>, credentials: bool) -> CorsPolicy {
        CorsPolicy::new(&Cors {
            origins: origins.map(|l| l.iter().map(|o| (*o).to_owned()).collect()),
            methods: vec![Method::GET, Method::PUT],
            headers: vec![HeaderName::from_static("content-type")],
            expose: vec![HeaderName::from_static("x-total")],
            credentials,
            max_age: Some(Duration::from_secs(600)),
        })
    }

    #[test]
    fn a_listed_policy_echoes_only_its_origins() {
        let p = policy(Some(&["https://app.example"]), true);
        assert_eq!(
            p.allow(Some(b"https://app.example")).unwrap(),
            "https://app.example"
        );
        assert!(p.allow(Some(b"https://evil.example")).is_none());
        assert!(p.allow(Some(b"https://APP.example")).is_none());
        assert!(p.allow(None).is_none());
        let any = policy(None, false);
        assert_eq!(any.allow(Some(b"https://x.example")).unwrap(), "*");
    }

    #[test]
    fn a_preflight_is_admitted_only_for_its_methods_and_headers() {
        let p = policy(Some(&["https://app.example"]), true);
        let o = b"https://app.example";
        let fields = p.preflight(o, b"PUT", Some(b"Content-Type")).unwrap();
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "access-control-allow-origin",
                "access-control-allow-credentials",
                "access-control-allow-methods",
                "access-control-allow-headers",
                "access-control-max-age",
                "vary"
            ]
        );
        assert_eq!(fields[2].1, "GET, PUT");
        assert_eq!(fields[4].1, "600");
        assert_eq!(p.preflight(o, b"put", None), Err(Denied::Method));
        assert_eq!(p.preflight(o, b"DELETE", None), Err(Denied::Method));
        assert_eq!(
            p.preflight(o, b"GET", Some(b"content-type, x-secret")),
            Err(Denied::Headers)
        );
        assert_eq!(
            p.preflight(b"https://evil.example", b"GET", None),
            Err(Denied::Origin)
        );
    }
}
