//! `${NAME}` expansion, done on the parsed tree before deserializing, so
//! every error still names the key whose string held the reference.

use std::borrow::Cow;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::keys::join_key;

/// A reference that could not be expanded: where, under which key, why.
pub(super) struct Unexpanded {
    pub(super) span: Range<usize>,
    pub(super) key: String,
    pub(super) message: String,
}

/// Expands `${NAME}` in every string and turns TOML datetimes into strings,
/// so that `until = 2026-12-01T06:00:00Z` works unquoted too.
pub(super) fn prepare_table(
    table: &mut DeTable<'_>,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Unexpanded> {
    for (key, value) in table.iter_mut() {
        prepare_value(value, &join_key(path, key.get_ref()), env)?;
    }
    Ok(())
}

fn prepare_value(
    value: &mut Spanned<DeValue<'_>>,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Unexpanded> {
    let span = value.span();
    if let DeValue::Datetime(datetime) = value.get_ref() {
        let text = datetime.to_string();
        *value.get_mut() = DeValue::String(Cow::Owned(text));
        return Ok(());
    }
    match value.get_mut() {
        DeValue::String(text) => {
            if let Some(expanded) = expand_env(text, env).map_err(|message| Unexpanded {
                span,
                key: path.to_owned(),
                message,
            })? {
                *text = Cow::Owned(expanded);
            }
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                prepare_value(item, &format!("{path}[{i}]"), env)?;
            }
        }
        DeValue::Table(table) => prepare_table(table, path, env)?,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
