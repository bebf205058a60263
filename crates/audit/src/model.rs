//! The report model the three sources share: a finding located in its
//! input, a case passed or failed, and the sink that receives both.

use candor_contract::{Finding, Severity};

/// A finding, located in the traffic it came from.
#[derive(Debug, Clone)]
pub struct Located {
    /// The file as the user named it (`-` for stdin).
    pub file: String,
    /// 0-based index of the exchange in its file.
    pub entry: usize,
    /// 1-based line of the exchange, for JSON-lines input, or of the node
    /// to fix in an OpenAPI document.
    pub line: Option<usize>,
    /// 1-based column (in characters) of that node, for OpenAPI documents:
    /// what tells findings apart on a minified document's one line.
    pub column: Option<usize>,
    pub method: String,
    pub url: String,
    pub status: u16,
    pub finding: Finding,
    /// JSON pointer into the document, for findings on an OpenAPI file.
    pub pointer: Option<String>,
    /// What was sent and received, for findings of a live probe.
    pub probe: Option<Box<ProbeEvidence>>,
    /// The operations a finding about an OpenAPI document affects, each
    /// where it uses the cause (empty for traffic and probes). A finding
    /// whose cause is one place (a shared component, a security scheme, a
    /// document-wide pattern) is reported once and lists them all here.
    pub occurrences: Vec<Occurrence>,
}

/// One operation a finding about an OpenAPI document affects, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// Upper case; empty for a place outside any operation (the root
    /// `security`).
    pub method: String,
    /// The path template.
    pub path: String,
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// JSON pointer into `file`.
    pub pointer: String,
}

impl Occurrence {
    /// `GET /pets/{id}`, or the pointer for a place outside any operation.
    pub fn label(&self) -> String {
        if self.method.is_empty() {
            self.pointer.clone()
        } else {
            format!("{} {}", self.method, self.path)
        }
    }
}

impl Located {
    /// A finding on an exchange read from a traffic file.
    pub fn traffic(
        file: impl Into<String>,
        entry: usize,
        line: Option<usize>,
        method: impl Into<String>,
        url: impl Into<String>,
        status: u16,
        finding: Finding,
    ) -> Self {
        Located {
            file: file.into(),
            entry,
            line,
            column: None,
            method: method.into(),
            url: url.into(),
            status,
            finding,
            pointer: None,
            probe: None,
            occurrences: Vec::new(),
        }
    }
}

/// The evidence of a live probe: the exact request, the response, and what
/// the contract expected instead.
#[derive(Debug, Clone)]
pub struct ProbeEvidence {
    /// The operation probed, as `METHOD /path/template` (or the scenario
    /// name, for the gateway fault suite).
    pub operation: String,
    /// What the contract expects, in a few words (`401 + WWW-Authenticate`).
    pub expected: String,
    pub request: crate::http::RecordedRequest,
    /// `None` when no response arrived (the error is in the finding).
    pub response: Option<crate::http::RecordedResponse>,
}

/// One check that ran (a probe on an operation, a fault scenario, a rule
/// over a file): reports that count passes (JUnit, HTML) use these.
#[derive(Debug, Clone)]
pub struct Case {
    /// The rule the check is about.
    pub rule: &'static candor_contract::Rule,
    /// What it ran on: `POST /users`, a scenario, or a file.
    pub subject: String,
    pub outcome: CaseOutcome,
}

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseOutcome {
    /// The contract held.
    Passed,
    /// At least one finding at this severity (the findings themselves go
    /// through [`Sink::finding`]).
    Failed(Severity),
    /// Not run, and why (no credentials for the role, not opted in, ...).
    Skipped(String),
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
    /// One check that ran; called after the findings it produced. Reports
    /// that only list findings ignore it.
    fn case(&mut self, _case: &Case) -> std::io::Result<()> {
        Ok(())
    }
    fn finish(&mut self, summary: &Summary) -> std::io::Result<()>;
}
