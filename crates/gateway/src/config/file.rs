//! The TOML surface of the gateway configuration, exactly as users write it.
//!
//! Nothing here is validated: `load/` checks every value and converts it into
//! the internal model. Values that are checked later keep their `Spanned`
//! position so that an error can name the line it comes from.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a gateway configuration")]
pub(super) struct FileConfig {
    #[serde(default)]
    pub(super) gateway: FileGateway,
    #[serde(default)]
    pub(super) auth: FileAuth,
    #[serde(default)]
    pub(super) upstreams: BTreeMap<String, Spanned<FileUpstream>>,
    #[serde(default)]
    pub(super) routes: Vec<Spanned<FileRoute>>,
    #[serde(default)]
    pub(super) rate_limits: BTreeMap<String, Spanned<FileRateLimit>>,
    pub(super) traces: Option<Spanned<FileTraces>>,
}

/// `[traces]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of trace export settings")]
pub(super) struct FileTraces {
    pub(super) endpoint: Spanned<String>,
    pub(super) service_name: Option<Spanned<String>>,
    pub(super) queue: Option<Spanned<i64>>,
    pub(super) batch: Option<Spanned<i64>>,
    pub(super) interval: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
}

/// `[rate_limits.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of rate-limit settings")]
pub(super) struct FileRateLimit {
    pub(super) requests: Spanned<i64>,
    pub(super) per: Spanned<String>,
    pub(super) key: Option<Spanned<String>>,
    pub(super) store: Option<Spanned<String>>,
    pub(super) on_store_error: Option<Spanned<String>>,
}

/// `[gateway]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of gateway settings")]
pub(super) struct FileGateway {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) admin_listen: Option<Spanned<String>>,
    pub(super) realm: Option<Spanned<String>>,
    pub(super) debug_headers: Option<bool>,
    pub(super) max_concurrent_requests: Option<Spanned<i64>>,
    pub(super) max_body_bytes: Option<Spanned<i64>>,
    pub(super) max_header_bytes: Option<Spanned<i64>>,
    pub(super) max_uri_bytes: Option<Spanned<i64>>,
    pub(super) keep_encoded_slashes: Option<bool>,
    pub(super) body_timeout: Option<Spanned<String>>,
    pub(super) shutdown_grace: Option<Spanned<String>>,
    pub(super) idle_timeout: Option<Spanned<String>>,
    pub(super) header_timeout: Option<Spanned<String>>,
    pub(super) max_connections: Option<Spanned<i64>>,
    pub(super) workers: Option<Spanned<i64>>,
    pub(super) access_log: Option<Spanned<bool>>,
    pub(super) access_log_path: Option<Spanned<String>>,
    pub(super) direct_path: Option<bool>,
    pub(super) tls: Option<FileTls>,
    pub(super) maintenance: Option<Spanned<FileMaintenance>>,
}

/// `tls = { cert = "..", key = ".." }`
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table like { cert = \"cert.pem\", key = \"key.pem\" }"
)]
pub(super) struct FileTls {
    pub(super) cert: Spanned<String>,
    pub(super) key: Spanned<String>,
}

/// `maintenance = { from = "..", until = ".." }`
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table like { until = \"2026-12-01T06:00:00Z\" }"
)]
pub(super) struct FileMaintenance {
    pub(super) from: Option<Spanned<String>>,
    pub(super) until: Spanned<String>,
}

/// `[auth]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of authentication settings")]
pub(super) struct FileAuth {
    pub(super) subject_header: Option<Spanned<String>>,
    pub(super) roles_header: Option<Spanned<String>>,
    pub(super) jwt: Option<Spanned<FileJwt>>,
    pub(super) api_keys: Option<Spanned<FileApiKeys>>,
    pub(super) external: Option<Spanned<FileExternal>>,
}

/// `[auth.external]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of external auth settings")]
pub(super) struct FileExternal {
    pub(super) upstream: Spanned<String>,
    pub(super) path: Option<Spanned<String>>,
    pub(super) send: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) subject: Option<Spanned<String>>,
    pub(super) roles: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) cache: Option<Spanned<FileAuthCache>>,
}

/// `cache = { ttl = "..", negative_ttl = "..", max_entries = N }`
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table like { ttl = \"30s\", negative_ttl = \"5s\", max_entries = 10000 }"
)]
pub(super) struct FileAuthCache {
    pub(super) ttl: Spanned<String>,
    pub(super) negative_ttl: Option<Spanned<String>>,
    pub(super) max_entries: Option<Spanned<i64>>,
}

/// `[auth.jwt]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of JWT settings")]
pub(super) struct FileJwt {
    pub(super) algorithms: Spanned<Vec<Spanned<String>>>,
    pub(super) secret: Option<Spanned<String>>,
    pub(super) jwks_file: Option<Spanned<String>>,
    pub(super) issuer: Option<Spanned<String>>,
    pub(super) audience: Option<Spanned<String>>,
    pub(super) leeway: Option<Spanned<String>>,
    pub(super) roles_claim: Option<Spanned<String>>,
}

/// `[auth.api_keys]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of API key settings")]
pub(super) struct FileApiKeys {
    pub(super) header: Option<Spanned<String>>,
    pub(super) file: Spanned<String>,
}

/// The API keys file that `[auth.api_keys] file` names: a file of its own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an API keys file")]
pub(super) struct FileKeysFile {
    #[serde(default)]
    pub(super) keys: Vec<Spanned<FileKey>>,
}

/// One `[[keys]]` entry of the keys file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of API key settings")]
pub(super) struct FileKey {
    pub(super) sha256: Spanned<String>,
    pub(super) subject: Spanned<String>,
    pub(super) roles: Option<Vec<Spanned<String>>>,
}

/// `[upstreams.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of upstream settings")]
pub(super) struct FileUpstream {
    pub(super) targets: Spanned<Vec<Spanned<String>>>,
    pub(super) connect_timeout: Option<Spanned<String>>,
    pub(super) response_timeout: Option<Spanned<String>>,
    pub(super) pool_idle_timeout: Option<Spanned<String>>,
    pub(super) eject_after: Option<Spanned<i64>>,
    pub(super) eject_for: Option<Spanned<String>>,
    pub(super) monitor: Option<bool>,
    pub(super) monitor_body_bytes: Option<Spanned<i64>>,
    pub(super) repair: Option<Vec<FileRepair>>,
    pub(super) tls: Option<FileUpstreamTls>,
}

/// An upstream's `tls = { ca = ".." }` (or `tls = {}`: the system's roots).
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table like { ca = \"ca.pem\" } or {}"
)]
pub(super) struct FileUpstreamTls {
    pub(super) ca: Option<Spanned<String>>,
}

/// One entry of an upstream's `repair` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum FileRepair {
    Challenge,
    RetryAfter,
}

/// `[[routes]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of route settings")]
pub(super) struct FileRoute {
    pub(super) path: Spanned<String>,
    pub(super) methods: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) upstream: Option<Spanned<String>>,
    pub(super) retired: Option<Spanned<FileRetired>>,
    pub(super) deprecated: Option<Spanned<FileDeprecated>>,
    pub(super) maintenance: Option<Spanned<FileMaintenance>>,
    pub(super) debug_headers: Option<bool>,
    pub(super) auth: Option<Spanned<FileRouteAuth>>,
    pub(super) roles: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) conceal: Option<Spanned<bool>>,
    pub(super) rate_limit: Option<Spanned<String>>,
    pub(super) request_schema: Option<Spanned<String>>,
    pub(super) strip_prefix: Option<Spanned<String>>,
    pub(super) add_prefix: Option<Spanned<String>>,
    pub(super) request_headers: Option<Spanned<FileHeaderEdits>>,
    pub(super) response_headers: Option<Spanned<FileHeaderEdits>>,
    pub(super) cors: Option<Spanned<FileCors>>,
}

/// A route's `request_headers` / `response_headers`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table like { set = { \"X-Name\" = \"value\" }, add = { .. }, remove = [\"X-Name\"] }"
)]
pub(super) struct FileHeaderEdits {
    pub(super) set: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    pub(super) add: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    pub(super) remove: Option<Vec<Spanned<String>>>,
}

/// A route's `cors`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of CORS settings")]
pub(super) struct FileCors {
    pub(super) allow_origins: Spanned<Vec<Spanned<String>>>,
    pub(super) allow_methods: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) allow_headers: Option<Vec<Spanned<String>>>,
    pub(super) expose_headers: Option<Vec<Spanned<String>>>,
    pub(super) allow_credentials: Option<Spanned<bool>>,
    pub(super) max_age: Option<Spanned<String>>,
}

/// A route's `auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum FileRouteAuth {
    None,
    Jwt,
    ApiKey,
    Any,
    External,
}

/// `retired = { successor = ".." }`
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table like { successor = \"/v2\" } (or {} without a successor)"
)]
pub(super) struct FileRetired {
    pub(super) successor: Option<Spanned<String>>,
}

/// `deprecated = { since = "..", sunset = "..", link = ".." }`
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table like { sunset = \"2027-06-30T00:00:00Z\", link = \"https://..\" }"
)]
pub(super) struct FileDeprecated {
    pub(super) since: Option<Spanned<String>>,
    pub(super) sunset: Option<Spanned<String>>,
    pub(super) link: Option<Spanned<String>>,
}
