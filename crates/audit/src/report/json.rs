//! The JSON report: one document, streamed finding by finding.
//!
//! Findings are written as they arrive and the summary is only known at the
//! end, so the members come in this order (the shape is the same whatever
//! the order, as JSON objects are unordered):
//!
//! ```text
//! {"findings":[
//! {"rule":"…","severity":"error|warn|info","file":"…","entry":N,"line":N,
//!  "column":N,"method":"…","url":"…","status":N,"message":"…","evidence":"…",
//!  "pointer":"…","occurrences":[{"operation":"GET /a","file":"…","line":N,
//!                                  "column":N,"pointer":"…"},…],
//!  "same_as":"…","probe":"…","operation":"…","expected":"…",
//!  "request":{"method":"…","url":"…","headers":[["name","value"],…],
//!             "body":"…"|null,"body_encoding":"base64"},
//!  "response":{"status":N,"headers":[["name","value"],…],"body":"…",
//!              "body_encoding":"base64","body_truncated":B,
//!              "body_error":"…"|null,"elapsed_ms":N}|null,
//!  "curl":"curl …"},
//! …
//! ],"skipped":[{"file":"…","line":N,"entry":N,"message":"…"}],
//! "cases":{"passed":N,"failed":N,"skipped":N},
//! "checks":[{"rule":"…","subject":"…","outcome":"passed|failed|skipped",
//!            "severity":"…","reason":"…"},…],
//! "summary":{"exchanges":N,"errors":N,"warnings":N,"infos":N,"skipped":N}}
//! ```
//!
//! `line` (and `entry` of a skipped entry) is present only when known;
//! `column` only on findings about an OpenAPI document.
//! `pointer` (a JSON pointer into the document) is present only on a
//! finding about an OpenAPI file, and `occurrences` (every operation the
//! finding affects, where it meets the cause; `operation` is absent for a
//! place outside any operation) only on one that affects an operation.
//! `probe` (the rule the probe checked),
//! `operation`, `expected`, `request`, `response` (`null` when no response
//! arrived) and `curl` are present only on a finding of a live probe;
//! `same_as` only on a probe's finding that stands for a passive rule's
//! (the fact is reported once, as the probe's).
//! Bodies are UTF-8 text, or base64 with `"body_encoding":"base64"` when
//! they are not UTF-8; a response body is what was read (bounded), and
//! `body_truncated` says more was sent. `cases` (the counts) and `checks`
//! (each check: the rule, what it ran on, how it ended, the worst severity
//! of a failure, why it was skipped; at most [`MAX_CHECKS_LISTED`]) are
//! present only when checks ran, so a traffic lint report keeps three
//! members. Only the
//! first [`MAX_SKIPPED_LISTED`] skipped entries are listed;
//! `summary.skipped` is the exact count.

use std::borrow::Cow;
use std::io::{self, BufWriter, Write};

use candor_contract::Severity;
use serde::Serialize;

use super::{CaseCounts, MAX_SKIPPED_LISTED, body_text};
use crate::http::{RecordedRequest, RecordedResponse};
use crate::{Case, CaseOutcome, Located, Occurrence, ProbeEvidence, Sink, Skipped, Summary};

/// How many checks the report lists one by one; `cases` counts them all.
pub const MAX_CHECKS_LISTED: usize = 10_000;

/// Streams findings as one JSON document.
pub struct JsonSink<W: Write> {
    out: BufWriter<W>,
    started: bool,
    findings: u64,
    skipped: Vec<Skipped>,
    cases: CaseCounts,
    checks: Vec<CheckRecord>,
}

/// One check, as the report lists it.
#[derive(Serialize)]
struct CheckRecord {
    rule: &'static str,
    subject: String,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    severity: Option<Severity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl From<&Case> for CheckRecord {
    fn from(case: &Case) -> Self {
        let (outcome, severity, reason) = match &case.outcome {
            CaseOutcome::Passed => ("passed", None, None),
            CaseOutcome::Failed(severity) => ("failed", Some(*severity), None),
            CaseOutcome::Skipped(why) => ("skipped", None, Some(why.clone())),
        };
        CheckRecord {
            rule: case.rule.id,
            subject: case.subject.clone(),
            outcome,
            severity,
            reason,
        }
    }
}

#[derive(Serialize)]
struct FindingRecord<'a> {
    rule: &'a str,
    severity: Severity,
    file: &'a str,
    entry: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<usize>,
    method: &'a str,
    url: &'a str,
    status: u16,
    message: &'a str,
    evidence: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pointer: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    occurrences: Vec<OccurrenceRecord<'a>>,
    /// The passive rule a probe's finding stands for on its exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    same_as: Option<&'a str>,
    #[serde(flatten)]
    probe: Option<ProbeRecord<'a>>,
}

/// One operation a spec finding affects, where it meets the cause.
#[derive(Serialize)]
struct OccurrenceRecord<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<String>,
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<usize>,
    pointer: &'a str,
}

impl<'a> From<&'a Occurrence> for OccurrenceRecord<'a> {
    fn from(o: &'a Occurrence) -> Self {
        OccurrenceRecord {
            operation: (!o.method.is_empty()).then(|| o.label()),
            file: &o.file,
            line: o.line,
            column: o.column,
            pointer: &o.pointer,
        }
    }
}

/// The members a probe's finding adds.
#[derive(Serialize)]
struct ProbeRecord<'a> {
    probe: &'a str,
    operation: &'a str,
    expected: &'a str,
    request: RequestRecord<'a>,
    response: Option<ResponseRecord<'a>>,
    curl: String,
}

#[derive(Serialize)]
struct RequestRecord<'a> {
    method: &'a str,
    url: &'a str,
    headers: &'a [(String, String)],
    body: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_encoding: Option<&'static str>,
}

#[derive(Serialize)]
struct ResponseRecord<'a> {
    status: u16,
    headers: &'a [(String, String)],
    body: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_encoding: Option<&'static str>,
    body_truncated: bool,
    body_error: Option<&'a str>,
    elapsed_ms: u64,
}

impl<'a> ProbeRecord<'a> {
    fn new(rule: &'a str, probe: &'a ProbeEvidence) -> Self {
        ProbeRecord {
            probe: rule,
            operation: &probe.operation,
            expected: &probe.expected,
            request: RequestRecord::from(&probe.request),
            response: probe.response.as_ref().map(ResponseRecord::from),
            curl: probe.request.curl(),
        }
    }
}

impl<'a> From<&'a RecordedRequest> for RequestRecord<'a> {
    fn from(request: &'a RecordedRequest) -> Self {
        let (body, body_encoding) = match &request.body {
            Some(body) => {
                let (text, encoding) = body_text(body);
                (Some(text), encoding)
            }
            None => (None, None),
        };
        RequestRecord {
            method: &request.method,
            url: &request.url,
            headers: &request.headers,
            body,
            body_encoding,
        }
    }
}

impl<'a> From<&'a RecordedResponse> for ResponseRecord<'a> {
    fn from(response: &'a RecordedResponse) -> Self {
        let (body, body_encoding) = body_text(&response.body);
        ResponseRecord {
            status: response.status,
            headers: &response.headers,
            body,
            body_encoding,
            body_truncated: response.body_cut,
            body_error: response.body_error.as_deref(),
            elapsed_ms: u64::try_from(response.elapsed.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

#[derive(Serialize)]
struct SkippedRecord<'a> {
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry: Option<usize>,
    message: &'a str,
}

impl<'a> From<&'a Skipped> for SkippedRecord<'a> {
    fn from(s: &'a Skipped) -> Self {
        SkippedRecord {
            file: &s.file,
            line: s.line,
            entry: s.entry,
            message: &s.message,
        }
    }
}

impl<W: Write> JsonSink<W> {
    pub fn new(writer: W) -> Self {
        JsonSink {
            out: BufWriter::with_capacity(64 * 1024, writer),
            started: false,
            findings: 0,
            skipped: Vec::new(),
            cases: CaseCounts::default(),
            checks: Vec::new(),
        }
    }

    fn start(&mut self) -> io::Result<()> {
        if !self.started {
            self.out.write_all(b"{\"findings\":[")?;
            self.started = true;
        }
        Ok(())
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn finding(&mut self, located: &Located) -> io::Result<()> {
        self.start()?;
        self.out
            .write_all(if self.findings == 0 { b"\n" } else { b",\n" })?;
        let finding = &located.finding;
        let record = FindingRecord {
            rule: finding.rule.id,
            severity: finding.severity,
            file: &located.file,
            entry: located.entry,
            line: located.line,
            column: located.column,
            method: &located.method,
            url: &located.url,
            status: located.status,
            message: &finding.message,
            evidence: &finding.evidence,
            pointer: located.pointer.as_deref(),
            occurrences: located
                .occurrences
                .iter()
                .map(OccurrenceRecord::from)
                .collect(),
            same_as: finding.same_as.map(|rule| rule.id),
            probe: located
                .probe
                .as_deref()
                .map(|probe| ProbeRecord::new(finding.rule.id, probe)),
        };
        serde_json::to_writer(&mut self.out, &record)?;
        self.findings += 1;
        Ok(())
    }

    fn skipped(&mut self, skipped: &Skipped) -> io::Result<()> {
        if self.skipped.len() < MAX_SKIPPED_LISTED {
            self.skipped.push(skipped.clone());
        }
        Ok(())
    }

    fn case(&mut self, case: &Case) -> io::Result<()> {
        self.cases.count(&case.outcome);
        if self.checks.len() < MAX_CHECKS_LISTED {
            self.checks.push(CheckRecord::from(case));
        }
        Ok(())
    }

    fn finish(&mut self, summary: &Summary) -> io::Result<()> {
        self.start()?;
        if self.findings > 0 {
            self.out.write_all(b"\n")?;
        }
        self.out.write_all(b"],\"skipped\":[")?;
        for (i, skipped) in self.skipped.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            serde_json::to_writer(&mut self.out, &SkippedRecord::from(skipped))?;
        }
        self.out.write_all(b"],\n")?;
        if self.cases.total() > 0 {
            self.out.write_all(b"\"cases\":")?;
            serde_json::to_writer(&mut self.out, &self.cases)?;
            self.out.write_all(b",\n\"checks\":")?;
            serde_json::to_writer(&mut self.out, &self.checks)?;
            self.out.write_all(b",\n")?;
        }
        self.out.write_all(b"\"summary\":")?;
        serde_json::to_writer(&mut self.out, summary)?;
        self.out.write_all(b"}\n")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::report::testing::{HOSTILE_BODY, feed, feed_probes, output};

    fn run(feed_it: impl FnOnce(&mut dyn Sink)) -> Value {
        serde_json::from_str(&output(JsonSink::new, feed_it))
            .expect("the report is one valid JSON document")
    }

    #[test]
    fn findings_stream_with_the_documented_shape() {
        let doc = run(|sink| {
            feed(sink);
        });
        let keys: Vec<_> = doc.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys.len(), 3, "{keys:?}");
        assert_eq!(
            doc["summary"],
            json!({"exchanges": 10, "errors": 3, "warnings": 0, "infos": 2, "skipped": 1})
        );
        let findings = doc["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 5);
        assert_eq!(
            findings[0],
            json!({
                "rule": "auth.401_without_challenge",
                "severity": "error",
                "file": "traffic.jsonl",
                "entry": 0,
                "line": 1,
                "method": "GET",
                "url": "https://api.example/items/0?q=\"x\"",
                "status": 401,
                "message": "msg \"quoted\"",
                "evidence": "evidence\nline",
            })
        );
        // A HAR entry has no line; a lowered severity is the finding's own.
        assert!(findings[2].get("line").is_none());
        assert_eq!(findings[2]["severity"], "info");
        assert_eq!(
            doc["skipped"],
            json!([{"file": "traffic.jsonl", "line": 3, "entry": 2,
                    "message": "expected value at line 1 column 1"}])
        );
    }

    #[test]
    fn no_findings_is_still_a_valid_document() {
        let doc = run(|sink| sink.finish(&Summary::default()).unwrap());
        assert_eq!(doc["findings"], json!([]));
        assert_eq!(doc["skipped"], json!([]));
        assert_eq!(doc["summary"]["exchanges"], 0);
    }

    #[test]
    fn skipped_entries_are_listed_up_to_the_cap_and_counted_exactly() {
        let total = MAX_SKIPPED_LISTED + 5;
        let doc = run(|sink| {
            for line in 1..=total {
                let skipped = Skipped {
                    file: "t.jsonl".into(),
                    line: Some(line),
                    entry: None,
                    message: "bad".into(),
                };
                sink.skipped(&skipped).unwrap();
            }
            let summary = Summary {
                skipped: total as u64,
                ..Summary::default()
            };
            sink.finish(&summary).unwrap();
        });
        assert_eq!(doc["skipped"].as_array().unwrap().len(), MAX_SKIPPED_LISTED);
        assert!(doc["skipped"][0].get("entry").is_none());
        assert_eq!(doc["summary"]["skipped"], total);
    }

    #[test]
    fn probe_and_spec_findings_add_their_members_and_cases_are_counted() {
        let doc = run(|sink| {
            feed_probes(sink);
        });
        assert_eq!(
            doc["cases"],
            json!({"passed": 1, "failed": 2, "skipped": 1})
        );
        let checks = doc["checks"].as_array().unwrap();
        assert_eq!(checks.len(), 4);
        let outcomes: Vec<&str> = checks
            .iter()
            .map(|c| c["outcome"].as_str().unwrap())
            .collect();
        assert!(outcomes.contains(&"passed") && outcomes.contains(&"failed"));
        let skipped = checks.iter().find(|c| c["outcome"] == "skipped").unwrap();
        assert!(skipped["reason"].is_string(), "{skipped}");
        assert!(skipped.get("severity").is_none());
        let failed = checks.iter().find(|c| c["outcome"] == "failed").unwrap();
        assert!(failed["severity"].is_string() && failed["subject"].is_string());
        assert_eq!(doc["summary"]["errors"], 2);
        let findings = doc["findings"].as_array().unwrap();
        assert_eq!(findings.len(), 3);

        let spec = &findings[0];
        assert_eq!(spec["pointer"], "/paths/~1users/post/responses/201");
        assert_eq!(spec["line"], 42);
        assert!(spec.get("probe").is_none() && spec.get("request").is_none());

        let media = &findings[1];
        assert!(media.get("pointer").is_none());
        assert_eq!(media["rule"], "probe.wrong_media_type");
        assert_eq!(media["probe"], "probe.wrong_media_type");
        assert_eq!(media["operation"], "POST /users");
        assert_eq!(media["expected"], "415 (400 accepted as warn)");
        assert_eq!(
            media["request"],
            json!({
                "method": "POST",
                "url": "http://127.0.0.1:8080/users?a=1&b=2",
                "headers": [["Content-Type", "text/plain"]],
                "body": HOSTILE_BODY,
            })
        );
        let response = &media["response"];
        assert_eq!(response["status"], 500);
        assert_eq!(response["headers"], json!([["content-type", "text/html"]]));
        assert!(response["body"].as_str().unwrap().starts_with("<html>"));
        assert!(response.get("body_encoding").is_none());
        assert_eq!(response["body_truncated"], false);
        assert_eq!(response["body_error"], Value::Null);
        assert_eq!(response["elapsed_ms"], 12);
        let curl = media["curl"].as_str().unwrap();
        assert!(
            curl.starts_with("curl -i -X POST -H 'Content-Type: text/plain'"),
            "{curl}"
        );

        // No response, and a request body that is not UTF-8.
        let oversize = &findings[2];
        assert_eq!(oversize["response"], Value::Null);
        assert_eq!(oversize["request"]["body"], "//4AQQ==");
        assert_eq!(oversize["request"]["body_encoding"], "base64");
    }

    #[test]
    fn a_lint_run_has_no_cases_member() {
        let doc = run(|sink| {
            feed(sink);
        });
        assert!(doc.get("cases").is_none());
        assert!(doc["findings"][0].get("probe").is_none());
        assert!(doc["findings"][0].get("pointer").is_none());
    }
}
