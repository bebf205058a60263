//! `[auth.api_keys]`: the keys file, read as TOML of its own, whose errors
//! name that file.

use std::collections::HashMap;

use http::HeaderName;

use crate::config::file::{FileApiKeys, FileKeysFile};
use crate::config::model::{ApiKey, ApiKeys};

use super::error::ConfigError;
use super::source::Source;
use super::values::{read_text, role_names};

/// `[auth.api_keys]` and the keys file it names.
pub(super) fn build_api_keys(
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
pub(super) fn api_keys(
    surface: FileKeysFile,
    src: &Source<'_>,
) -> Result<Vec<ApiKey>, ConfigError> {
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
