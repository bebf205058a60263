//! Why a configuration was refused, and how that reads: `FILE:LINE: KEY:
//! message`.

use std::fmt;
use std::path::{Path, PathBuf};

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
