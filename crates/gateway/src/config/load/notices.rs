//! What the gateway tells clients about time: deprecation (`since`,
//! `sunset`, `Link`) and maintenance windows.

use toml::Spanned;

use crate::config::file::{FileDeprecated, FileMaintenance};
use crate::config::model::{Deprecation, Maintenance};

use super::error::ConfigError;
use super::source::Source;
use super::values::date;

pub(super) fn deprecation(
    d: FileDeprecated,
    key: &str,
    src: &Source<'_>,
) -> Result<Deprecation, ConfigError> {
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

pub(super) fn maintenance(
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
pub(super) fn link(
    value: Spanned<String>,
    key: &str,
    src: &Source<'_>,
) -> Result<String, ConfigError> {
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
