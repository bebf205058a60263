//! `[rate_limits.NAME]`: how many requests per period, keyed how, counted
//! where.

use std::time::Duration;

use http::HeaderName;
use toml::Spanned;

use crate::config::file::FileRateLimit;
use crate::config::model::{OnStoreError, RateKey, RateLimit, RateStore};

use super::error::ConfigError;
use super::keys::join_key;
use super::source::Source;
use super::values::{Zero, count, duration};

/// `[rate_limits.NAME]`.
pub(super) fn build_rate_limit(
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
