//! The validated internal configuration: what the gateway runs on.
//!
//! Never deserialized directly: the TOML surface (`file.rs`) is parsed,
//! checked and converted into these types by `load/`, so every value here
//! has already been validated (durations parsed, upstream names resolved,
//! paths accepted by the router, files readable).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::Method;

/// A whole gateway configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub gateway: Gateway,
    /// How clients authenticate (`[auth]`, `[auth.jwt]`, `[auth.api_keys]`).
    pub auth: Auth,
    /// Upstreams by name.
    pub upstreams: BTreeMap<String, Arc<Upstream>>,
    /// Routes in file order.
    pub routes: Vec<Route>,
    /// Rate-limit policies by name.
    pub rate_limits: BTreeMap<String, Arc<RateLimit>>,
    /// Trace export (`[traces]`); None: tracing is off.
    pub traces: Option<Arc<Traces>>,
}

/// The `[traces]` table: spans exported over OTLP/HTTP (protobuf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traces {
    /// The collector's traces URL, `http://host:port/v1/traces`.
    pub endpoint: http::Uri,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// Finished spans waiting for export; beyond, spans are dropped.
    pub queue: usize,
    /// Spans per export request, at most.
    pub batch: usize,
    /// How long a started batch waits for more spans.
    pub interval: Duration,
    /// How long an export request may take.
    pub timeout: Duration,
}

/// The `[gateway]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Gateway {
    pub listen: SocketAddr,
    /// Admin listener: `/metrics`, `/healthz`, `/readyz`. None: no admin.
    pub admin_listen: Option<SocketAddr>,
    /// The realm of every challenge the gateway sends.
    pub realm: String,
    /// Send `X-Upstream-Service` / `X-Failure-Type` on gateway-made 5xx
    /// (a route may turn them off).
    pub debug_headers: bool,
    /// Beyond this many requests in flight: 503 `gateway.overloaded`.
    pub max_concurrent_requests: usize,
    /// Beyond this request body size: 413 `body.too_large`.
    pub max_body_bytes: u64,
    /// Beyond this header section size (names + values): 431.
    pub max_header_bytes: usize,
    /// Beyond this request-target length: 414.
    pub max_uri_bytes: usize,
    /// Keep `%2F` / `%5C` in paths as data instead of refusing them
    /// (`request.path_unsafe`).
    pub keep_encoded_slashes: bool,
    /// The longest wait for the next piece of a request body; beyond:
    /// 408 `request.body_timeout`.
    pub body_timeout: Duration,
    /// How long SIGTERM waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// How long a client connection may stay open with no request in
    /// progress: before its first byte, and between requests.
    pub idle_timeout: Duration,
    /// How long a request head may take to arrive, from its first byte.
    pub header_timeout: Duration,
    /// Client connections open at once; more wait in the kernel's backlog.
    /// None: derived from the descriptor limit at start
    /// (`clients::default_max_connections`).
    pub max_connections: Option<usize>,
    /// Worker threads, each with its own event loop, listener (SO_REUSEPORT)
    /// and upstream connections; 0: one per core.
    pub workers: usize,
    /// Serve TLS (with ALPN h2 and http/1.1) instead of cleartext.
    pub tls: Option<Tls>,
    /// Write one JSON access log line per request (to stdout, or to
    /// `access_log_path`).
    pub access_log: bool,
    /// The file the access log is appended to (reopened on SIGUSR1); None:
    /// stdout. Read at start: a reload does not move the log.
    pub access_log_path: Option<PathBuf>,
    /// Serve the HTTP/1.1 requests it takes on the direct path
    /// (`direct.rs`); off: every request goes through hyper.
    pub direct_path: bool,
    /// A gateway-wide maintenance window.
    pub maintenance: Option<Maintenance>,
}

/// Certificate chain and private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// An `[upstreams.NAME]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    pub name: String,
    /// `host:port` targets, used round robin.
    pub targets: Vec<String>,
    pub connect_timeout: Duration,
    /// Until the response head arrives; beyond: 504.
    pub response_timeout: Duration,
    /// Pooled connections idle longer than this are closed (keep it below
    /// the upstream's own keep-alive timeout).
    pub pool_idle_timeout: Duration,
    /// Consecutive connect failures that eject a target.
    pub eject_after: u32,
    /// How long an ejected target stays out.
    pub eject_for: Duration,
    /// Run the contract's passive checks on this upstream's responses.
    pub monitor: bool,
    /// Largest JSON body the monitor inspects.
    pub monitor_body_bytes: usize,
    /// What the gateway adds when this upstream leaves it out.
    pub repair: Repair,
    /// Speak HTTPS to the targets.
    pub tls: Option<UpstreamTls>,
}

/// HTTPS to an upstream: the server certificate is verified against `ca`,
/// or against the system's trusted roots when `ca` is unset. The name
/// checked is the target's host (an IP address needs an IP SAN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// PEM file of the certificate authorities to trust.
    pub ca: Option<PathBuf>,
}

/// Repairs the gateway makes to an upstream's responses (and counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repair {
    /// Add `WWW-Authenticate: Bearer realm="<realm>"` to a 401 without one.
    pub challenge: bool,
    /// Add `Retry-After` to a 429 or 503 without one.
    pub retry_after: bool,
}

/// A `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The matchit pattern, e.g. `/users/{id}` or `/docs/v1/{*rest}`.
    pub path: String,
    /// The methods served; None serves every method.
    pub methods: Option<Vec<Method>>,
    pub action: Action,
    pub deprecated: Option<Deprecation>,
    pub maintenance: Option<Maintenance>,
    /// Overrides `[gateway] debug_headers` for this route.
    pub debug_headers: Option<bool>,
    /// Which credentials the route accepts.
    pub auth: RouteAuth,
    /// Roles of which the client needs any one (empty: none needed).
    pub roles: Vec<String>,
    /// Answer a denial as an unknown route (404), hiding the route.
    pub conceal: bool,
    /// JSON Schema (2020-12) request bodies must match; read with the config.
    pub request_schema: Option<SchemaDoc>,
    /// The `[rate_limits.NAME]` this route counts against.
    pub rate_limit: Option<String>,
    /// A leading part of the (normalised) path taken off before it goes
    /// upstream, and sent as `X-Forwarded-Prefix`.
    pub strip_prefix: Option<String>,
    /// Put before the path that goes upstream (after `strip_prefix`).
    pub add_prefix: Option<String>,
    /// Fields set, added and removed on the way upstream.
    pub request_headers: Option<HeaderEdits>,
    /// Fields set, added and removed on the upstream's answer.
    pub response_headers: Option<HeaderEdits>,
    /// Cross-origin requests the route admits (the gateway answers
    /// preflights itself).
    pub cors: Option<Cors>,
    /// 1-based line of the entry in its file, for messages.
    pub line: Option<usize>,
}

/// A route's edits of one side's fields. A `set` or `remove` name drops
/// every field of that name that came; `set` and `add` fields are then
/// appended. Names and values were checked, and none is a field that
/// frames the message or that the gateway sets itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    pub set: Vec<(http::HeaderName, http::HeaderValue)>,
    pub add: Vec<(http::HeaderName, http::HeaderValue)>,
    pub remove: Vec<http::HeaderName>,
}

impl HeaderEdits {
    /// Whether a field that came named `name` (any case) is dropped.
    pub fn drops(&self, name: &[u8]) -> bool {
        self.set
            .iter()
            .map(|(n, _)| n)
            .chain(&self.remove)
            .any(|n| n.as_str().as_bytes().eq_ignore_ascii_case(name))
    }

    /// The fields appended: `set` then `add`, each in name order.
    pub fn added(&self) -> impl Iterator<Item = &(http::HeaderName, http::HeaderValue)> {
        self.set.iter().chain(&self.add)
    }
}

/// A route's CORS policy (the Fetch standard's CORS protocol).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// The origins admitted, as browsers serialise them; None: any (`*`).
    pub origins: Option<Vec<String>>,
    pub methods: Vec<Method>,
    /// Request fields a preflight may ask for (lower case).
    pub headers: Vec<http::HeaderName>,
    /// Response fields scripts may read.
    pub expose: Vec<http::HeaderName>,
    pub credentials: bool,
    /// How long a browser may cache a preflight's answer.
    pub max_age: Option<Duration>,
}

/// What a route does with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Forward to this upstream.
    Proxy { upstream: String },
    /// Answer 410, with a successor link when known.
    Retired { successor: Option<String> },
}

/// RFC 9745 / RFC 8594 deprecation of a route that is still served.
#[derive(Debug, Clone, PartialEq)]
pub struct Deprecation {
    /// When the route was (or will be) deprecated; the `Deprecation` date.
    /// Unset: the Unix epoch, i.e. "already deprecated".
    pub since: Option<SystemTime>,
    /// When the route stops being served; the `Sunset` date.
    pub sunset: Option<SystemTime>,
    /// Where to read about it; sent as `Link: <..>; rel="deprecation"`.
    pub link: Option<String>,
}

/// A maintenance window: 503 with Retry-After while it is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Maintenance {
    /// Opens at this time; None: open from the moment it is configured.
    pub from: Option<SystemTime>,
    pub until: SystemTime,
}

impl Maintenance {
    /// Whether the window is open at `now`.
    pub fn is_open(&self, now: SystemTime) -> bool {
        self.from.is_none_or(|from| from <= now) && now < self.until
    }
}

/// Authentication settings shared by every route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub jwt: Option<Jwt>,
    pub api_keys: Option<ApiKeys>,
    /// `[auth.external]`: an auth service asked about each request.
    pub external: Option<ExternalAuth>,
    /// Header carrying the authenticated subject to the upstream.
    pub subject_header: http::HeaderName,
    /// Header carrying the roles (comma-separated) to the upstream.
    pub roles_header: http::HeaderName,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            jwt: None,
            api_keys: None,
            external: None,
            subject_header: http::HeaderName::from_static("x-auth-subject"),
            roles_header: http::HeaderName::from_static("x-auth-roles"),
        }
    }
}

/// `[auth.jwt]`: bearer tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwt {
    /// Accepted `alg` values (pinned; `none` is never accepted).
    pub algorithms: Vec<String>,
    pub key: JwtKey,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway: Duration,
    /// Claim holding an array of role names; the space-separated `scope`
    /// claim is read too.
    pub roles_claim: String,
}

/// Where the JWT verification keys come from.
#[derive(Clone, PartialEq, Eq)]
pub enum JwtKey {
    /// A shared secret for HS256/384/512.
    Secret(String),
    /// A JWKS document (RS*, PS*, ES256/384, EdDSA), read (and checked)
    /// with the config, so a reload picks up rotated keys.
    Jwks { path: PathBuf, json: String },
}

/// `[auth.external]`: an auth service (an `[upstreams.NAME]` entry) that
/// introspects each request's credentials, RFC 7662 style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalAuth {
    /// The upstream the service runs on (its timeouts, pool, ejection).
    pub upstream: String,
    /// The origin-form path the gateway posts to.
    pub path: String,
    /// The request fields the service receives (lowercase names).
    pub send: Vec<http::HeaderName>,
    /// The answer's member holding the subject.
    pub subject: String,
    /// The answer's member holding the roles (array, or space-separated).
    pub roles: String,
    /// The longest the whole check may take; beyond: 504.
    pub timeout: Duration,
    pub cache: Option<AuthCache>,
}

/// Answers of the auth service kept for a while, keyed by the fields sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthCache {
    /// How long an allowed answer is kept.
    pub ttl: Duration,
    /// How long a denial (401, 403, inactive) is kept.
    pub negative_ttl: Duration,
    pub max_entries: usize,
}

/// `[auth.api_keys]`: keys in a header, looked up by their SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeys {
    pub header: http::HeaderName,
    /// The header name as configured, for the challenge (`X-API-Key`).
    pub header_text: String,
    /// The keys file, read with the config.
    pub file: PathBuf,
    pub keys: Vec<ApiKey>,
}

/// One entry of the keys file: the key itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub sha256: [u8; 32],
    pub subject: String,
    pub roles: Vec<String>,
}

/// What a route accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RouteAuth {
    #[default]
    None,
    Jwt,
    ApiKey,
    /// A bearer token or an API key.
    Any,
    /// Whatever `[auth.external]`'s service says.
    External,
}

/// Never prints the secret.
impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtKey::Secret(_) => f.write_str("Secret(<redacted>)"),
            JwtKey::Jwks { path, .. } => f
                .debug_struct("Jwks")
                .field("path", path)
                .finish_non_exhaustive(),
        }
    }
}

/// A JSON Schema document named by a route's `request_schema`.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaDoc {
    pub path: PathBuf,
    pub json: serde_json::Value,
}

/// A `[rate_limits.NAME]` policy: GCRA, `requests` per `per`, bursts up to
/// `requests`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub name: String,
    pub requests: u32,
    pub per: Duration,
    pub key: RateKey,
    pub store: RateStore,
    pub on_store_error: OnStoreError,
}

/// What a quota is counted per.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    /// The authenticated subject (the client address on open routes).
    Subject,
    /// The client address.
    Ip,
    /// The API key's subject (the client address without one).
    ApiKey,
    /// A request header's value (`-` when absent).
    Header(http::HeaderName),
}

/// Where quota state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateStore {
    /// In this process (governor).
    Memory,
    /// In Redis, shared by every gateway using the same server
    /// (`redis://host:port/db` or `redis+unix:///path/to/socket`).
    Redis(String),
}

/// What to do when the store cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStoreError {
    /// Let the request through (and count it).
    Allow,
    /// Answer 503 with Retry-After.
    Deny,
}
