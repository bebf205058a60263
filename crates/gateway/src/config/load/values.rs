//! Checks shared by every section: addresses, files, counts, durations,
//! dates, role names.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use candor_contract::parse_duration;
use toml::Spanned;

use super::date::parse_rfc3339;
use super::error::ConfigError;
use super::source::Source;

pub(super) fn socket_addr(
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
pub(super) fn readable_file(
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
pub(super) fn read_text(
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
pub(super) fn count<T: TryFrom<i64>>(
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
pub(super) enum Zero {
    Allowed,
    Refused,
}

pub(super) fn duration(
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

pub(super) fn date(
    value: &Spanned<String>,
    key: &str,
    src: &Source<'_>,
) -> Result<SystemTime, ConfigError> {
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

/// Role names, sent upstream comma-separated: printable ASCII without
/// spaces or commas, each once.
pub(super) fn role_names(
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
pub(super) fn not_empty(
    value: Spanned<String>,
    key: &str,
    src: &Source<'_>,
) -> Result<String, ConfigError> {
    if value.get_ref().is_empty() {
        return Err(src.error(value.span(), key, "must not be empty"));
    }
    Ok(value.into_inner())
}
