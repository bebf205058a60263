//! The rule catalog: every rule ID of the contract, as data.
//!
//! Code, metrics, logs, reports and docs all name rules by these IDs; the
//! catalog is the one place that says what each ID expects and why.

use std::fmt;

use serde::Serialize;

/// How bad a finding is. Ordered: `Info < Warn < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Advice.
    Info,
    /// Breaks a SHOULD, or the guide.
    Warn,
    /// Breaks an RFC MUST or the contract.
    Error,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }

    /// Parses `info`, `warn` (or `warning`) and `error`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Some(Severity::Info),
            "warn" | "warning" => Some(Severity::Warn),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which part of the contract a rule belongs to: contract.md sections 1-4,
/// and the static rules for OpenAPI documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    /// Section 1: responses the gateway itself generates.
    Gateway,
    /// Section 2: checks on any recorded or observed exchange.
    Passive,
    /// Section 3: active probes against a live API.
    Probe,
    /// Section 4: the gateway fault suite.
    Fault,
    /// Section 5: static rules over an OpenAPI document.
    Spec,
}

impl Section {
    /// Every section, in catalog order.
    pub const ALL: [Section; 5] = [
        Section::Gateway,
        Section::Passive,
        Section::Probe,
        Section::Fault,
        Section::Spec,
    ];

    pub const fn number(self) -> u8 {
        match self {
            Section::Gateway => 1,
            Section::Passive => 2,
            Section::Probe => 3,
            Section::Fault => 4,
            Section::Spec => 5,
        }
    }

    pub const fn title(self) -> &'static str {
        match self {
            Section::Gateway => "Responses the gateway itself generates",
            Section::Passive => "Rules checked on any exchange",
            Section::Probe => "Active probes against a live API",
            Section::Fault => "Gateway fault suite",
            Section::Spec => "Static rules for OpenAPI documents",
        }
    }
}

/// One rule of the contract.
#[derive(Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Rule {
    /// Stable identifier, e.g. `auth.missing`.
    pub id: &'static str,
    pub section: Section,
    /// The status this rule produces or expects, when there is exactly one.
    pub status: Option<u16>,
    /// What the rule expects, in a few words (status and required headers,
    /// or what a passive rule detects).
    pub expects: &'static str,
    pub severity: Severity,
    /// One line saying what the rule is about.
    pub summary: &'static str,
    /// The RFC (or other source) the rule rests on.
    pub reference: &'static str,
    /// Stable problem `type` URI for this rule (RFC 9457 section 3.1.1).
    pub type_uri: &'static str,
    /// Short human title, used as the problem `title`.
    pub title: &'static str,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id)
    }
}

/// Prefix of every problem `type` URI. A tag URI (RFC 4151): stable and
/// globally unique without promising a resolvable page.
pub const TYPE_URI_PREFIX: &str = "tag:candor.dev,2026:rule/";

macro_rules! catalog {
    ($( $konst:ident = $id:literal, $section:ident, $status:expr, $sev:ident, $title:literal,
        expects: $expects:literal, summary: $summary:literal, reference: $reference:literal; )*) => {
        $(
            #[doc = $summary]
            pub const $konst: Rule = Rule {
                id: $id,
                section: Section::$section,
                status: $status,
                expects: $expects,
                severity: Severity::$sev,
                summary: $summary,
                reference: $reference,
                type_uri: concat!("tag:candor.dev,2026:rule/", $id),
                title: $title,
            };
        )*
        /// Every rule, in catalog order (sections 1 to 5).
        pub static RULES: &[&Rule] = &[$(&$konst),*];
    };
}

catalog! {
    // Section 1: responses the gateway itself generates.
    AUTH_MISSING = "auth.missing", Gateway, Some(401), Error, "Authentication required",
        expects: "401 + WWW-Authenticate: Bearer realm=\"<realm>\" (no error param)",
        summary: "A protected route was called without credentials, or with a scheme it does not accept.",
        reference: "RFC 9110 §15.5.2; RFC 6750 §3.1";
    AUTH_INVALID = "auth.invalid", Gateway, Some(401), Error, "Invalid credentials",
        expects: "401 + WWW-Authenticate with error=\"invalid_token\" and error_description",
        summary: "The credentials were malformed, badly signed, expired, not yet valid, for another issuer or audience, or unknown.",
        reference: "RFC 6750 §3.1";
    AUTH_BAD_REQUEST = "auth.bad_request", Gateway, Some(400), Error, "Malformed credentials",
        expects: "400 + WWW-Authenticate with error=\"invalid_request\"",
        summary: "Credentials were sent in a malformed way (two tokens, header and query, empty Bearer).",
        reference: "RFC 6750 §3.1";
    AUTHZ_DENIED = "authz.denied", Gateway, Some(403), Error, "Insufficient permissions",
        expects: "403 + WWW-Authenticate error=\"insufficient_scope\" scope=\"<needed>\"; reason: insufficient_permissions",
        summary: "The client is authenticated but lacks the role or scope the route requires.",
        reference: "RFC 9110 §15.5.4; RFC 6750 §3.1";
    AUTHZ_CONCEALED = "authz.concealed", Gateway, Some(404), Error, "Not found",
        expects: "404, byte-identical to route.unknown",
        summary: "As authz.denied, on a route configured to hide its existence.",
        reference: "RFC 9110 §15.5.5";
    ROUTE_UNKNOWN = "route.unknown", Gateway, Some(404), Error, "Not found",
        expects: "404 + problem body",
        summary: "No route matches the request path.",
        reference: "RFC 9110 §15.5.5";
    ROUTE_METHOD = "route.method", Gateway, Some(405), Error, "Method not allowed",
        expects: "405 + Allow listing the route's methods",
        summary: "The route exists but does not serve this method.",
        reference: "RFC 9110 §15.5.6";
    ROUTE_RETIRED = "route.retired", Gateway, Some(410), Error, "Gone",
        expects: "410 + Link: <successor>; rel=\"successor-version\" when configured",
        summary: "The route was retired on purpose and will not return.",
        reference: "RFC 9110 §15.5.11";
    CORS_PREFLIGHT = "cors.preflight", Gateway, Some(204), Error, "Preflight allowed",
        expects: "204 without a body + Access-Control-Allow-Origin/-Methods (-Headers, -Credentials, -Max-Age as configured)",
        summary: "An admitted CORS preflight on a route with a CORS policy, answered by the gateway without calling the upstream.",
        reference: "Fetch standard §3.2 (CORS protocol); RFC 9110 §15.3.5";
    CORS_DENIED = "cors.denied", Gateway, Some(403), Error, "Preflight denied",
        expects: "403 + problem body, and no Access-Control-* fields",
        summary: "A CORS preflight whose origin, method or headers the route's policy does not admit: refused, so the browser never sends the request.",
        reference: "Fetch standard §3.2 (CORS protocol); RFC 9110 §15.5.4";
    ROUTE_DEPRECATED = "route.deprecated", Gateway, None, Warn, "Deprecated",
        expects: "upstream's status + Deprecation, Sunset and Link rel=\"deprecation\"",
        summary: "The route is still served but deprecated.",
        reference: "RFC 9745; RFC 8594";
    BODY_MEDIA = "body.media", Gateway, Some(415), Error, "Unsupported media type",
        expects: "415 + Accept-Post / Accept-Patch where applicable",
        summary: "The request body has a missing or unsupported Content-Type.",
        reference: "RFC 9110 §15.5.16";
    BODY_MALFORMED = "body.malformed", Gateway, Some(400), Error, "Malformed body",
        expects: "400 + problem body with the parse position",
        summary: "The Content-Type is JSON but the body is not valid JSON.",
        reference: "RFC 9110 §15.5.1";
    BODY_SCHEMA = "body.schema", Gateway, Some(400), Error, "Invalid body",
        expects: "400 + errors: [{pointer, message}] listing every violation",
        summary: "Valid JSON that violates the route's schema.",
        reference: "RFC 9110 §15.5.1; RFC 9457 §3.2";
    BODY_TOO_LARGE = "body.too_large", Gateway, Some(413), Error, "Content too large",
        expects: "413",
        summary: "The request body is over the configured limit.",
        reference: "RFC 9110 §15.5.14";
    REQUEST_HEADERS_TOO_LARGE = "request.headers_too_large", Gateway, Some(431), Error, "Request header fields too large",
        expects: "431",
        summary: "The request's header section is over the configured limit.",
        reference: "RFC 6585 §5";
    REQUEST_URI_TOO_LONG = "request.uri_too_long", Gateway, Some(414), Error, "URI too long",
        expects: "414",
        summary: "The request URI is over the configured limit.",
        reference: "RFC 9110 §15.5.15";
    REQUEST_PATH_UNSAFE = "request.path_unsafe", Gateway, Some(400), Error, "Unsafe request path",
        expects: "400 + problem body; routing and forwarding use only the normalised path",
        summary: "The target's path cannot be normalised safely: an encoded slash or backslash, a backslash, or dot segments above the root.",
        reference: "RFC 3986 §6.2.2, §5.2.4; RFC 9110 §4.2.3";
    REQUEST_HOST = "request.host", Gateway, Some(400), Error, "Invalid Host",
        expects: "400",
        summary: "An HTTP/1.1 request without Host, with more than one, or with one that is not a valid authority.",
        reference: "RFC 9112 §3.2; RFC 9110 §7.2";
    REQUEST_METHOD_UNSUPPORTED = "request.method_unsupported", Gateway, Some(501), Error, "Method not implemented",
        expects: "501; the request is never forwarded",
        summary: "CONNECT, or another method a reverse proxy does not serve.",
        reference: "RFC 9110 §15.6.2, §9.3.6";
    REQUEST_CODING_UNSUPPORTED = "request.coding_unsupported", Gateway, Some(501), Error, "Transfer coding not implemented",
        expects: "501",
        summary: "The request's Transfer-Encoding names a coding the gateway does not implement (only chunked is).",
        reference: "RFC 9112 §6.1";
    REQUEST_BODY_TIMEOUT = "request.body_timeout", Gateway, Some(408), Error, "Request timeout",
        expects: "408 (the client's fault, never an upstream 504)",
        summary: "The client's request body stalled past the body timeout.",
        reference: "RFC 9110 §15.5.9";
    RATE_LIMITED = "rate.limited", Gateway, Some(429), Error, "Too many requests",
        expects: "429 + Retry-After (integer >= 1) + RateLimit-Policy / RateLimit fields",
        summary: "The client is over its quota; never 503 or 400.",
        reference: "RFC 6585 §4; RFC 9110 §10.2.3; draft-ietf-httpapi-ratelimit-headers-11";
    GATEWAY_OVERLOADED = "gateway.overloaded", Gateway, Some(503), Error, "Gateway overloaded",
        expects: "503 + Retry-After",
        summary: "The gateway's own concurrency or queue limit was reached.",
        reference: "RFC 9110 §15.6.4";
    GATEWAY_MAINTENANCE = "gateway.maintenance", Gateway, Some(503), Error, "Under maintenance",
        expects: "503 + Retry-After = seconds to the window's end",
        summary: "A maintenance window is open for this route or the whole gateway.",
        reference: "RFC 9110 §15.6.4";
    UPSTREAM_UNREACHABLE = "upstream.unreachable", Gateway, Some(502), Error, "Upstream unreachable",
        expects: "502 + X-Upstream-Service + X-Failure-Type: connect_refused|dns|tls|reset",
        summary: "The upstream refused the connection, failed DNS or TLS, or reset before responding.",
        reference: "RFC 9110 §15.6.3";
    UPSTREAM_INVALID_RESPONSE = "upstream.invalid_response", Gateway, Some(502), Error, "Invalid upstream response",
        expects: "502 + X-Failure-Type: invalid_response",
        summary: "The upstream sent something that is not valid HTTP.",
        reference: "RFC 9110 §15.6.3";
    UPSTREAM_TIMEOUT = "upstream.timeout", Gateway, Some(504), Error, "Upstream timeout",
        expects: "504 + X-Failure-Type: timeout|connect_timeout",
        summary: "The upstream did not connect, or did not send its response head, in time.",
        reference: "RFC 9110 §15.6.5";
    UPSTREAM_UNAVAILABLE = "upstream.unavailable", Gateway, Some(503), Error, "No healthy upstream",
        expects: "503 + Retry-After + X-Failure-Type: no_healthy_upstream",
        summary: "Every target of the upstream is ejected or unhealthy.",
        reference: "RFC 9110 §15.6.4";
    UPSTREAM_STATUS = "upstream.status", Gateway, None, Error, "Upstream status",
        expects: "upstream's status, unchanged; X-Upstream-Service added on 5xx",
        summary: "Statuses the upstream sent are passed through, never normalised.",
        reference: "RFC 9110 §15";
    UPSTREAM_TRUNCATED = "upstream.truncated", Gateway, None, Error, "Upstream truncated",
        expects: "client connection aborted (no final chunk / RST_STREAM)",
        summary: "The upstream died after the head was sent; the client must not see a complete-looking body.",
        reference: "RFC 9112 §8";
    AUTH_SERVICE_DENIED = "auth_service.denied", Gateway, None, Error, "Denied by the auth service",
        expects: "the auth service's 401 (its WWW-Authenticate, or the gateway's challenge when it sent none) or 403 (its problem body when problem+json)",
        summary: "The external auth service refused the client's credentials or its access.",
        reference: "RFC 9110 §15.5.2, §15.5.4; RFC 7662 §2.2";
    AUTH_SERVICE_UNREACHABLE = "auth_service.unreachable", Gateway, Some(502), Error, "Auth service failed",
        expects: "502 + X-Upstream-Service: <auth service> + X-Failure-Type: connect_refused|reset|invalid_response|error_status; never 403 or 500",
        summary: "The external auth service refused, reset, answered invalid HTTP or a 5xx other than 503: the gateway got no decision from a dependency it needs.",
        reference: "RFC 9110 §15.6.3";
    AUTH_SERVICE_TIMEOUT = "auth_service.timeout", Gateway, Some(504), Error, "Auth service timeout",
        expects: "504 + X-Upstream-Service: <auth service> + X-Failure-Type: timeout|connect_timeout",
        summary: "The external auth service did not answer in time.",
        reference: "RFC 9110 §15.6.5";
    AUTH_SERVICE_UNAVAILABLE = "auth_service.unavailable", Gateway, Some(503), Error, "Auth service unavailable",
        expects: "503 + the auth service's Retry-After (the gateway's when it sent none) + X-Upstream-Service",
        summary: "The external auth service said it is unavailable (503), or every one of its targets is ejected.",
        reference: "RFC 9110 §15.6.4, §10.2.3";
    INTERNAL = "internal", Gateway, Some(500), Error, "Internal error",
        expects: "500 + problem body, no internals",
        summary: "A bug in the gateway.",
        reference: "RFC 9110 §15.6.1";

    // Section 2: passive rules, checked on any exchange.
    SUCCESS_ERROR_BODY = "success.error_body", Passive, None, Error, "Failure reported as success",
        expects: "no 2xx whose body signals failure",
        summary: "A 2xx response whose body says the request failed (success:false, ok:false, status:\"error\", non-empty error/errors).",
        reference: "RFC 9110 §15.3";
    AUTH_401_WITHOUT_CHALLENGE = "auth.401_without_challenge", Passive, Some(401), Error, "401 without challenge",
        expects: "401 carries a parseable WWW-Authenticate",
        summary: "A 401 response without a parseable WWW-Authenticate challenge.",
        reference: "RFC 9110 §15.5.2";
    AUTH_CHALLENGE_SYNTAX = "auth.challenge_syntax", Passive, None, Error, "Invalid challenge syntax",
        expects: "WWW-Authenticate valid per RFC 9110 §11.6.1",
        summary: "A WWW-Authenticate field that does not parse as challenges.",
        reference: "RFC 9110 §11.6.1";
    AUTH_401_WITHOUT_INVALID_TOKEN = "auth.401_without_invalid_token", Passive, Some(401), Warn, "Refused credentials without invalid_token",
        expects: "a 401 to a request that sent credentials says error=\"invalid_token\" in the challenge of the scheme sent (Bearer, DPoP, ApiKey; Basic and Digest have no error codes)",
        summary: "A request sent credentials and got 401 whose challenge does not say error=\"invalid_token\".",
        reference: "RFC 6750 §3, §3.1; candor contract auth.invalid";
    RATE_429_WITHOUT_RETRY_AFTER = "rate.429_without_retry_after", Passive, Some(429), Error, "429 without Retry-After",
        expects: "429 carries Retry-After",
        summary: "A 429 response that does not say when to retry.",
        reference: "RFC 6585 §4; RFC 9110 §10.2.3";
    RETRY_AFTER_SYNTAX = "retry_after.syntax", Passive, None, Error, "Invalid Retry-After",
        expects: "Retry-After is delta-seconds or an HTTP-date",
        summary: "A Retry-After field that is neither delta-seconds nor an HTTP-date.",
        reference: "RFC 9110 §10.2.3";
    UNAVAILABLE_503_WITHOUT_RETRY_AFTER = "unavailable.503_without_retry_after", Passive, Some(503), Warn, "503 without Retry-After",
        expects: "503 carries Retry-After",
        summary: "A 503 response that does not say when to retry.",
        reference: "RFC 9110 §15.6.4";
    CREATED_201_WITHOUT_LOCATION = "created.201_without_location", Passive, Some(201), Warn, "201 without Location",
        expects: "201 carries Location",
        summary: "A 201 response that does not say where the new resource is.",
        reference: "RFC 9110 §15.3.2";
    NO_CONTENT_204_WITH_BODY = "no_content.204_with_body", Passive, Some(204), Error, "204 with content",
        expects: "204 has no content and no Content-Length > 0",
        summary: "A 204 response that carries content.",
        reference: "RFC 9110 §15.3.5";
    METHOD_405_WITHOUT_ALLOW = "method.405_without_allow", Passive, Some(405), Error, "405 without Allow",
        expects: "405 carries Allow",
        summary: "A 405 response that does not list the allowed methods.",
        reference: "RFC 9110 §15.5.6";
    REDIRECT_WITHOUT_LOCATION = "redirect.without_location", Passive, None, Error, "Redirect without Location",
        expects: "301/302/303/307/308 carry Location",
        summary: "A redirect that does not say where to go.",
        reference: "RFC 9110 §15.4";
    STATUS_UNREGISTERED = "status.unregistered", Passive, None, Error, "Unregistered status",
        expects: "status in the IANA registry, within 100-599",
        summary: "A status code outside the IANA registry or outside 100-599.",
        reference: "RFC 9110 §15; IANA HTTP Status Code Registry";
    ERROR_NOT_MACHINE_READABLE = "error.not_machine_readable", Passive, None, Warn, "Error not machine-readable",
        expects: "4xx/5xx on a JSON API carry JSON or problem+json",
        summary: "An error on a JSON API whose body is not JSON or problem+json.",
        reference: "RFC 9457 §3";
    DELETE_200_EMPTY = "delete.200_empty", Passive, None, Info, "DELETE answered 200 with nothing",
        expects: "204 for a DELETE with nothing to say",
        summary: "A DELETE answered 200 with an empty body or {}.",
        reference: "RFC 9110 §9.3.5";
    GONE_404_AFTER_DELETE = "gone.404_after_delete", Passive, None, Info, "404 after delete",
        expects: "410 for a resource deleted on purpose",
        summary: "A resource deleted with 2xx later answers 404 (410 is more precise).",
        reference: "RFC 9110 §15.5.11";
    BODY_MALFORMED_NOT_400 = "body.malformed_not_400", Passive, Some(400), Error, "Malformed JSON not answered 400",
        expects: "a JSON body that does not parse gets 400, not 422, 409 or 2xx (answers the contract ranks before the body, such as 401, 413, 415 or 429, pass)",
        summary: "A JSON request body that does not parse was answered as if it had been read (422, 409 or 2xx).",
        reference: "RFC 9110 §15.5.1, §15.5.21; candor contract body.malformed";
    SERVER_500_ON_CLIENT_FAULT = "server.500_on_client_fault", Passive, None, Error, "Server error for a client fault",
        expects: "4xx for a malformed request",
        summary: "A 500 in answer to a request known to be malformed.",
        reference: "RFC 9110 §15.5, §15.6";

    // Section 3: active probes.
    PROBE_NO_CREDENTIALS = "probe.no_credentials", Probe, Some(401), Error, "No credentials",
        expects: "401 + challenge (403/404/400/200 fail)",
        summary: "A protected operation called without credentials.",
        reference: "RFC 9110 §15.5.2; RFC 6750 §3.1";
    PROBE_INVALID_TOKEN = "probe.invalid_token", Probe, Some(401), Error, "Invalid token",
        expects: "401 + error=\"invalid_token\"",
        summary: "A protected operation called with a garbage, expired or wrongly signed token.",
        reference: "RFC 6750 §3.1";
    PROBE_INSUFFICIENT_ROLE = "probe.insufficient_role", Probe, Some(403), Error, "Insufficient role",
        expects: "403 (404 if declared concealed); 401 fails",
        summary: "A restricted operation called with valid low-privilege credentials.",
        reference: "RFC 9110 §15.5.4";
    PROBE_MALFORMED_JSON = "probe.malformed_json", Probe, Some(400), Error, "Malformed JSON",
        expects: "400 (422 and 5xx fail)",
        summary: "A truncated JSON body.",
        reference: "RFC 9110 §15.5.1";
    PROBE_WRONG_MEDIA_TYPE = "probe.wrong_media_type", Probe, Some(415), Error, "Wrong media type",
        expects: "415 (400 accepted as warn)",
        summary: "JSON sent as text/plain, or with no Content-Type.",
        reference: "RFC 9110 §15.5.16";
    PROBE_SCHEMA_VIOLATION = "probe.schema_violation", Probe, Some(400), Error, "Schema violation",
        expects: "400 (422 warn, 5xx fail)",
        summary: "A body missing a required field or with a wrong type.",
        reference: "RFC 9110 §15.5.1";
    PROBE_SEMANTIC_VIOLATION = "probe.semantic_violation", Probe, Some(422), Error, "Semantic violation",
        expects: "422 or 409 (400 warn)",
        summary: "A schema-valid but conflicting request, such as a repeated create with a unique field.",
        reference: "RFC 9110 §15.5.21, §15.5.10";
    PROBE_UNKNOWN_ID = "probe.unknown_id", Probe, Some(404), Error, "Unknown id",
        expects: "404 or 410",
        summary: "A well-formed id that does not exist.",
        reference: "RFC 9110 §15.5.5";
    PROBE_UNKNOWN_ROUTE = "probe.unknown_route", Probe, Some(404), Error, "Unknown route",
        expects: "404",
        summary: "A path that no operation declares.",
        reference: "RFC 9110 §15.5.5";
    PROBE_WRONG_METHOD = "probe.wrong_method", Probe, Some(405), Error, "Wrong method",
        expects: "405 + Allow",
        summary: "A method the path does not declare.",
        reference: "RFC 9110 §15.5.6";
    PROBE_OVERSIZE_BODY = "probe.oversize_body", Probe, Some(413), Error, "Oversize body",
        expects: "413 (5xx fail)",
        summary: "A body far over any sane limit.",
        reference: "RFC 9110 §15.5.14";
    PROBE_CREATE = "probe.create", Probe, Some(201), Error, "Create",
        expects: "201 + Location (or 202 + Location/status link)",
        summary: "A valid create.",
        reference: "RFC 9110 §15.3.2, §15.3.3";
    PROBE_DELETE = "probe.delete", Probe, Some(204), Error, "Delete",
        expects: "204 without body; then 404/410",
        summary: "A valid delete, then a read of the deleted resource.",
        reference: "RFC 9110 §9.3.5, §15.3.5";
    PROBE_RATE_BURST = "probe.rate_burst", Probe, Some(429), Error, "Rate burst",
        expects: "429 + Retry-After once limited (503/400 fail)",
        summary: "A bounded burst of requests (opt-in).",
        reference: "RFC 6585 §4";

    // Section 4: the gateway fault suite (candor faults behind any gateway).
    FAULT_REFUSED = "fault.refused", Fault, Some(502), Error, "Refused upstream",
        expects: "502 (not 503 or 500)",
        summary: "The upstream's port is closed.",
        reference: "RFC 9110 §15.6.3";
    FAULT_RESET = "fault.reset", Fault, Some(502), Error, "Reset upstream",
        expects: "502",
        summary: "The upstream resets the connection before answering.",
        reference: "RFC 9110 §15.6.3";
    FAULT_GARBAGE = "fault.garbage", Fault, Some(502), Error, "Garbage upstream",
        expects: "502",
        summary: "The upstream answers with bytes that are not HTTP.",
        reference: "RFC 9110 §15.6.3";
    FAULT_SLOW = "fault.slow", Fault, Some(504), Error, "Slow upstream",
        expects: "504",
        summary: "The upstream answers after the gateway's timeout.",
        reference: "RFC 9110 §15.6.5";
    FAULT_STATUS_PASSTHROUGH = "fault.status_passthrough", Fault, None, Error, "Status pass-through",
        expects: "upstream 500/503 passed through unchanged",
        summary: "The gateway must not normalise the upstream's 5xx.",
        reference: "RFC 9110 §15";
    FAULT_TRUNCATED = "fault.truncated", Fault, None, Error, "Truncated upstream",
        expects: "truncation not presented as a complete success",
        summary: "The upstream dies mid-body or lies about Content-Length.",
        reference: "RFC 9112 §6.3, §8";
    FAULT_UPSTREAM_IDENTITY = "fault.upstream_identity", Fault, None, Warn, "Upstream identity",
        expects: "gateway-made 5xx name the failing upstream and failure type",
        summary: "5xx answers carry X-Upstream-Service / X-Failure-Type where the gateway supports it.",
        reference: "candor contract §1";

    // Section 5: static rules over an OpenAPI 3.0 or 3.1 document.
    SPEC_SECURED_WITHOUT_401 = "spec.secured_without_401", Spec, Some(401), Warn, "Secured operation without 401",
        expects: "an operation that requires credentials declares a 401 response",
        summary: "A secured operation does not document what a caller without valid credentials gets.",
        reference: "RFC 9110 §15.5.2; RFC 6750 §3.1";
    SPEC_401_WITHOUT_CHALLENGE = "spec.401_without_challenge", Spec, Some(401), Error, "401 declared without challenge",
        expects: "a declared 401 response declares a WWW-Authenticate header",
        summary: "A 401 response is declared without the WWW-Authenticate header every 401 must carry.",
        reference: "RFC 9110 §15.5.2, §11.6.1";
    SPEC_ROLES_WITHOUT_403 = "spec.roles_without_403", Spec, Some(403), Warn, "Roles without 403",
        expects: "an operation that requires roles declares 403 (404 when x-concealed)",
        summary: "An operation restricted to roles or scopes does not document the answer to a caller who lacks them.",
        reference: "RFC 9110 §15.5.4; RFC 6750 §3.1";
    SPEC_429_WITHOUT_RETRY_AFTER = "spec.429_without_retry_after", Spec, Some(429), Error, "429 declared without Retry-After",
        expects: "a declared 429 response declares a Retry-After header",
        summary: "A 429 response is declared without saying when to retry.",
        reference: "RFC 6585 §4; RFC 9110 §10.2.3";
    SPEC_201_WITHOUT_LOCATION = "spec.201_without_location", Spec, Some(201), Warn, "201 declared without Location",
        expects: "a declared 201 response declares a Location header",
        summary: "A 201 response is declared without saying where the new resource is.",
        reference: "RFC 9110 §15.3.2, §10.2.2";
    SPEC_204_WITH_CONTENT = "spec.204_with_content", Spec, Some(204), Error, "204 declared with content",
        expects: "a declared 204 response declares no content",
        summary: "A 204 response is declared with content, which a 204 cannot carry.",
        reference: "RFC 9110 §15.3.5";
    SPEC_ERROR_NOT_PROBLEM_JSON = "spec.error_not_problem_json", Spec, None, Warn, "Error not problem+json",
        expects: "4xx/5xx (and error default) responses with JSON content use application/problem+json",
        summary: "An error response declares JSON content that is not application/problem+json.",
        reference: "RFC 9457 §3";
    SPEC_ONLY_200 = "spec.only_200", Spec, None, Warn, "Only 2xx declared",
        expects: "an operation that takes input or credentials declares its 4xx/5xx answers",
        summary: "An operation that can fail (it takes input or is secured) declares nothing but 2xx responses (200, 201, 204, 2XX...) or default.",
        reference: "RFC 9110 §15";
    SPEC_422_WITHOUT_400 = "spec.422_without_400", Spec, Some(400), Warn, "422 declared without 400",
        expects: "an operation that takes a JSON body and declares 422 also declares 400",
        summary: "An operation takes a JSON body and declares 422 but no 400: a body that is not valid JSON must get 400 (body.malformed); 422 is for well-formed input the server cannot process.",
        reference: "RFC 9110 §15.5.1, §15.5.21; candor contract body.malformed";
    SPEC_405_WITHOUT_ALLOW = "spec.405_without_allow", Spec, Some(405), Error, "405 declared without Allow",
        expects: "a declared 405 response declares an Allow header",
        summary: "A 405 response is declared without the Allow header it must carry.",
        reference: "RFC 9110 §15.5.6, §10.2.1";
    SPEC_410_WITHOUT_LINK = "spec.410_without_link", Spec, Some(410), Info, "410 declared without Link",
        expects: "a declared 410 response declares a Link header (rel=\"successor-version\")",
        summary: "A 410 response is declared without a Link to what replaced the resource.",
        reference: "RFC 9110 §15.5.11; RFC 8288 §3; RFC 5829";
    SPEC_ROLES_IN_SCOPES = "spec.roles_in_scopes", Spec, None, Warn, "Roles in non-OAuth scopes",
        expects: "OpenAPI 3.0: scopes only for oauth2/openIdConnect schemes; roles in x-roles",
        summary: "An OpenAPI 3.0 security requirement lists roles for a scheme that is not oauth2 or openIdConnect; 3.0 requires an empty list there, so use x-roles (or OpenAPI 3.1).",
        reference: "OpenAPI 3.0.3, Security Requirement Object";
    SPEC_UNRESOLVED_REF = "spec.unresolved_ref", Spec, None, Warn, "Unresolved $ref",
        expects: "every $ref is local (#/...) and points at a node of the document",
        summary: "A $ref that is remote (never fetched), dangling or cyclic; what it refers to is not checked.",
        reference: "RFC 6901; RFC 3986 §4.1; OpenAPI 3.1.0, Reference Object";
}

/// Looks a rule up by its ID.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|r| r.id == id)
}

/// The rules of one section, in catalog order.
pub fn section(section: Section) -> impl Iterator<Item = &'static Rule> {
    RULES.iter().copied().filter(move |r| r.section == section)
}

/// The catalog as a Markdown document: the source of `docs/rules.md`.
///
/// A test compares the committed file with this output, so the docs and the
/// code cannot drift apart.
pub fn catalog_markdown() -> String {
    let mut out = String::from(
        "# Rule catalog\n\n\
         <!-- Generated by `candor rules --format markdown`; do not edit by hand. -->\n\n\
         Every rule of the status-code contract, by stable ID. The same IDs name\n\
         findings in reports, labels in metrics and problem `type` URIs\n\
         (`tag:candor.dev,2026:rule/<id>`).\n\n\
         Severity: `error` breaks an RFC MUST or the contract, `warn` a SHOULD or\n\
         the guide, `info` is advice.\n",
    );
    for sec in Section::ALL {
        out.push_str(&format!("\n## {}. {}\n\n", sec.number(), sec.title()));
        out.push_str("| ID | status | severity | expects | summary | reference |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for r in section(sec) {
            let status = r.status.map_or_else(|| "-".to_owned(), |s| s.to_string());
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} |\n",
                r.id,
                status,
                r.severity,
                md_cell(r.expects),
                md_cell(r.summary),
                md_cell(r.reference)
            ));
        }
    }
    out
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_type_uris_follow_the_prefix() {
        let mut seen = HashSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "duplicate rule id {}", r.id);
            assert_eq!(r.type_uri, format!("{TYPE_URI_PREFIX}{}", r.id));
        }
    }

    #[test]
    fn every_section_has_rules_and_lookup_finds_them() {
        assert_eq!(section(Section::Gateway).count(), 36);
        assert_eq!(section(Section::Passive).count(), 17);
        assert_eq!(section(Section::Probe).count(), 14);
        assert!(section(Section::Fault).count() >= 7);
        assert_eq!(section(Section::Spec).count(), 13);
        assert!(section(Section::Spec).all(|r| r.id.starts_with("spec.")));
        assert_eq!(
            RULES.len(),
            Section::ALL
                .iter()
                .map(|&s| section(s).count())
                .sum::<usize>(),
            "every rule is in a listed section"
        );
        assert_eq!(rule("rate.limited").unwrap().status, Some(429));
        assert!(rule("no.such.rule").is_none());
    }

    #[test]
    fn docs_rules_md_matches_the_catalog() {
        let committed = include_str!("../../../docs/rules.md");
        assert!(
            committed == catalog_markdown(),
            "docs/rules.md is stale: run `cargo run -- rules --format markdown > docs/rules.md`"
        );
    }
}
