//! The text being loaded: parsed with spans, offsets turned into lines,
//! serde's complaints reworded in TOML's terms.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::de::DeTable;

use super::env::prepare_table;
use super::error::ConfigError;
use super::keys::key_at;

/// Resolves `${NAME}` references.
type Env<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// The text being loaded and where it came from.
pub(super) struct Source<'a> {
    pub(super) text: &'a str,
    pub(super) origin: &'a Path,
}

impl Source<'_> {
    /// Parses the text with spans, expands `${NAME}` when `env` is given,
    /// and deserializes the surface `T`.
    pub(super) fn parse<T: DeserializeOwned>(
        &self,
        env: Option<&Env<'_>>,
    ) -> Result<T, ConfigError> {
        let (mut root, errors) = DeTable::parse_recoverable(self.text);
        if let Some(first) = errors
            .iter()
            .min_by_key(|e| e.span().map_or(usize::MAX, |s| s.start))
        {
            return Err(self.syntax_error(first, root.get_ref()));
        }
        if let Some(env) = env {
            prepare_table(root.get_mut(), "", env)
                .map_err(|e| self.error(e.span, &e.key, e.message))?;
        }
        T::deserialize(toml::de::Deserializer::from(root)).map_err(|e| self.surface_error(&e))
    }

    pub(super) fn error(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl fmt::Display,
    ) -> ConfigError {
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

    pub(super) fn line(&self, span: &Range<usize>) -> usize {
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
    pub(super) fn base_dir(&self) -> &Path {
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
