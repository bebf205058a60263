//! candor-audit: proves whether an API obeys the status-code contract.
//!
//! This step reads recorded traffic (HAR 1.2 and JSON lines, plain or
//! gzip), runs the contract's passive rules over every exchange on all
//! cores, and renders the findings as a table, JSON or SARIF.

pub mod faults;
pub mod input;
pub mod lint;
pub mod report;

use candor_contract::{Finding, Severity};

/// A finding, located in the traffic it came from.
#[derive(Debug, Clone)]
pub struct Located {
    /// The file as the user named it (`-` for stdin).
    pub file: String,
    /// 0-based index of the exchange in its file.
    pub entry: usize,
    /// 1-based line of the exchange, for JSON-lines input.
    pub line: Option<usize>,
    pub method: String,
    pub url: String,
    pub status: u16,
    pub finding: Finding,
}

/// An entry that could not be read and was skipped (never silently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub file: String,
    /// 1-based line, when the input is line-oriented.
    pub line: Option<usize>,
    /// 0-based entry index, when known.
    pub entry: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.entry) {
            (Some(line), _) => write!(f, "{}:{}: {}", self.file, line, self.message),
            (None, Some(entry)) => write!(f, "{}: entry {}: {}", self.file, entry, self.message),
            (None, None) => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Counts over a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub exchanges: u64,
    pub errors: u64,
    pub warnings: u64,
    pub infos: u64,
    pub skipped: u64,
}

impl Summary {
    /// Counts one finding under its severity.
    pub fn count(&mut self, severity: Severity) {
        match severity {
            Severity::Error => self.errors += 1,
            Severity::Warn => self.warnings += 1,
            Severity::Info => self.infos += 1,
        }
    }

    /// True when some finding is at `threshold` or worse.
    pub fn reaches(&self, threshold: Severity) -> bool {
        match threshold {
            Severity::Error => self.errors > 0,
            Severity::Warn => self.errors + self.warnings > 0,
            Severity::Info => self.errors + self.warnings + self.infos > 0,
        }
    }
}

/// Where findings go as they are produced, in input order.
///
/// Reporters implement this so that a multi-gigabyte input never has to be
/// held in memory: JSON and SARIF stream, the table aggregates.
pub trait Sink {
    fn finding(&mut self, finding: &Located) -> std::io::Result<()>;
    fn skipped(&mut self, skipped: &Skipped) -> std::io::Result<()>;
    fn finish(&mut self, summary: &Summary) -> std::io::Result<()>;
}
