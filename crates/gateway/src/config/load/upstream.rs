//! `[upstreams.NAME]`: target, TLS, timeouts, ejection and the monitor.

use std::net::Ipv6Addr;
use std::time::Duration;

use toml::Spanned;

use crate::config::file::{FileRepair, FileUpstream};
use crate::config::model::{Repair, Upstream, UpstreamTls};

use super::error::ConfigError;
use super::keys::join_key;
use super::source::Source;
use super::values::{Zero, count, duration, readable_file};

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(15);
const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);
const DEFAULT_EJECT_AFTER: u32 = 3;
const DEFAULT_EJECT_FOR: Duration = Duration::from_secs(10);
const DEFAULT_MONITOR_BODY_BYTES: usize = 64 * 1024;

pub(super) fn build_upstream(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
