//! Reads a configuration file into the validated model.
//!
//! Parse with spans, expand `${VAR}` in every string, deserialize the surface
//! (`file.rs`), then check and convert each value. Every error names the file,
//! the line and the dotted key it is about; an error inside the API keys file
//! names that file.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use candor_contract::parse_duration;
use http::{HeaderName, Method};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::file::{
    FileApiKeys, FileAuth, FileConfig, FileDeprecated, FileGateway, FileJwt, FileKeysFile,
    FileMaintenance, FileRateLimit, FileRepair, FileRoute, FileRouteAuth, FileUpstream,
};
use super::model::{
    Action, ApiKey, ApiKeys, Auth, Config, Deprecation, Gateway, Jwt, JwtKey, Maintenance,
    OnStoreError, RateKey, RateLimit, RateStore, Repair, Route, RouteAuth, Tls, Upstream,
    UpstreamTls,
};

const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8080,
));
const DEFAULT_REALM: &str = "api";
const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 10_000;
const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
const DEFAULT_MAX_URI_BYTES: usize = 8 * 1024;
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// nginx's `keepalive_timeout`: above the 60 s idle timeout of common load
/// balancers, so that the one in front closes an idle connection first.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// Half of nginx's `client_header_timeout`: a head is a few packets.
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// As nginx's `client_body_timeout`.
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(15);
const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);
const DEFAULT_EJECT_AFTER: u32 = 3;
const DEFAULT_EJECT_FOR: Duration = Duration::from_secs(10);
const DEFAULT_MONITOR_BODY_BYTES: usize = 64 * 1024;
const DEFAULT_JWT_LEEWAY: Duration = Duration::from_secs(30);
const DEFAULT_ROLES_CLAIM: &str = "roles";
const DEFAULT_API_KEY_HEADER: &str = "x-api-key";

/// The JWT algorithms `[auth.jwt] algorithms` accepts.
const JWT_ALGORITHMS: [&str; 12] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "EdDSA",
];

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

/// Why a configuration was refused.
///
/// Displays as `FILE:LINE: KEY: message`, or `FILE: message` when the file
/// itself could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be opened or read.
    #[error("{}: {error}", .file.display())]
    Read {
        file: PathBuf,
        error: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("{}: not valid UTF-8 (line {line})", .file.display())]
    NotUtf8 { file: PathBuf, line: usize },
    /// A syntax error or a bad value at a known place in the file.
    #[error("{}", Located { file, line: *line, key, message })]
    Invalid {
        file: PathBuf,
        /// 1-based.
        line: usize,
        /// 1-based, in characters.
        column: usize,
        /// Dotted key path such as `upstreams.accounts.connect_timeout` or
        /// `routes[2].path`; empty when the error is not about one key.
        key: String,
        message: String,
    },
}

struct Located<'a> {
    file: &'a Path,
    line: usize,
    key: &'a str,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(self.message)
    }
}

/// Reads, checks and converts the configuration file at `path`; `${NAME}`
/// is looked up in the process environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let bytes = std::fs::read(path).map_err(|error| ConfigError::Read {
        file: path.to_path_buf(),
        error,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        ConfigError::NotUtf8 {
            file: path.to_path_buf(),
            line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
        }
    })?;
    load_str(&text, path, &|name| std::env::var(name).ok())
}

/// Checks and converts a configuration held in memory.
///
/// `origin` names the file in messages, and relative paths (TLS files, the
/// JWKS and API keys files) are resolved against its directory. `env` resolves `${NAME}` references.
pub fn load_str(
    text: &str,
    origin: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let src = Source { text, origin };
    let file: FileConfig = src.parse(Some(env))?;
    build(file, &src)
}

/// Resolves `${NAME}` references.
type Env<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// The text being loaded and where it came from.
struct Source<'a> {
    text: &'a str,
    origin: &'a Path,
}

impl Source<'_> {
    /// Parses the text with spans, expands `${NAME}` when `env` is given,
    /// and deserializes the surface `T`.
    fn parse<T: DeserializeOwned>(&self, env: Option<&Env<'_>>) -> Result<T, ConfigError> {
        let (mut root, errors) = DeTable::parse_recoverable(self.text);
        if let Some(first) = errors
            .iter()
            .min_by_key(|e| e.span().map_or(usize::MAX, |s| s.start))
        {
            return Err(self.syntax_error(first, root.get_ref()));
        }
        if let Some(env) = env {
            prepare_table(root.get_mut(), "", self, env)?;
        }
        T::deserialize(toml::de::Deserializer::from(root)).map_err(|e| self.surface_error(&e))
    }

    fn error(&self, span: Range<usize>, key: &str, message: impl fmt::Display) -> ConfigError {
        let (line, column) = self.line_col(span.start);
        ConfigError::Invalid {
            file: self.origin.to_path_buf(),
            line,
            column,
            key: key.to_owned(),
            message: message.to_string(),
        }
    }

    fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        (line, before[line_start..].chars().count() + 1)
    }

    fn line(&self, span: &Range<usize>) -> usize {
        self.line_col(span.start).0
    }

    /// A TOML syntax error; `partial` is what could be parsed around it.
    fn syntax_error(&self, error: &toml::de::Error, partial: &DeTable<'_>) -> ConfigError {
        let span = error.span().unwrap_or(0..0);
        let key = key_at(partial, span.start).unwrap_or_default();
        let found = self.text.get(span.clone()).unwrap_or_default();
        let message = if error.message() == "duplicate key" && !found.is_empty() {
            format!("duplicate key `{found}`")
        } else {
            error.message().to_owned()
        };
        self.error(span, &key, message)
    }

    /// A structural error from deserializing the surface: unknown key,
    /// missing key, wrong type.
    fn surface_error(&self, error: &toml::de::Error) -> ConfigError {
        let span = error.span().unwrap_or(0..0);
        let key = DeTable::parse(self.text)
            .ok()
            .and_then(|root| key_at(root.get_ref(), span.start))
            .unwrap_or_default();
        self.error(span, &key, in_toml_terms(error.message()))
    }

    /// The directory relative paths are resolved against.
    fn base_dir(&self) -> &Path {
        self.origin.parent().unwrap_or(Path::new(""))
    }
}

/// Rewords serde's type names into TOML's: "expected i64" reads as
/// "expected an integer".
fn in_toml_terms(message: &str) -> String {
    // An integer beyond i64: "invalid type: integer `N` as i128, expected i64".
    if message.contains(" as i128")
        && let Some(number) = message.split('`').nth(1)
    {
        return format!("{number} is too large");
    }
    message
        .replace("expected i64", "expected an integer")
        .replace("expected a sequence", "expected an array")
        .replace("invalid type: sequence", "invalid type: array")
        .replace("invalid type: map", "invalid type: table")
}

/// Appends `key` to a dotted key path, quoting it when it is not a bare key.
fn join_key(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key: Cow<'_, str> = if bare {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(format!("{key:?}"))
    };
    if parent.is_empty() {
        key.into_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// The dotted path of the deepest key or value containing `offset`.
fn key_at(table: &DeTable<'_>, offset: usize) -> Option<String> {
    fn in_table(table: &DeTable<'_>, offset: usize, path: &str) -> Option<String> {
        table.iter().find_map(|(key, value)| {
            let path = join_key(path, key.get_ref());
            in_value(value, offset, &path).or_else(|| contains(&key.span(), offset).then_some(path))
        })
    }
    fn in_value(value: &Spanned<DeValue<'_>>, offset: usize, path: &str) -> Option<String> {
        let deeper = match value.get_ref() {
            DeValue::Table(table) => in_table(table, offset, path),
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| in_value(item, offset, &format!("{path}[{i}]"))),
            _ => None,
        };
        deeper.or_else(|| contains(&value.span(), offset).then(|| path.to_owned()))
    }
    fn contains(span: &Range<usize>, offset: usize) -> bool {
        span.start <= offset && offset < span.end.max(span.start + 1)
    }
    in_table(table, offset, "")
}

/// Expands `${NAME}` in every string and turns TOML datetimes into strings,
/// so that `until = 2026-12-01T06:00:00Z` works unquoted too.
fn prepare_table(
    table: &mut DeTable<'_>,
    path: &str,
    src: &Source<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for (key, value) in table.iter_mut() {
        prepare_value(value, &join_key(path, key.get_ref()), src, env)?;
    }
    Ok(())
}

fn prepare_value(
    value: &mut Spanned<DeValue<'_>>,
    path: &str,
    src: &Source<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let span = value.span();
    if let DeValue::Datetime(datetime) = value.get_ref() {
        let text = datetime.to_string();
        *value.get_mut() = DeValue::String(Cow::Owned(text));
        return Ok(());
    }
    match value.get_mut() {
        DeValue::String(text) => {
            if let Some(expanded) = expand_env(text, env).map_err(|m| src.error(span, path, m))? {
                *text = Cow::Owned(expanded);
            }
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                prepare_value(item, &format!("{path}[{i}]"), src, env)?;
            }
        }
        DeValue::Table(table) => prepare_table(table, path, src, env)?,
        _ => {}
    }
    Ok(())
}

/// Replaces each `${NAME}` with the variable's value; `$${` stands for a
/// literal `${`. `None`: nothing to replace.
fn expand_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, String> {
    if !text.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let tail = &rest[dollar..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err("unterminated \"${\" (write \"$${\" for a literal \"${\")".to_owned());
            };
            let (name, default) = match after[..end].split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (&after[..end], None),
            };
            let valid_name = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid_name {
                return Err(format!(
                    "invalid environment variable name {name:?} in \"${{{name}}}\""
                ));
            }
            match (env(name), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(format!("environment variable {name} is not set"));
                }
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(Some(out))
}

fn build(file: FileConfig, src: &Source<'_>) -> Result<Config, ConfigError> {
    let gateway = build_gateway(file.gateway, src)?;
    let auth = build_auth(file.auth, src)?;
    let mut upstreams = BTreeMap::new();
    for (name, upstream) in file.upstreams {
        let upstream = build_upstream(&name, upstream, src)?;
        upstreams.insert(name, Arc::new(upstream));
    }
    let routes = file
        .routes
        .into_iter()
        .enumerate()
        .map(|(i, route)| build_route(i, route, &upstreams, &auth, src))
        .collect::<Result<Vec<_>, _>>()?;
    check_routing(&routes, src)?;
    let mut rate_limits = BTreeMap::new();
    for (name, limit) in file.rate_limits {
        let limit = build_rate_limit(&name, limit, src)?;
        rate_limits.insert(name, Arc::new(limit));
    }
    for checked in &routes {
        if let Some(name) = &checked.rate_limit
            && !rate_limits.contains_key(name.get_ref())
        {
            return Err(src.error(
                name.span(),
                &format!("{}.rate_limit", checked.key),
                format!("no [rate_limits.{}] is defined", name.get_ref()),
            ));
        }
    }
    Ok(Config {
        gateway,
        auth,
        upstreams,
        routes: routes.into_iter().map(|checked| checked.route).collect(),
        rate_limits,
    })
}

fn build_gateway(g: FileGateway, src: &Source<'_>) -> Result<Gateway, ConfigError> {
    let listen = match &g.listen {
        Some(value) => socket_addr(value, "gateway.listen", src)?,
        None => DEFAULT_LISTEN,
    };
    let admin_listen = match &g.admin_listen {
        Some(value) => {
            let admin = socket_addr(value, "gateway.admin_listen", src)?;
            if admin == listen && admin.port() != 0 {
                return Err(src.error(
                    value.span(),
                    "gateway.admin_listen",
                    format!(
                        "{admin} is also gateway.listen; the admin listener needs its own address"
                    ),
                ));
            }
            Some(admin)
        }
        None => None,
    };
    let realm = match g.realm {
        Some(realm) => {
            let ok = !realm.get_ref().is_empty()
                && realm
                    .get_ref()
                    .bytes()
                    .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
            if !ok {
                return Err(src.error(
                    realm.span(),
                    "gateway.realm",
                    format!(
                        "invalid realm {:?}: use printable ASCII without '\"' or '\\'",
                        realm.get_ref()
                    ),
                ));
            }
            realm.into_inner()
        }
        None => DEFAULT_REALM.to_owned(),
    };
    let tls = match &g.tls {
        Some(tls) => Some(Tls {
            cert: readable_file(&tls.cert, "gateway.tls.cert", src)?,
            key: readable_file(&tls.key, "gateway.tls.key", src)?,
        }),
        None => None,
    };
    let maintenance = g
        .maintenance
        .map(|m| maintenance(m, "gateway.maintenance", src))
        .transpose()?;
    Ok(Gateway {
        listen,
        admin_listen,
        realm,
        debug_headers: g.debug_headers.unwrap_or(true),
        max_concurrent_requests: count(
            g.max_concurrent_requests,
            "gateway.max_concurrent_requests",
            DEFAULT_MAX_CONCURRENT_REQUESTS,
            src,
        )?,
        max_body_bytes: count(
            g.max_body_bytes,
            "gateway.max_body_bytes",
            DEFAULT_MAX_BODY_BYTES,
            src,
        )?,
        max_header_bytes: count(
            g.max_header_bytes,
            "gateway.max_header_bytes",
            DEFAULT_MAX_HEADER_BYTES,
            src,
        )?,
        max_uri_bytes: count(
            g.max_uri_bytes,
            "gateway.max_uri_bytes",
            DEFAULT_MAX_URI_BYTES,
            src,
        )?,
        keep_encoded_slashes: g.keep_encoded_slashes.unwrap_or(false),
        body_timeout: duration(
            g.body_timeout,
            "gateway.body_timeout",
            DEFAULT_BODY_TIMEOUT,
            Zero::Refused,
            src,
        )?,
        shutdown_grace: duration(
            g.shutdown_grace,
            "gateway.shutdown_grace",
            DEFAULT_SHUTDOWN_GRACE,
            Zero::Allowed,
            src,
        )?,
        idle_timeout: duration(
            g.idle_timeout,
            "gateway.idle_timeout",
            DEFAULT_IDLE_TIMEOUT,
            Zero::Refused,
            src,
        )?,
        header_timeout: duration(
            g.header_timeout,
            "gateway.header_timeout",
            DEFAULT_HEADER_TIMEOUT,
            Zero::Refused,
            src,
        )?,
        max_connections: g
            .max_connections
            .map(|n| count(Some(n), "gateway.max_connections", 0, src))
            .transpose()?,
        workers: match g.workers {
            // 0: one worker per core.
            Some(v) if *v.get_ref() == 0 => 0,
            other => count(other, "gateway.workers", 0, src)?,
        },
        tls,
        access_log: g.access_log.unwrap_or(true),
        direct_path: g.direct_path.unwrap_or(true),
        maintenance,
    })
}

/// `[auth]`: the credentials routes may ask for, and the headers that carry
/// the client's identity to the upstream.
fn build_auth(a: FileAuth, src: &Source<'_>) -> Result<Auth, ConfigError> {
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
    Ok(Auth {
        jwt,
        api_keys,
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

/// `[auth.jwt]`
fn build_jwt(jwt: Spanned<FileJwt>, src: &Source<'_>) -> Result<Jwt, ConfigError> {
    let span = jwt.span();
    let j = jwt.into_inner();
    let algorithms = jwt_algorithms(&j.algorithms, src)?;
    // One kind only (checked above): either every algorithm is HS* or none is.
    let first = algorithms[0];
    let shared_secret = first.family() == AlgorithmFamily::Hmac;
    let key = match (&j.secret, &j.jwks_file) {
        (Some(_), Some(file)) => {
            return Err(src.error(
                file.span(),
                "auth.jwt.jwks_file",
                "give either `secret` or `jwks_file`, not both",
            ));
        }
        (None, None) => {
            let needed = if shared_secret {
                "`secret`, the shared key"
            } else {
                "`jwks_file`, the issuer's public keys"
            };
            return Err(src.error(span, "auth.jwt", format!("{first:?} needs {needed}")));
        }
        (Some(secret), None) => JwtKey::Secret(jwt_secret(secret, &algorithms, src)?),
        (None, Some(file)) => {
            if shared_secret {
                return Err(src.error(
                    file.span(),
                    "auth.jwt.jwks_file",
                    format!("{first:?} verifies with a shared `secret`, not with public keys"),
                ));
            }
            jwks(file, &algorithms, src)?
        }
    };
    let issuer = j
        .issuer
        .map(|v| not_empty(v, "auth.jwt.issuer", src))
        .transpose()?;
    let audience = j
        .audience
        .map(|v| not_empty(v, "auth.jwt.audience", src))
        .transpose()?;
    let roles_claim = match j.roles_claim {
        Some(claim) => not_empty(claim, "auth.jwt.roles_claim", src)?,
        None => DEFAULT_ROLES_CLAIM.to_owned(),
    };
    Ok(Jwt {
        algorithms: algorithms.iter().map(|a| format!("{a:?}")).collect(),
        key,
        issuer,
        audience,
        leeway: duration(
            j.leeway,
            "auth.jwt.leeway",
            DEFAULT_JWT_LEEWAY,
            Zero::Allowed,
            src,
        )?,
        roles_claim,
    })
}

/// `algorithms`: known names, no duplicates, and never `none`; HS* and
/// public-key algorithms are not mixed.
fn jwt_algorithms(
    list: &Spanned<Vec<Spanned<String>>>,
    src: &Source<'_>,
) -> Result<Vec<Algorithm>, ConfigError> {
    if list.get_ref().is_empty() {
        return Err(src.error(
            list.span(),
            "auth.jwt.algorithms",
            "lists no algorithm; name the ones your tokens are signed with, e.g. [\"RS256\"]",
        ));
    }
    let mut out: Vec<Algorithm> = Vec::with_capacity(list.get_ref().len());
    for (i, name) in list.get_ref().iter().enumerate() {
        let key = format!("auth.jwt.algorithms[{i}]");
        let text = name.get_ref().as_str();
        if text.eq_ignore_ascii_case("none") {
            return Err(src.error(
                name.span(),
                &key,
                format!("{text:?} would accept unsigned tokens; it is never allowed"),
            ));
        }
        let parsed = JWT_ALGORITHMS
            .contains(&text)
            .then(|| text.parse::<Algorithm>().ok())
            .flatten();
        let Some(algorithm) = parsed else {
            return Err(src.error(
                name.span(),
                &key,
                format!(
                    "unknown algorithm {text:?}; expected one of {}",
                    JWT_ALGORITHMS.join(", ")
                ),
            ));
        };
        if out.contains(&algorithm) {
            return Err(src.error(name.span(), &key, format!("duplicate algorithm {text}")));
        }
        if let Some(&first) = out.first()
            && (first.family() == AlgorithmFamily::Hmac)
                != (algorithm.family() == AlgorithmFamily::Hmac)
        {
            return Err(src.error(
                name.span(),
                &key,
                format!(
                    "{text} cannot be listed with {first:?}: mixing shared-secret (HS*) and \
                     public-key algorithms invites algorithm confusion"
                ),
            ));
        }
        out.push(algorithm);
    }
    Ok(out)
}

/// An HMAC secret at least as long as the longest hash it is used with
/// (RFC 7518 section 3.2).
fn jwt_secret(
    secret: &Spanned<String>,
    algorithms: &[Algorithm],
    src: &Source<'_>,
) -> Result<String, ConfigError> {
    let key = "auth.jwt.secret";
    let first = algorithms[0];
    if first.family() != AlgorithmFamily::Hmac {
        return Err(src.error(
            secret.span(),
            key,
            format!(
                "a shared secret is for HS256, HS384 and HS512; {first:?} verifies with the \
                 public keys of `jwks_file`"
            ),
        ));
    }
    let hash_bytes = |algorithm: Algorithm| match algorithm {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    };
    let longest = algorithms
        .iter()
        .copied()
        .max_by_key(|&a| hash_bytes(a))
        .unwrap_or(first);
    let needed = hash_bytes(longest);
    let len = secret.get_ref().len();
    if len < needed {
        return Err(src.error(
            secret.span(),
            key,
            format!(
                "is {len} bytes; {longest:?} needs a secret of at least {needed} bytes, the size \
                 of its hash (RFC 7518 section 3.2)"
            ),
        ));
    }
    Ok(secret.get_ref().clone())
}

/// `jwks_file`: read and checked now, so that a broken key set is refused
/// with the configuration instead of failing every request.
fn jwks(
    value: &Spanned<String>,
    algorithms: &[Algorithm],
    src: &Source<'_>,
) -> Result<JwtKey, ConfigError> {
    let key = "auth.jwt.jwks_file";
    let (path, json) = read_text(value, key, src)?;
    let shown = format!("{:?}", path.display().to_string());
    let invalid = |why: String| src.error(value.span(), key, format!("{shown} {why}"));
    let set: JwkSet = serde_json::from_str(&json)
        .map_err(|e| invalid(format!("is not a JWKS ({{\"keys\": [..]}}): {e}")))?;
    if set.keys.is_empty() {
        return Err(invalid("holds no keys".to_owned()));
    }
    for (i, jwk) in set.keys.iter().enumerate() {
        match &jwk.algorithm {
            AlgorithmParameters::OctetKey(_) => {
                return Err(invalid(format!(
                    "holds a shared secret at keys[{i}] (\"kty\": \"oct\"); a JWKS here holds \
                     public keys only"
                )));
            }
            AlgorithmParameters::RSA(_)
            | AlgorithmParameters::EllipticCurve(_)
            | AlgorithmParameters::OctetKeyPair(_) => {}
            _ => {
                return Err(invalid(format!(
                    "keys[{i}] is not a public key: expected \"kty\" \"RSA\" (with n, e), \"EC\" \
                     (crv, x, y) or \"OKP\" (crv, x)"
                )));
            }
        }
        if let Err(e) = DecodingKey::from_jwk(jwk) {
            return Err(invalid(format!("keys[{i}] is not a valid key: {e}")));
        }
    }
    if !set
        .keys
        .iter()
        .any(|jwk| algorithms.iter().any(|&a| jwk_verifies(jwk, a)))
    {
        let names: Vec<String> = algorithms.iter().map(|a| format!("{a:?}")).collect();
        return Err(invalid(format!(
            "has no signing key for {}",
            names.join(", ")
        )));
    }
    Ok(JwtKey::Jwks { path, json })
}

/// Whether `jwk` can verify signatures made with `algorithm`.
fn jwk_verifies(jwk: &Jwk, algorithm: Algorithm) -> bool {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return false;
    }
    if let Some(declared) = jwk.common.key_algorithm
        && declared.to_string().parse::<Algorithm>().ok() != Some(algorithm)
    {
        return false;
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => algorithm.family() == AlgorithmFamily::Rsa,
        AlgorithmParameters::EllipticCurve(ec) => matches!(
            (&ec.curve, algorithm),
            (EllipticCurve::P256, Algorithm::ES256) | (EllipticCurve::P384, Algorithm::ES384)
        ),
        AlgorithmParameters::OctetKeyPair(okp) => {
            okp.curve == EllipticCurve::Ed25519 && algorithm == Algorithm::EdDSA
        }
        _ => false,
    }
}

/// `[auth.api_keys]` and the keys file it names.
fn build_api_keys(
    k: FileApiKeys,
    header: HeaderName,
    src: &Source<'_>,
) -> Result<ApiKeys, ConfigError> {
    // The challenge names the header as the configuration spells it.
    let header_text = k
        .header
        .as_ref()
        .map_or_else(|| "X-API-Key".to_owned(), |h| h.get_ref().trim().to_owned());
    let (file, text) = read_text(&k.file, "auth.api_keys.file", src)?;
    let keys_src = Source {
        text: &text,
        origin: &file,
    };
    let surface: FileKeysFile = keys_src.parse(None)?;
    let keys = api_keys(surface, &keys_src)?;
    Ok(ApiKeys {
        header,
        header_text,
        file,
        keys,
    })
}

/// The entries of a keys file; errors name the keys file and its lines.
fn api_keys(surface: FileKeysFile, src: &Source<'_>) -> Result<Vec<ApiKey>, ConfigError> {
    let mut seen: HashMap<[u8; 32], (usize, usize)> = HashMap::new();
    let mut keys = Vec::with_capacity(surface.keys.len());
    for (i, entry) in surface.keys.into_iter().enumerate() {
        let key = format!("keys[{i}]");
        let line = src.line(&entry.span());
        let entry = entry.into_inner();
        // Never echo the value: it may be the key itself, pasted by mistake.
        let Some(sha256) = parse_sha256(entry.sha256.get_ref()) else {
            return Err(src.error(
                entry.sha256.span(),
                &format!("{key}.sha256"),
                "expected 64 hex digits",
            ));
        };
        if let Some((other, other_line)) = seen.get(&sha256) {
            return Err(src.error(
                entry.sha256.span(),
                &format!("{key}.sha256"),
                format!("duplicate key: also keys[{other}] at line {other_line}"),
            ));
        }
        seen.insert(sha256, (i, line));
        let subject = entry.subject.get_ref();
        let problem = if subject.is_empty() {
            Some("must not be empty")
        } else if !subject.bytes().all(|b| (b' '..=b'~').contains(&b)) || subject.trim() != subject
        {
            Some(
                "must be printable ASCII without leading or trailing spaces: it is sent to the \
                 upstream in a header",
            )
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(src.error(entry.subject.span(), &format!("{key}.subject"), problem));
        }
        let roles = role_names(
            entry.roles.unwrap_or_default(),
            &format!("{key}.roles"),
            src,
        )?;
        keys.push(ApiKey {
            sha256,
            subject: entry.subject.into_inner(),
            roles,
        });
    }
    Ok(keys)
}

/// 64 hex digits, either case.
fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let value = |digit: u8| char::from(digit).to_digit(16);
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = u8::try_from(value(pair[0])? * 16 + value(pair[1])?).ok()?;
    }
    Some(out)
}

/// Role names, sent upstream comma-separated: printable ASCII without
/// spaces or commas, each once.
fn role_names(
    list: Vec<Spanned<String>>,
    key: &str,
    src: &Source<'_>,
) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, role) in list.into_iter().enumerate() {
        let name = role.get_ref();
        let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b',');
        if !valid {
            return Err(src.error(
                role.span(),
                &format!("{key}[{i}]"),
                format!("invalid role {name:?}: use printable ASCII without spaces or commas"),
            ));
        }
        if out.contains(name) {
            return Err(src.error(
                role.span(),
                &format!("{key}[{i}]"),
                format!("duplicate role {name:?}"),
            ));
        }
        out.push(role.into_inner());
    }
    Ok(out)
}

/// A string that must say something.
fn not_empty(value: Spanned<String>, key: &str, src: &Source<'_>) -> Result<String, ConfigError> {
    if value.get_ref().is_empty() {
        return Err(src.error(value.span(), key, "must not be empty"));
    }
    Ok(value.into_inner())
}

fn build_upstream(
    name: &str,
    upstream: Spanned<FileUpstream>,
    src: &Source<'_>,
) -> Result<Upstream, ConfigError> {
    let key = join_key("upstreams", name);
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid_name {
        return Err(src.error(
            upstream.span(),
            &key,
            "an upstream name may only use ASCII letters, digits, '-', '_' and '.'",
        ));
    }
    let u = upstream.into_inner();
    if u.targets.get_ref().is_empty() {
        return Err(src.error(
            u.targets.span(),
            &format!("{key}.targets"),
            "needs at least one target (host:port)",
        ));
    }
    let mut targets = Vec::with_capacity(u.targets.get_ref().len());
    for (i, target) in u.targets.into_inner().into_iter().enumerate() {
        if let Err(why) = check_target(target.get_ref()) {
            return Err(src.error(
                target.span(),
                &format!("{key}.targets[{i}]"),
                format!(
                    "invalid target {:?}: {why}; expected host:port, e.g. 127.0.0.1:9001",
                    target.get_ref()
                ),
            ));
        }
        targets.push(target.into_inner());
    }
    let repair = u.repair.unwrap_or_default();
    let tls = match &u.tls {
        None => None,
        Some(t) => Some(UpstreamTls {
            ca: match &t.ca {
                Some(ca) => Some(readable_file(ca, &format!("{key}.tls.ca"), src)?),
                None => None,
            },
        }),
    };
    Ok(Upstream {
        name: name.to_owned(),
        targets,
        connect_timeout: duration(
            u.connect_timeout,
            &format!("{key}.connect_timeout"),
            DEFAULT_CONNECT_TIMEOUT,
            Zero::Refused,
            src,
        )?,
        response_timeout: duration(
            u.response_timeout,
            &format!("{key}.response_timeout"),
            DEFAULT_RESPONSE_TIMEOUT,
            Zero::Refused,
            src,
        )?,
        pool_idle_timeout: duration(
            u.pool_idle_timeout,
            &format!("{key}.pool_idle_timeout"),
            DEFAULT_POOL_IDLE_TIMEOUT,
            Zero::Refused,
            src,
        )?,
        eject_after: count(
            u.eject_after,
            &format!("{key}.eject_after"),
            DEFAULT_EJECT_AFTER,
            src,
        )?,
        eject_for: duration(
            u.eject_for,
            &format!("{key}.eject_for"),
            DEFAULT_EJECT_FOR,
            Zero::Refused,
            src,
        )?,
        monitor: u.monitor.unwrap_or(false),
        monitor_body_bytes: count(
            u.monitor_body_bytes,
            &format!("{key}.monitor_body_bytes"),
            DEFAULT_MONITOR_BODY_BYTES,
            src,
        )?,
        repair: Repair {
            challenge: repair.contains(&FileRepair::Challenge),
            retry_after: repair.contains(&FileRepair::RetryAfter),
        },
        tls,
    })
}

/// `host:port`, where host is a name, an IPv4 address or a bracketed IPv6
/// address.
fn check_target(target: &str) -> Result<(), &'static str> {
    if target.contains("://") {
        return Err("targets take no scheme");
    }
    let (host, port) = if let Some(bracketed) = target.strip_prefix('[') {
        let (ip, port) = bracketed
            .split_once("]:")
            .ok_or("an IPv6 address needs a port after the ']'")?;
        ip.parse::<Ipv6Addr>().map_err(|_| "invalid IPv6 address")?;
        (None, port)
    } else {
        let (host, port) = target.rsplit_once(':').ok_or("missing port")?;
        (Some(host), port)
    };
    if let Some(host) = host {
        if host.contains(':') {
            return Err("write an IPv6 address in brackets, e.g. [::1]:9001");
        }
        let ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !ok {
            return Err("invalid host");
        }
    }
    match port.parse::<u16>() {
        Ok(0) => Err("port 0 cannot be connected to"),
        Ok(_) if port.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err("invalid port"),
    }
}

/// A route with what the cross-route checks need.
struct CheckedRoute {
    rate_limit: Option<Spanned<String>>,
    route: Route,
    key: String,
    path_span: Range<usize>,
    line: usize,
}

fn build_route(
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
        Some(methods) => Some(route_methods(methods, &key, src)?),
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
            line: Some(line),
        },
        rate_limit: r.rate_limit,
        key,
        path_span: r.path.span(),
        line,
    })
}

/// A route's `request_schema`: read, parsed and compiled now, so that a
/// broken schema is refused with the configuration instead of at a request.
fn request_schema(
    value: &Spanned<String>,
    action: &Action,
    key: &str,
    src: &Source<'_>,
) -> Result<super::model::SchemaDoc, ConfigError> {
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
    let doc = super::model::SchemaDoc { path, json };
    crate::validate::Schema::compile(&doc).map_err(|why| src.error(value.span(), &key, why))?;
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
    };
    let (jwt, api_keys) = (auth.jwt.is_some(), auth.api_keys.is_some());
    let missing = match method {
        RouteAuth::Jwt if !jwt => Some(("jwt", "an [auth.jwt] table")),
        RouteAuth::ApiKey if !api_keys => Some(("api_key", "an [auth.api_keys] table")),
        RouteAuth::Any if !(jwt && api_keys) => {
            Some(("any", "both [auth.jwt] and [auth.api_keys]"))
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
                    "roles need an auth method: set `auth` to \"jwt\", \"api_key\" or \"any\"",
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

fn route_methods(
    methods: Spanned<Vec<Spanned<String>>>,
    key: &str,
    src: &Source<'_>,
) -> Result<Vec<Method>, ConfigError> {
    if methods.get_ref().is_empty() {
        return Err(src.error(
            methods.span(),
            &format!("{key}.methods"),
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
                &format!("{key}.methods[{i}]"),
                format!("invalid method {:?}", method.get_ref()),
            ));
        };
        if out.contains(&parsed) {
            return Err(src.error(
                method.span(),
                &format!("{key}.methods[{i}]"),
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

fn deprecation(d: FileDeprecated, key: &str, src: &Source<'_>) -> Result<Deprecation, ConfigError> {
    let since = match &d.since {
        Some(since) => Some(date(since, &format!("{key}.since"), src)?),
        None => None,
    };
    let sunset = match &d.sunset {
        Some(sunset) => Some(date(sunset, &format!("{key}.sunset"), src)?),
        None => None,
    };
    if let (Some(since_at), Some(sunset_at), Some(sunset_text)) = (since, sunset, &d.sunset)
        && sunset_at <= since_at
    {
        return Err(src.error(
            sunset_text.span(),
            &format!("{key}.sunset"),
            "the sunset must come after `since`",
        ));
    }
    let link = match d.link {
        Some(url) => Some(link(url, &format!("{key}.link"), src)?),
        None => None,
    };
    Ok(Deprecation {
        since,
        sunset,
        link,
    })
}

fn maintenance(
    m: Spanned<FileMaintenance>,
    key: &str,
    src: &Source<'_>,
) -> Result<Maintenance, ConfigError> {
    let m = m.into_inner();
    let until = date(&m.until, &format!("{key}.until"), src)?;
    let from = match &m.from {
        Some(from) => Some(date(from, &format!("{key}.from"), src)?),
        None => None,
    };
    if from.is_some_and(|from| until <= from) {
        return Err(src.error(
            m.until.span(),
            &format!("{key}.until"),
            "the window must end (`until`) after it starts (`from`)",
        ));
    }
    Ok(Maintenance { from, until })
}

/// A URI reference sent inside `Link: <...>`.
fn link(value: Spanned<String>, key: &str, src: &Source<'_>) -> Result<String, ConfigError> {
    let text = value.get_ref();
    let ok = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"'));
    if !ok {
        return Err(src.error(
            value.span(),
            key,
            format!(
                "invalid link {text:?}: expected a URI without spaces, quotes or angle brackets"
            ),
        ));
    }
    Ok(value.into_inner())
}

/// Two routes on one path are one route split by method; otherwise every
/// path must be accepted by the router next to the others.
fn check_routing(routes: &[CheckedRoute], src: &Source<'_>) -> Result<(), ConfigError> {
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

fn socket_addr(
    value: &Spanned<String>,
    key: &str,
    src: &Source<'_>,
) -> Result<SocketAddr, ConfigError> {
    value.get_ref().parse().map_err(|_| {
        src.error(
            value.span(),
            key,
            format!(
                "invalid address {:?}: expected IP:port, e.g. 127.0.0.1:8080",
                value.get_ref()
            ),
        )
    })
}

/// Resolves a path against the config file's directory and checks it can be
/// opened.
fn readable_file(
    value: &Spanned<String>,
    key: &str,
    src: &Source<'_>,
) -> Result<PathBuf, ConfigError> {
    let path = src.base_dir().join(value.get_ref());
    let problem = match std::fs::File::open(&path) {
        Ok(file) if file.metadata().is_ok_and(|m| m.is_dir()) => Some("is a directory".to_owned()),
        Ok(_) => None,
        Err(error) => Some(format!("cannot be opened: {error}")),
    };
    match problem {
        Some(problem) => Err(src.error(
            value.span(),
            key,
            format!("{:?} {problem}", path.display().to_string()),
        )),
        None => Ok(path),
    }
}

/// Resolves a path against the config file's directory and reads it as
/// UTF-8 text.
fn read_text(
    value: &Spanned<String>,
    key: &str,
    src: &Source<'_>,
) -> Result<(PathBuf, String), ConfigError> {
    let path = readable_file(value, key, src)?;
    let text = std::fs::read(&path)
        .map_err(|error| format!("cannot be read: {error}"))
        .and_then(|bytes| String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_owned()));
    match text {
        Ok(text) => Ok((path, text)),
        Err(problem) => Err(src.error(
            value.span(),
            key,
            format!("{:?} {problem}", path.display().to_string()),
        )),
    }
}

/// A positive integer that fits `T`.
fn count<T: TryFrom<i64>>(
    value: Option<Spanned<i64>>,
    key: &str,
    default: T,
    src: &Source<'_>,
) -> Result<T, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let n = *value.get_ref();
    if n <= 0 {
        return Err(src.error(
            value.span(),
            key,
            format!("must be greater than 0, not {n}"),
        ));
    }
    T::try_from(n).map_err(|_| src.error(value.span(), key, format!("{n} is too large")))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Zero {
    Allowed,
    Refused,
}

fn duration(
    value: Option<Spanned<String>>,
    key: &str,
    default: Duration,
    zero: Zero,
    src: &Source<'_>,
) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let parsed = parse_duration(value.get_ref()).map_err(|e| src.error(value.span(), key, e))?;
    if parsed.is_zero() && zero == Zero::Refused {
        return Err(src.error(value.span(), key, "must be greater than 0"));
    }
    Ok(parsed)
}

fn date(value: &Spanned<String>, key: &str, src: &Source<'_>) -> Result<SystemTime, ConfigError> {
    parse_rfc3339(value.get_ref()).map_err(|why| {
        src.error(
            value.span(),
            key,
            format!(
                "invalid date {:?}: {why}; expected RFC 3339, e.g. 2026-12-01T06:00:00Z",
                value.get_ref()
            ),
        )
    })
}

/// Parses an RFC 3339 timestamp with a `Z` or `+hh:mm` offset, e.g.
/// `2026-12-01T06:00:00Z` or `2026-12-01T08:00:00.5+02:00`.
fn parse_rfc3339(text: &str) -> Result<SystemTime, String> {
    let b = text.as_bytes();
    let layout = "expected YYYY-MM-DDThh:mm:ss";
    let number = |at: usize, len: usize| -> Result<u32, String> {
        let digits = b.get(at..at + len).ok_or(layout)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(layout.to_owned());
        }
        Ok(digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let separator = |at: usize, allowed: &[u8]| -> Result<(), String> {
        match b.get(at) {
            Some(c) if allowed.contains(c) => Ok(()),
            _ => Err(layout.to_owned()),
        }
    };
    let year = number(0, 4)?;
    separator(4, b"-")?;
    let month = number(5, 2)?;
    separator(7, b"-")?;
    let day = number(8, 2)?;
    separator(10, b"Tt")?;
    let hour = number(11, 2)?;
    separator(13, b":")?;
    let minute = number(14, 2)?;
    separator(16, b":")?;
    let second = number(17, 2)?;
    let mut at = 19;

    let mut nanos = 0u32;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return Err("the fraction of a second has no digits".to_owned());
        }
        let mut scale = 100_000_000;
        for digit in &b[start..at.min(start + 9)] {
            nanos += u32::from(digit - b'0') * scale;
            scale /= 10;
        }
    }

    let missing_offset = "missing the offset: end with Z or +hh:mm";
    let offset_secs: i64 = match b.get(at) {
        Some(b'Z' | b'z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let hours = number(at + 1, 2).map_err(|_| missing_offset)?;
            separator(at + 3, b":").map_err(|_| missing_offset)?;
            let minutes = number(at + 4, 2).map_err(|_| missing_offset)?;
            if hours > 23 || minutes > 59 {
                return Err(format!("offset {hours:02}:{minutes:02} is out of range"));
            }
            at += 6;
            let secs = i64::from(hours * 3600 + minutes * 60);
            if sign == b'+' { secs } else { -secs }
        }
        _ => return Err(missing_offset.to_owned()),
    };
    if at != b.len() {
        return Err(format!("unexpected {:?} after the offset", &text[at..]));
    }

    if year == 0 {
        return Err("year 0000 is out of range".to_owned());
    }
    if !(1..=12).contains(&month) {
        return Err(format!("month {month:02} is out of range"));
    }
    let month_days = days_in_month(year, month);
    if !(1..=month_days).contains(&day) {
        return Err(format!(
            "day {day:02} is out of range: {year:04}-{month:02} has {month_days} days"
        ));
    }
    if hour > 23 || minute > 59 {
        return Err(format!("time {hour:02}:{minute:02} is out of range"));
    }
    if second > 59 {
        return Err(format!(
            "second {second:02} is out of range (leap seconds are not supported)"
        ));
    }

    let days = days_since_epoch(year, month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    let time = if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs.unsigned_abs(), nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            + Duration::from_nanos(u64::from(nanos))
    };
    Ok(time)
}

/// Formats `time` as an RFC 3339 instant in UTC to the second, e.g.
/// `2026-12-01T06:00:00Z`: what [`parse_rfc3339`] reads (for instants from
/// 1970 on; earlier ones print as the epoch).
pub fn format_rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut days = secs / 86_400;
    let mut year = 1970;
    loop {
        let in_year = if is_leap_year(year) { 366 } else { 365 };
        if days < in_year {
            break;
        }
        days -= in_year;
        year += 1;
    }
    let mut month = 1;
    while days >= u64::from(days_in_month(year, month)) {
        days -= u64::from(days_in_month(year, month));
        month += 1;
    }
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{:02}T{:02}:{:02}:{:02}Z",
        days + 1,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn is_leap_year(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given (valid) date in the proleptic
/// Gregorian calendar; negative before 1970.
fn days_since_epoch(year: u32, month: u32, day: u32) -> i64 {
    // Days in the years 1..year, counting every leap day.
    let days_before_year = |year: u32| {
        let y = i64::from(year) - 1;
        y * 365 + y / 4 - y / 100 + y / 400
    };
    let days_before_month: i64 = (1..month).map(|m| i64::from(days_in_month(year, m))).sum();
    days_before_year(year) - days_before_year(1970) + days_before_month + i64::from(day) - 1
}

/// `[rate_limits.NAME]`.
fn build_rate_limit(
    name: &str,
    limit: Spanned<FileRateLimit>,
    src: &Source<'_>,
) -> Result<RateLimit, ConfigError> {
    let key = join_key("rate_limits", name);
    let l = limit.into_inner();
    let requests: u32 = count(Some(l.requests), &format!("{key}.requests"), 1, src)?;
    let per = duration(
        Some(l.per.clone()),
        &format!("{key}.per"),
        Duration::ZERO,
        Zero::Refused,
        src,
    )?;
    let rate_key = match &l.key {
        None => RateKey::Subject,
        Some(k) => {
            match k.get_ref().as_str() {
                "subject" => RateKey::Subject,
                "ip" => RateKey::Ip,
                "api_key" => RateKey::ApiKey,
                other => match other.strip_prefix("header:") {
                    Some(h) => RateKey::Header(
                        HeaderName::from_bytes(h.trim().as_bytes()).map_err(|_| {
                            src.error(
                                k.span(),
                                &format!("{key}.key"),
                                format!("{h:?} is not a header name"),
                            )
                        })?,
                    ),
                    None => {
                        return Err(src.error(
                        k.span(),
                        &format!("{key}.key"),
                        format!("unknown key {other:?}: expected subject, ip, api_key or header:NAME"),
                    ));
                    }
                },
            }
        }
    };
    let store = match &l.store {
        None => RateStore::Memory,
        Some(s) if s.get_ref() == "memory" => RateStore::Memory,
        Some(s) => {
            let url = s.get_ref();
            let scheme_ok = ["redis://", "rediss://", "redis+unix://", "unix://"]
                .iter()
                .any(|p| url.starts_with(p));
            if !scheme_ok {
                return Err(src.error(
                    s.span(),
                    &format!("{key}.store"),
                    format!(
                        "{url:?}: expected \"memory\", redis://HOST:PORT/DB or redis+unix:///PATH"
                    ),
                ));
            }
            RateStore::Redis(url.clone())
        }
    };
    let on_store_error = match l.on_store_error.as_ref().map(|v| v.get_ref().as_str()) {
        None | Some("allow") => OnStoreError::Allow,
        Some("deny") => OnStoreError::Deny,
        Some(other) => {
            let span = l
                .on_store_error
                .as_ref()
                .map(|v| v.span())
                .unwrap_or_default();
            return Err(src.error(
                span,
                &format!("{key}.on_store_error"),
                format!("{other:?}: expected \"allow\" or \"deny\""),
            ));
        }
    };
    Ok(RateLimit {
        name: name.to_owned(),
        requests,
        per,
        key: rate_key,
        store,
        on_store_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> Result<i64, String> {
        parse_rfc3339(text).map(|t| match t.duration_since(UNIX_EPOCH) {
            Ok(after) => after.as_secs() as i64,
            Err(before) => -(before.duration().as_secs() as i64),
        })
    }

    #[test]
    fn formatted_instants_parse_back() {
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        for secs in [0, 59, 86_399, 951_782_400, 1_795_000_000, 4_102_444_799] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(parse_rfc3339(&format_rfc3339(t)), Ok(t), "{secs}");
        }
        assert_eq!(
            format_rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_000_000)),
            "2026-11-18T11:06:40Z"
        );
    }

    #[test]
    fn dates_are_rfc3339_instants() {
        assert_eq!(secs("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(secs("2026-12-01T06:00:00Z"), Ok(1_796_104_800));
        assert_eq!(secs("2026-12-01t06:00:00z"), Ok(1_796_104_800));
        assert_eq!(secs("2026-12-01T08:30:00+02:30"), Ok(1_796_104_800));
        assert_eq!(secs("2026-12-01T01:00:00-05:00"), Ok(1_796_104_800));
        assert_eq!(secs("2026-12-01T06:00:00-00:00"), Ok(1_796_104_800));
        assert_eq!(secs("2027-06-30T00:00:00Z"), Ok(1_814_313_600));
        assert_eq!(secs("2000-02-29T23:59:59Z"), Ok(951_868_799));
        assert_eq!(secs("1969-12-31T23:59:59Z"), Ok(-1));
        assert_eq!(secs("9999-12-31T23:59:59Z"), Ok(253_402_300_799));
    }

    #[test]
    fn fractional_seconds_keep_nanoseconds() {
        let at = |text: &str| {
            parse_rfc3339(text)
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
        };
        assert_eq!(at("1970-01-01T00:00:01.5Z"), Duration::from_millis(1500));
        assert_eq!(
            at("1970-01-01T00:00:00.123456789Z"),
            Duration::from_nanos(123_456_789)
        );
        assert_eq!(
            at("1970-01-01T00:00:00.1234567891234Z"),
            Duration::from_nanos(123_456_789)
        );
        assert!(parse_rfc3339("1970-01-01T00:00:00.Z").is_err());
        let before = UNIX_EPOCH.duration_since(parse_rfc3339("1969-12-31T23:59:59.25Z").unwrap());
        assert_eq!(before.unwrap(), Duration::from_millis(750));
    }

    #[test]
    fn leap_years_follow_the_gregorian_rules() {
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_ok());
        assert!(parse_rfc3339("2000-02-29T00:00:00Z").is_ok());
        let err = parse_rfc3339("2023-02-29T00:00:00Z").unwrap_err();
        assert_eq!(err, "day 29 is out of range: 2023-02 has 28 days");
        assert!(parse_rfc3339("1900-02-29T00:00:00Z").is_err());
        assert!(parse_rfc3339("2100-02-29T00:00:00Z").is_err());
        assert!(parse_rfc3339("2026-04-31T00:00:00Z").is_err());
        assert!(parse_rfc3339("2026-12-31T00:00:00Z").is_ok());
    }

    #[test]
    fn dates_refuse_anything_loose() {
        for text in [
            "",
            "2026-12-01",
            "2026-12-01T06:00:00",
            "2026-12-01 06:00:00Z",
            "2026-12-01T06:00Z",
            "2026-12-1T06:00:00Z",
            "26-12-01T06:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-12-00T00:00:00Z",
            "2026-12-32T00:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T23:60:00Z",
            "2026-12-31T23:59:60Z",
            "2026-12-01T06:00:00+0200",
            "2026-12-01T06:00:00+02",
            "2026-12-01T06:00:00+24:00",
            "2026-12-01T06:00:00+02:60",
            "2026-12-01T06:00:00Z ",
            "2026-12-01T06:00:00ZZ",
            "0000-01-01T00:00:00Z",
            "２026-12-01T06:00:00Z",
            "Tue, 01 Dec 2026 06:00:00 GMT",
        ] {
            assert!(parse_rfc3339(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn env_references_expand_and_dollar_dollar_escapes() {
        let env = |name: &str| match name {
            "HOST" => Some("127.0.0.1".to_owned()),
            "PORT" => Some("9001".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let expand = |text: &str| expand_env(text, &env);
        assert_eq!(expand("plain"), Ok(None));
        assert_eq!(expand("cost: $5"), Ok(None));
        assert_eq!(
            expand("${HOST}:${PORT}"),
            Ok(Some("127.0.0.1:9001".to_owned()))
        );
        assert_eq!(expand("a${EMPTY}b"), Ok(Some("ab".to_owned())));
        assert_eq!(expand("$${HOST}"), Ok(Some("${HOST}".to_owned())));
        assert_eq!(expand("$$${HOST}"), Ok(Some("$${HOST}".to_owned())));
        assert_eq!(expand("$5 ${PORT} $"), Ok(Some("$5 9001 $".to_owned())));
        assert_eq!(
            expand("${NOPE}"),
            Err("environment variable NOPE is not set".to_owned())
        );
        assert_eq!(
            expand("${NOPE:-127.0.0.1:80}/${PORT:-1}"),
            Ok(Some("127.0.0.1:80/9001".to_owned()))
        );
        assert_eq!(expand("${NOPE:-}x"), Ok(Some("x".to_owned())));
        assert!(
            expand("${1X:-a}")
                .unwrap_err()
                .starts_with("invalid environment variable name")
        );
        assert!(expand("${HOST").unwrap_err().starts_with("unterminated"));
        assert!(
            expand("${}")
                .unwrap_err()
                .starts_with("invalid environment variable name")
        );
        assert!(
            expand("${1X}")
                .unwrap_err()
                .starts_with("invalid environment variable name")
        );
        assert!(
            expand("${A-B}")
                .unwrap_err()
                .starts_with("invalid environment variable name")
        );
    }

    #[test]
    fn targets_are_host_and_port() {
        for ok in [
            "127.0.0.1:9001",
            "localhost:80",
            "api.internal:65535",
            "[::1]:9001",
        ] {
            assert_eq!(check_target(ok), Ok(()), "{ok}");
        }
        for bad in [
            "127.0.0.1",
            "127.0.0.1:",
            ":9001",
            "127.0.0.1:0",
            "127.0.0.1:65536",
            "127.0.0.1:+80",
            "http://127.0.0.1:9001",
            "::1:9001",
            "[::1]",
            "[nope]:80",
            "a b:80",
            "host/path:80",
        ] {
            assert!(check_target(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn key_paths_quote_keys_that_are_not_bare() {
        assert_eq!(join_key("", "gateway"), "gateway");
        assert_eq!(join_key("upstreams", "a-b_1"), "upstreams.a-b_1");
        assert_eq!(join_key("upstreams", "a.b"), "upstreams.\"a.b\"");
        assert_eq!(join_key("upstreams", ""), "upstreams.\"\"");
    }
}
