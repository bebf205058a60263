//! Reports: where located findings go, as a table for people, as JSON,
//! SARIF and JUnit for machines, and as one self-contained HTML page.
//!
//! Every report is a [`Sink`]: JSON and SARIF stream each finding as it
//! arrives; the table, JUnit and HTML keep per-rule tallies and a bounded
//! number of examples, so memory stays flat however large the input is.

mod html;
mod json;
mod junit;
mod sarif;
mod table;

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::str::FromStr;

use base64::Engine as _;
use candor_contract::rules::Rule;
use candor_contract::words::count;

pub use html::HtmlSink;
pub use json::JsonSink;
pub use junit::JunitSink;
pub use sarif::SarifSink;
pub use table::TableSink;

use crate::{CaseOutcome, Located, Sink};

/// How many skipped entries a machine-readable report lists one by one; the
/// summary always carries the exact count.
pub const MAX_SKIPPED_LISTED: usize = 1000;

/// The output formats of `candor lint` and `candor audit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// Findings grouped by rule, for people.
    #[default]
    Table,
    /// One JSON document, streamed.
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// JUnit XML, for CI test reports.
    Junit,
    /// One self-contained HTML page, for sharing.
    Html,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Format; 5] = [
        Format::Table,
        Format::Json,
        Format::Sarif,
        Format::Junit,
        Format::Html,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Sarif => "sarif",
            Format::Junit => "junit",
            Format::Html => "html",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name that is none of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown report format {0:?}: expected table, json, sarif, junit or html")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|format| format.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// The report for `format`, writing to `writer` (buffered internally).
pub fn sink(format: Format, writer: Box<dyn Write + Send>) -> Box<dyn Sink + Send> {
    sink_with(format, writer, RunInfo::new())
}

/// [`sink`], with what the run was about for the reports that show it (the
/// HTML page's header and verdict).
pub fn sink_with(
    format: Format,
    writer: Box<dyn Write + Send>,
    info: RunInfo,
) -> Box<dyn Sink + Send> {
    match format {
        Format::Table => Box::new(TableSink::new(writer)),
        Format::Json => Box::new(JsonSink::new(writer)),
        Format::Sarif => Box::new(SarifSink::new(writer)),
        Format::Junit => Box::new(JunitSink::new(writer)),
        Format::Html => Box::new(HtmlSink::with_info(writer, info)),
    }
}

/// What a run was about: what it audited, and what makes it fail.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// What was audited, as (label, value): `("Base URL", "https://…")`,
    /// `("Document", "api.yaml")`, `("Traffic", "a.har")`.
    pub audited: Vec<(String, String)>,
    /// The OpenAPI document's `info.title` and `info.version`.
    pub title: Option<String>,
    pub version: Option<String>,
    /// The severity at which a finding makes the exit code 1 (`--fail-on`);
    /// `None` for `--fail-on never`.
    pub fail_on: Option<candor_contract::Severity>,
    /// When the run started.
    pub started: std::time::SystemTime,
}

impl RunInfo {
    /// A run that fails on errors, started now, about nothing named yet.
    pub fn new() -> Self {
        RunInfo {
            audited: Vec::new(),
            title: None,
            version: None,
            fail_on: Some(candor_contract::Severity::Error),
            started: std::time::SystemTime::now(),
        }
    }

    /// Adds what was audited (builder style).
    pub fn audited(mut self, label: impl Into<String>, value: impl Into<String>) -> Self {
        self.audited.push((label.into(), value.into()));
        self
    }

    /// Takes the title and version from an OpenAPI document's `info`.
    pub fn document(mut self, doc: &crate::openapi::Document) -> Self {
        let info = |key: &str| {
            doc.root
                .pointer(&format!("/info/{key}"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        self.title = info("title");
        self.version = info("version");
        self
    }
}

impl Default for RunInfo {
    fn default() -> Self {
        RunInfo::new()
    }
}

/// Checks counted by outcome. Reports show it only when checks ran, so a
/// plain lint run keeps its shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct CaseCounts {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl CaseCounts {
    pub fn count(&mut self, outcome: &CaseOutcome) {
        match outcome {
            CaseOutcome::Passed => self.passed += 1,
            CaseOutcome::Failed(_) => self.failed += 1,
            CaseOutcome::Skipped(_) => self.skipped += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.passed + self.failed + self.skipped
    }
}

/// Where a finding is, for people: the operation of a probe
/// (`POST /users`), the file, line and JSON pointer of an OpenAPI finding,
/// or the file, line and entry of an exchange.
pub(crate) fn place(located: &Located) -> String {
    if let Some(probe) = &located.probe {
        return probe.operation.clone();
    }
    let file = match (located.line, located.column) {
        (Some(line), Some(column)) => format!("{}:{line}:{column}", located.file),
        (Some(line), None) => format!("{}:{line}", located.file),
        _ => located.file.clone(),
    };
    match (&located.pointer, located.line) {
        (Some(pointer), _) => format!("{file} {pointer}"),
        (None, Some(_)) => format!("{file} (entry {})", located.entry),
        (None, None) => format!("{file} entry {}", located.entry),
    }
}

/// The status the finding was seen with: the probe's response, or the
/// exchange's. `None` when no response arrived (or a spec finding names
/// none).
pub(crate) fn observed_status(located: &Located) -> Option<u16> {
    match &located.probe {
        Some(probe) => probe.response.as_ref().map(|response| response.status),
        None => (located.status != 0).then_some(located.status),
    }
}

/// The status classes reports count findings under, in display order.
pub(crate) const STATUS_CLASSES: [&str; 7] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other", "none"];

/// Index into [`STATUS_CLASSES`]: `none` when there was no status, `other`
/// outside 100-599.
pub(crate) fn status_class(status: Option<u16>) -> usize {
    match status {
        None => 6,
        Some(status @ 100..=599) => usize::from(status / 100) - 1,
        Some(_) => 5,
    }
}

/// The rule's section in the catalog, as a path and anchor people can
/// follow in the repository: `docs/rules.md#3-active-probes-against-a-live-api`.
pub(crate) fn rules_doc(rule: &Rule) -> String {
    let heading = format!("{} {}", rule.section.number(), rule.section.title());
    let slug: String = heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect();
    format!("docs/rules.md#{slug}")
}

/// A body for a JSON or SARIF report: the text when it is UTF-8, otherwise
/// base64 and the name of that encoding.
pub(crate) fn body_text(body: &[u8]) -> (Cow<'_, str>, Option<&'static str>) {
    match std::str::from_utf8(body) {
        Ok(text) => (Cow::Borrowed(text), None),
        Err(_) => (
            Cow::Owned(base64::engine::general_purpose::STANDARD.encode(body)),
            Some("base64"),
        ),
    }
}

/// The start of a body for people: at most `max` bytes of text (cut on a
/// character boundary and marked), or a note when it is not UTF-8.
pub(crate) fn body_preview(body: &[u8], max: usize) -> String {
    let head = &body[..body.len().min(max)];
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // A cut through a character: keep the whole characters before it.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return format!("({}, not UTF-8)", count(body.len(), "byte", "bytes")),
    };
    if text.len() < body.len() {
        format!("{text}… ({} in all)", count(body.len(), "byte", "bytes"))
    } else {
        text.to_owned()
    }
}

/// `s` with control characters escaped, so one example stays on its lines.
pub(crate) fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `s` as XML 1.0 (and so HTML) character data (`attribute` false) or as a
/// double-quoted attribute value. The five metacharacters become entities; in an
/// attribute, tab and line breaks become character references so they
/// survive attribute-value normalisation, and a carriage return always
/// does. Characters XML 1.0 cannot carry at all (other C0 controls,
/// U+FFFE, U+FFFF) are written as visible `\u{…}` escapes.
pub(crate) fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' | '\t' => out.push(c),
            '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'.. => out.push(c),
            _ => out.extend(c.escape_unicode()),
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod testing {
    //! A writer the test keeps a handle on after the sink has taken it, and
    //! synthetic findings.

    use std::io::{self, Write};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use candor_contract::rules::{
        AUTH_401_WITHOUT_CHALLENGE, CREATED_201_WITHOUT_LOCATION, DELETE_200_EMPTY,
        PROBE_INSUFFICIENT_ROLE, PROBE_NO_CREDENTIALS, PROBE_OVERSIZE_BODY, PROBE_WRONG_MEDIA_TYPE,
        Rule,
    };
    use candor_contract::{Finding, Severity};

    use crate::http::{RecordedRequest, RecordedResponse};
    use crate::{Case, CaseOutcome, Located, ProbeEvidence, Skipped, Summary};

    #[derive(Clone, Default)]
    pub struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Shared {
        pub fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// What the sink `make` builds writes once `feed_it` has fed it.
    pub fn output<S: crate::Sink>(
        make: impl FnOnce(Shared) -> S,
        feed_it: impl FnOnce(&mut dyn crate::Sink),
    ) -> String {
        let out = Shared::default();
        let mut sink = make(out.clone());
        feed_it(&mut sink);
        out.text()
    }

    pub fn located(file: &str, entry: usize, line: Option<usize>, finding: Finding) -> Located {
        Located::traffic(
            file,
            entry,
            line,
            "GET",
            format!("https://api.example/items/{entry}?q=\"x\""),
            401,
            finding,
        )
    }

    /// Three 401s without a challenge, one 201 without Location (as info,
    /// to show a lowered severity), one DELETE 200 empty; one skipped line.
    pub fn feed(sink: &mut dyn crate::Sink) -> Summary {
        let mut summary = Summary {
            exchanges: 10,
            ..Summary::default()
        };
        let findings = [
            located(
                "traffic.jsonl",
                0,
                Some(1),
                Finding::new(
                    &AUTH_401_WITHOUT_CHALLENGE,
                    "msg \"quoted\"",
                    "evidence\nline",
                ),
            ),
            located(
                "traffic.jsonl",
                3,
                Some(4),
                Finding::new(&AUTH_401_WITHOUT_CHALLENGE, "msg", "evidence"),
            ),
            located(
                "capture.har",
                5,
                None,
                Finding::new(&CREATED_201_WITHOUT_LOCATION, "no Location", "")
                    .with_severity(candor_contract::Severity::Info),
            ),
            located(
                "traffic.jsonl",
                7,
                Some(8),
                Finding::new(&AUTH_401_WITHOUT_CHALLENGE, "msg", "evidence"),
            ),
            located(
                "traffic.jsonl",
                8,
                Some(9),
                Finding::new(&DELETE_200_EMPTY, "empty 200", "{}"),
            ),
        ];
        for located in &findings {
            summary.count(located.finding.severity);
            sink.finding(located).unwrap();
        }
        let skipped = Skipped {
            file: "traffic.jsonl".to_owned(),
            line: Some(3),
            entry: Some(2),
            message: "expected value at line 1 column 1".to_owned(),
        };
        summary.skipped += 1;
        sink.skipped(&skipped).unwrap();
        sink.finish(&summary).unwrap();
        summary
    }

    /// The body of the probe request in [`feed_probes`]: markup, quotes and
    /// an ampersand, to prove every report escapes what it embeds.
    pub const HOSTILE_BODY: &str = r#"{"name":"<script>alert('x')</script> & \"co\""}"#;

    /// The reason the skipped check in [`feed_probes`] gives: XML and HTML
    /// metacharacters and a control character.
    pub const HOSTILE_REASON: &str = "no credentials for role <admin> & \"ops\" 'x' \u{7}";

    fn probe(
        rule: &'static Rule,
        message: &str,
        evidence: &str,
        expected: &str,
        request: RecordedRequest,
        response: Option<RecordedResponse>,
    ) -> Located {
        let operation = format!("{} /users", request.method);
        let status = response.as_ref().map_or(0, |r| r.status);
        let mut located = Located::traffic(
            "openapi.yaml",
            0,
            None,
            request.method.clone(),
            request.url.clone(),
            status,
            Finding::new(rule, message, evidence),
        );
        located.probe = Some(Box::new(ProbeEvidence {
            operation,
            expected: expected.to_owned(),
            request,
            response,
        }));
        located
    }

    /// A spec finding (OpenAPI file, line and pointer), then four checks of
    /// a live probe run: one failed with a response whose body carries
    /// markup, one failed with no response and a body that is not UTF-8,
    /// one passed, one skipped. Summary: 3 exchanges, 2 errors, 1 warning.
    pub fn feed_probes(sink: &mut dyn crate::Sink) -> Summary {
        let mut summary = Summary {
            exchanges: 3,
            ..Summary::default()
        };
        let mut spec = Located::traffic(
            "openapi.yaml",
            0,
            Some(42),
            "POST",
            "/users",
            201,
            Finding::new(
                &CREATED_201_WITHOUT_LOCATION,
                "201 declares no Location header",
                "responses: {201: {description: created}}",
            ),
        );
        spec.pointer = Some("/paths/~1users/post/responses/201".to_owned());
        summary.count(spec.finding.severity);
        sink.finding(&spec).unwrap();

        let media = probe(
            &PROBE_WRONG_MEDIA_TYPE,
            "500 where 415 is expected",
            "<script>alert(\"x\")</script>",
            "415 (400 accepted as warn)",
            RecordedRequest::new("POST", "http://127.0.0.1:8080/users?a=1&b=2")
                .header("Content-Type", "text/plain")
                .body(HOSTILE_BODY),
            Some(RecordedResponse {
                status: 500,
                headers: vec![("content-type".into(), "text/html".into())],
                body: b"<html><img src=\"https://evil.example/x.png\">&\x01</html>".to_vec(),
                body_cut: false,
                body_error: None,
                elapsed: Duration::from_millis(12),
            }),
        );
        summary.count(media.finding.severity);
        sink.finding(&media).unwrap();
        sink.case(&Case {
            rule: &PROBE_WRONG_MEDIA_TYPE,
            subject: "POST /users".to_owned(),
            outcome: CaseOutcome::Failed(Severity::Error),
        })
        .unwrap();

        let oversize = probe(
            &PROBE_OVERSIZE_BODY,
            "no response: connection reset",
            "",
            "413 (5xx fail)",
            RecordedRequest::new("PUT", "http://127.0.0.1:8080/users")
                .header("Content-Type", "application/octet-stream")
                .body(vec![0xff, 0xfe, 0x00, 0x41]),
            None,
        );
        summary.count(oversize.finding.severity);
        sink.finding(&oversize).unwrap();
        sink.case(&Case {
            rule: &PROBE_OVERSIZE_BODY,
            subject: "PUT /users".to_owned(),
            outcome: CaseOutcome::Failed(Severity::Error),
        })
        .unwrap();

        sink.case(&Case {
            rule: &PROBE_NO_CREDENTIALS,
            subject: "GET /users".to_owned(),
            outcome: CaseOutcome::Passed,
        })
        .unwrap();
        sink.case(&Case {
            rule: &PROBE_INSUFFICIENT_ROLE,
            subject: "DELETE /users/{id}".to_owned(),
            outcome: CaseOutcome::Skipped(HOSTILE_REASON.to_owned()),
        })
        .unwrap();
        sink.finish(&summary).unwrap();
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_parses_its_five_names_and_rejects_others() {
        for format in Format::ALL {
            assert_eq!(format.as_str().parse::<Format>(), Ok(format));
        }
        assert_eq!("JSON".parse::<Format>(), Ok(Format::Json));
        assert_eq!("JUnit".parse::<Format>(), Ok(Format::Junit));
        let err = "xml".parse::<Format>().unwrap_err();
        assert!(
            err.to_string()
                .contains("table, json, sarif, junit or html"),
            "{err}"
        );
    }

    #[test]
    fn sink_dispatches_on_format() {
        let out = testing::Shared::default();
        let mut sink = sink(Format::Json, Box::new(out.clone()));
        testing::feed(sink.as_mut());
        let doc: serde_json::Value = serde_json::from_str(&out.text()).unwrap();
        assert_eq!(doc["summary"]["errors"], 3);
        for format in [Format::Junit, Format::Html] {
            let out = testing::Shared::default();
            let mut sink = super::sink(format, Box::new(out.clone()));
            testing::feed(sink.as_mut());
            assert!(
                out.text().contains("auth.401_without_challenge"),
                "{format}"
            );
        }
    }

    #[test]
    fn status_classes_and_catalog_anchors() {
        assert_eq!(STATUS_CLASSES[status_class(Some(204))], "2xx");
        assert_eq!(STATUS_CLASSES[status_class(Some(599))], "5xx");
        assert_eq!(STATUS_CLASSES[status_class(Some(600))], "other");
        assert_eq!(STATUS_CLASSES[status_class(Some(42))], "other");
        assert_eq!(STATUS_CLASSES[status_class(None)], "none");
        assert_eq!(
            rules_doc(&candor_contract::rules::PROBE_CREATE),
            "docs/rules.md#3-active-probes-against-a-live-api"
        );
    }

    #[test]
    fn bodies_are_text_or_base64_and_previews_are_bounded() {
        assert_eq!(body_text(b"{}"), (Cow::Borrowed("{}"), None));
        assert_eq!(
            body_text(&[0xff, 0x00]),
            (Cow::Owned("/wA=".to_owned()), Some("base64"))
        );
        assert_eq!(body_preview(b"hello", 10), "hello");
        assert_eq!(body_preview(b"hello", 3), "hel… (5 bytes in all)");
        // A cut through "é" keeps only whole characters.
        assert_eq!(body_preview("aé".as_bytes(), 2), "a… (3 bytes in all)");
        assert_eq!(body_preview(&[0xff, 0x41], 10), "(2 bytes, not UTF-8)");
    }
}
