//! Dotted key paths (`upstreams."a.b".target`, `routes[2].path`): how
//! every message names what it is about.

use std::borrow::Cow;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Appends `key` to a dotted key path, quoting it when it is not a bare key.
pub(super) fn join_key(parent: &str, key: &str) -> String {
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
pub(super) fn key_at(table: &DeTable<'_>, offset: usize) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_quote_keys_that_are_not_bare() {
        assert_eq!(join_key("", "gateway"), "gateway");
        assert_eq!(join_key("upstreams", "a-b_1"), "upstreams.a-b_1");
        assert_eq!(join_key("upstreams", "a.b"), "upstreams.\"a.b\"");
        assert_eq!(join_key("upstreams", ""), "upstreams.\"\"");
    }
}
