//! The names of the fields the contract gives a meaning to, spelled once.
//!
//! The gateway writes them and the auditor reads them; both name them from here.

use http::{HeaderName, Method};

/// The hop-by-hop fields (RFC 9110 section 7.6.1, with the obsolete
/// Keep-Alive and Proxy-Connection), lower case: they describe one
/// connection, so no proxy forwards them and no configuration sets them.
pub const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Names the upstream a 5xx is about (`upstream.*`, `fault.upstream_identity`).
pub static X_UPSTREAM_SERVICE: HeaderName = HeaderName::from_static("x-upstream-service");
/// Says how the upstream failed: a [`FailureType`](crate::FailureType) value.
pub static X_FAILURE_TYPE: HeaderName = HeaderName::from_static("x-failure-type");
/// The request id: the client's when sane, else the gateway's, on every response.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The quota policies of a limited route (draft-ietf-httpapi-ratelimit-headers-11 §3).
pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// What is left of each quota (draft-ietf-httpapi-ratelimit-headers-11 §4).
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// Makes a POST or PATCH safe to repeat (draft-ietf-httpapi-idempotency-key-header).
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// The media types a resource takes in a POST (W3C Linked Data Platform §7.1).
pub static ACCEPT_POST: HeaderName = HeaderName::from_static("accept-post");
/// The media types a resource takes in a PATCH (RFC 5789 section 3.1).
pub static ACCEPT_PATCH: HeaderName = HeaderName::from_static("accept-patch");

/// The field a 415 to `method` lists the accepted media types in, when the
/// method has one.
pub fn accept_for(method: &Method) -> Option<&'static HeaderName> {
    match *method {
        Method::POST => Some(&ACCEPT_POST),
        Method::PATCH => Some(&ACCEPT_PATCH),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules;

    #[test]
    fn the_catalog_names_the_fields_spelled_here() {
        let named = |rule: &rules::Rule, field: &HeaderName| {
            rule.expects.to_ascii_lowercase().contains(field.as_str())
        };
        assert!(named(&rules::UPSTREAM_UNREACHABLE, &X_UPSTREAM_SERVICE));
        assert!(named(&rules::UPSTREAM_UNREACHABLE, &X_FAILURE_TYPE));
        assert!(named(&rules::RATE_LIMITED, &RATELIMIT_POLICY));
        assert!(named(&rules::RATE_LIMITED, &RATELIMIT));
    }

    #[test]
    fn only_post_and_patch_name_their_accepted_media() {
        assert_eq!(accept_for(&Method::POST), Some(&ACCEPT_POST));
        assert_eq!(accept_for(&Method::PATCH), Some(&ACCEPT_PATCH));
        assert_eq!(accept_for(&Method::PUT), None);
    }
}
