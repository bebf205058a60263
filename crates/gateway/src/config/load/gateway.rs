//! `[gateway]`: the listener, limits, timeouts and the gateway-wide
//! maintenance window.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::file::FileGateway;
use crate::config::model::{Gateway, Tls};

use super::error::ConfigError;
use super::notices::maintenance;
use super::source::Source;
use super::values::{Zero, count, duration, readable_file, socket_addr};

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

pub(super) fn build_gateway(g: FileGateway, src: &Source<'_>) -> Result<Gateway, ConfigError> {
    let (access_log, access_log_path) = access_log(&g, src)?;
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
        access_log,
        access_log_path,
        direct_path: g.direct_path.unwrap_or(true),
        maintenance,
    })
}

/// `access_log` (default on) and `access_log_path`: a file whose directory
/// exists, resolved against the config file's directory.
fn access_log(g: &FileGateway, src: &Source<'_>) -> Result<(bool, Option<PathBuf>), ConfigError> {
    let on = g.access_log.as_ref().is_none_or(|on| *on.get_ref());
    let Some(value) = &g.access_log_path else {
        return Ok((on, None));
    };
    if !on {
        return Err(src.error(
            value.span(),
            "gateway.access_log_path",
            "names a file for an access log that `access_log = false` turns off: remove one of them",
        ));
    }
    if value.get_ref().trim().is_empty() {
        return Err(src.error(
            value.span(),
            "gateway.access_log_path",
            "is empty: name a file, or remove the key to log to stdout",
        ));
    }
    let path = src.base_dir().join(value.get_ref());
    let problem = if path.is_dir() {
        Some("is a directory: name a file in it".to_owned())
    } else {
        match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(dir) if !dir.is_dir() => Some(format!(
                "is in {:?}, which is not a directory",
                dir.display().to_string()
            )),
            _ => None,
        }
    };
    match problem {
        Some(problem) => Err(src.error(
            value.span(),
            "gateway.access_log_path",
            format!("{:?} {problem}", path.display().to_string()),
        )),
        None => Ok((true, Some(path))),
    }
}
