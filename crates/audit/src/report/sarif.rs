//! The SARIF 2.1.0 report, for code-scanning dashboards, streamed.
//!
//! One run whose driver lists the whole rule catalog; each finding becomes a
//! result. A finding on traffic points at the traffic file (and line, for
//! JSON lines), with the exchange's method, URL and status in `webRequest`,
//! `webResponse`, a logical location and the result's properties. A finding
//! on an OpenAPI file points at the file and line, with its JSON pointer as
//! the logical location; the operations it affects (its `occurrences`) are
//! its `relatedLocations`, each named by its operation, and their count is
//! the result's `occurrences` property. A probe's finding points at the request URL and
//! carries the whole request and response in `webRequest` and
//! `webResponse` (`noResponseReceived` when none came), with the operation,
//! the expectation and a `curl` line in its properties. Results are written
//! as they arrive; skipped entries (a `warning`) and checks that did not
//! run (a `note` naming the rule and why) become tool notifications of the
//! invocation and the summary goes in the run's properties, all at the end.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufWriter, Write};

use candor_contract::Severity;
use candor_contract::rules::{RULES, Rule};
use candor_contract::words::agree;
use serde_json::json;
use serde_sarif::sarif as s;

use super::{MAX_SKIPPED_LISTED, body_text};
use crate::http::{RecordedRequest, RecordedResponse};
use crate::{Case, CaseOutcome, Located, Occurrence, ProbeEvidence, Sink, Skipped, Summary};

/// The schema every SARIF 2.1.0 log names.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Streams findings as a SARIF 2.1.0 log.
pub struct SarifSink<W: Write> {
    out: BufWriter<W>,
    /// Position of each rule in the driver's `rules` (the catalog order).
    rule_index: HashMap<&'static str, usize>,
    started: bool,
    results: u64,
    notifications: Vec<s::Notification>,
    /// Checks that did not run, as notifications (the first
    /// `MAX_SKIPPED_LISTED`), and how many there were.
    skipped_checks: Vec<s::Notification>,
    skipped_check_count: u64,
}

impl<W: Write> SarifSink<W> {
    pub fn new(writer: W) -> Self {
        SarifSink {
            out: BufWriter::with_capacity(64 * 1024, writer),
            rule_index: RULES.iter().enumerate().map(|(i, r)| (r.id, i)).collect(),
            started: false,
            results: 0,
            notifications: Vec::new(),
            skipped_checks: Vec::new(),
            skipped_check_count: 0,
        }
    }

    /// Writes everything before the first result: the log header and the
    /// tool with its rules.
    fn start(&mut self) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        write!(
            self.out,
            "{{\"$schema\":\"{SCHEMA}\",\"version\":\"2.1.0\",\"runs\":[{{\"tool\":"
        )?;
        serde_json::to_writer(&mut self.out, &tool())?;
        self.out.write_all(b",\"results\":[")?;
        Ok(())
    }
}

impl<W: Write> Sink for SarifSink<W> {
    fn finding(&mut self, located: &Located) -> io::Result<()> {
        self.start()?;
        self.out
            .write_all(if self.results == 0 { b"\n" } else { b",\n" })?;
        let index = self.rule_index.get(located.finding.rule.id).copied();
        serde_json::to_writer(&mut self.out, &result(located, index))?;
        self.results += 1;
        Ok(())
    }

    fn skipped(&mut self, skipped: &Skipped) -> io::Result<()> {
        if self.notifications.len() < MAX_SKIPPED_LISTED {
            self.notifications.push(notification(skipped));
        }
        Ok(())
    }

    fn case(&mut self, case: &Case) -> io::Result<()> {
        if let CaseOutcome::Skipped(reason) = &case.outcome {
            self.skipped_check_count += 1;
            if self.skipped_checks.len() < MAX_SKIPPED_LISTED {
                let index = self.rule_index.get(case.rule.id).copied();
                self.skipped_checks
                    .push(skipped_check(case.rule, &case.subject, reason, index));
            }
        }
        Ok(())
    }

    fn finish(&mut self, summary: &Summary) -> io::Result<()> {
        self.start()?;
        if self.results > 0 {
            self.out.write_all(b"\n")?;
        }
        let mut notifications = std::mem::take(&mut self.notifications);
        let entries = notifications.len() as u64;
        notifications.extend(unlisted(
            summary.skipped.saturating_sub(entries),
            ("entry was skipped", "entries were skipped"),
            "warning",
        ));
        let checks = self.skipped_checks.len() as u64;
        notifications.append(&mut self.skipped_checks);
        notifications.extend(unlisted(
            self.skipped_check_count.saturating_sub(checks),
            ("check did not run", "checks did not run"),
            "note",
        ));
        let mut invocation = s::Invocation::builder().execution_successful(true).build();
        if !notifications.is_empty() {
            invocation.tool_execution_notifications = Some(notifications);
        }
        self.out.write_all(b"],\n\"invocations\":[")?;
        serde_json::to_writer(&mut self.out, &invocation)?;
        self.out.write_all(b"],\"properties\":{\"summary\":")?;
        serde_json::to_writer(&mut self.out, summary)?;
        self.out.write_all(b"}}]}\n")?;
        self.out.flush()
    }
}

/// The driver, with the whole catalog as its rules.
fn tool() -> s::Tool {
    let driver = s::ToolComponent::builder()
        .name("candor")
        .full_name("candor: the HTTP status-code contract")
        .version(env!("CARGO_PKG_VERSION"))
        .semantic_version(env!("CARGO_PKG_VERSION"))
        .information_uri(env!("CARGO_PKG_REPOSITORY"))
        .rules(
            RULES
                .iter()
                .map(|rule| descriptor(rule))
                .collect::<Vec<_>>(),
        )
        .build();
    s::Tool::builder().driver(driver).build()
}

fn descriptor(rule: &Rule) -> s::ReportingDescriptor {
    let section = json!(rule.section);
    let tags = vec![section.as_str().unwrap_or_default().to_owned()];
    let mut properties = BTreeMap::from([
        ("title".to_owned(), json!(rule.title)),
        ("section".to_owned(), section),
        ("reference".to_owned(), json!(rule.reference)),
        ("problemType".to_owned(), json!(rule.type_uri)),
    ]);
    if let Some(status) = rule.status {
        properties.insert("status".to_owned(), json!(status));
    }
    let mut descriptor = s::ReportingDescriptor::builder()
        .id(rule.id)
        .name(pascal_case(rule.id))
        .short_description(text(rule.summary))
        .full_description(text(rule.expects))
        .help(text(&format!(
            "{} Expects: {}. Reference: {}. Problem type: {}.",
            rule.summary, rule.expects, rule.reference, rule.type_uri
        )))
        .default_configuration(
            s::ReportingConfiguration::builder()
                .level(json!(level(rule.severity)))
                .build(),
        )
        .properties(
            s::PropertyBag::builder()
                .tags(tags)
                .additional_properties(properties)
                .build(),
        )
        .build();
    descriptor.help_uri = rfc_link(rule.reference);
    descriptor
}

fn result(located: &Located, rule_index: Option<usize>) -> s::Result {
    let finding = &located.finding;
    let message = if finding.evidence.is_empty() {
        finding.message.clone()
    } else {
        // Messages are sentences without a final stop; end one before the
        // evidence so the two never run together.
        let message = finding.message.trim_end();
        let stop = if message.ends_with(['.', '!', '?']) {
            ""
        } else {
            "."
        };
        format!("{message}{stop} Evidence: {}", finding.evidence)
    };
    let mut result = s::Result::builder()
        .rule_id(finding.rule.id)
        .level(result_level(finding.severity))
        .message(s::Message::builder().text(message).build())
        .build();
    let mut properties = BTreeMap::from([("evidence".to_owned(), json!(finding.evidence))]);
    if let Some(rule) = finding.same_as {
        properties.insert("same_as".to_owned(), json!(rule.id));
    }
    if let Some(probe) = &located.probe {
        probe_result(&mut result, &mut properties, finding.rule.id, probe);
    } else if let Some(pointer) = &located.pointer {
        spec_result(&mut result, &mut properties, located, pointer);
    } else {
        traffic_result(&mut result, &mut properties, located);
    }
    result.properties = Some(
        s::PropertyBag::builder()
            .additional_properties(properties)
            .build(),
    );
    result.rule_index = rule_index.map(|i| i as i64);
    result
}

/// A finding on recorded traffic: the file and line, and the exchange.
fn traffic_result(
    result: &mut s::Result,
    properties: &mut BTreeMap<String, serde_json::Value>,
    located: &Located,
) {
    properties.extend([
        ("entry".to_owned(), json!(located.entry)),
        ("method".to_owned(), json!(located.method)),
        ("url".to_owned(), json!(located.url)),
        ("status".to_owned(), json!(located.status)),
    ]);
    if let Some(line) = located.line {
        properties.insert("line".to_owned(), json!(line));
    }
    let logical = s::LogicalLocation::builder()
        .kind("resource")
        .name(located.url.as_str())
        .fully_qualified_name(format!("{} {}", located.method, located.url))
        .build();
    let location = s::Location::builder()
        .physical_location(physical(&located.file, located.line))
        .logical_locations(vec![logical])
        .build();
    result.locations = Some(vec![location]);
    result.web_request = Some(
        s::WebRequest::builder()
            .method(located.method.as_str())
            .target(located.url.as_str())
            .build(),
    );
    result.web_response = Some(
        s::WebResponse::builder()
            .status_code(i64::from(located.status))
            .build(),
    );
}

/// A finding on an OpenAPI document: the file and line, and the JSON
/// pointer as the logical location.
fn spec_result(
    result: &mut s::Result,
    properties: &mut BTreeMap<String, serde_json::Value>,
    located: &Located,
    pointer: &str,
) {
    properties.insert("pointer".to_owned(), json!(pointer));
    if let Some(line) = located.line {
        properties.insert("line".to_owned(), json!(line));
    }
    if !located.method.is_empty() || !located.url.is_empty() {
        properties.insert(
            "operation".to_owned(),
            json!(format!("{} {}", located.method, located.url)),
        );
    }
    let name = pointer.rsplit('/').next().unwrap_or(pointer);
    let logical = s::LogicalLocation::builder()
        .kind("object")
        .name(name.replace("~1", "/").replace("~0", "~"))
        .fully_qualified_name(pointer)
        .build();
    let mut physical = physical(&located.file, located.line);
    if let (Some(line), Some(column)) = (located.line, located.column) {
        physical.region = Some(
            s::Region::builder()
                .start_line(line as i64)
                .start_column(column as i64)
                .build(),
        );
    }
    let location = s::Location::builder()
        .physical_location(physical)
        .logical_locations(vec![logical])
        .build();
    result.locations = Some(vec![location]);
    if !located.occurrences.is_empty() {
        properties.insert("occurrences".to_owned(), json!(located.occurrences.len()));
        result.related_locations = Some(
            located
                .occurrences
                .iter()
                .enumerate()
                .map(|(i, o)| related(i, o))
                .collect(),
        );
    }
}

/// One operation a spec finding affects, as a related location: the file,
/// line and column where it meets the cause, named by the operation.
fn related(id: usize, occurrence: &Occurrence) -> s::Location {
    let mut physical = physical(&occurrence.file, occurrence.line);
    if let (Some(line), Some(column)) = (occurrence.line, occurrence.column) {
        physical.region = Some(
            s::Region::builder()
                .start_line(line as i64)
                .start_column(column as i64)
                .build(),
        );
    }
    let logical = s::LogicalLocation::builder()
        .kind("object")
        .fully_qualified_name(occurrence.pointer.as_str())
        .build();
    let mut location = s::Location::builder()
        .physical_location(physical)
        .logical_locations(vec![logical])
        .message(s::Message::builder().text(occurrence.label()).build())
        .build();
    location.id = i64::try_from(id).ok();
    location
}

/// A finding of a live probe: the request URL as the artifact, the exact
/// request and response, and how to reproduce it.
fn probe_result(
    result: &mut s::Result,
    properties: &mut BTreeMap<String, serde_json::Value>,
    rule: &str,
    probe: &ProbeEvidence,
) {
    properties.extend([
        ("probe".to_owned(), json!(rule)),
        ("operation".to_owned(), json!(probe.operation)),
        ("expected".to_owned(), json!(probe.expected)),
        ("curl".to_owned(), json!(probe.request.curl())),
    ]);
    let artifact = s::ArtifactLocation::builder()
        .uri(probe.request.url.as_str())
        .build();
    let logical = s::LogicalLocation::builder()
        .kind("resource")
        .name(probe.operation.as_str())
        .fully_qualified_name(format!("{} {}", probe.request.method, probe.request.url))
        .build();
    let location = s::Location::builder()
        .physical_location(
            s::PhysicalLocation::builder()
                .artifact_location(artifact)
                .build(),
        )
        .logical_locations(vec![logical])
        .build();
    result.locations = Some(vec![location]);
    result.web_request = Some(web_request(&probe.request));
    result.web_response = Some(match &probe.response {
        Some(response) => web_response(response),
        None => s::WebResponse::builder().no_response_received(true).build(),
    });
}

fn web_request(request: &RecordedRequest) -> s::WebRequest {
    let mut web = s::WebRequest::builder()
        .protocol("HTTP")
        .method(request.method.as_str())
        .target(request.url.as_str())
        .headers(header_object(&request.headers))
        .build();
    web.body = request.body.as_deref().map(content);
    web
}

fn web_response(response: &RecordedResponse) -> s::WebResponse {
    let mut web = s::WebResponse::builder()
        .protocol("HTTP")
        .status_code(i64::from(response.status))
        .headers(header_object(&response.headers))
        .body(content(&response.body))
        .build();
    let mut properties = BTreeMap::new();
    if response.body_cut {
        properties.insert("bodyTruncated".to_owned(), json!(true));
    }
    if let Some(error) = &response.body_error {
        properties.insert("bodyError".to_owned(), json!(error));
    }
    properties.insert(
        "elapsedMs".to_owned(),
        json!(u64::try_from(response.elapsed.as_millis()).unwrap_or(u64::MAX)),
    );
    web.properties = Some(
        s::PropertyBag::builder()
            .additional_properties(properties)
            .build(),
    );
    web
}

/// SARIF's headers are an object: repeated names are joined with `, ` as
/// RFC 9110 §5.3 allows.
fn header_object(headers: &[(String, String)]) -> BTreeMap<String, String> {
    let mut object: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        object
            .entry(name.clone())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    object
}

/// A body as SARIF artifact content: `text` when UTF-8, else `binary`
/// (base64).
fn content(body: &[u8]) -> s::ArtifactContent {
    let mut content = s::ArtifactContent::builder().build();
    match body_text(body) {
        (text, None) => content.text = Some(text.into_owned()),
        (binary, Some(_)) => content.binary = Some(binary.into_owned()),
    }
    content
}

/// "`count` more `what` and are not listed", when there are any.
fn unlisted(count: u64, (one, many): (&str, &str), level: &str) -> Option<s::Notification> {
    (count > 0).then(|| {
        let what = agree(count, one, many);
        let verb = agree(count, "is", "are");
        s::Notification::builder()
            .message(format!("{count} more {what} and {verb} not listed").as_str())
            .level(json!(level))
            .build()
    })
}

/// A check that did not run: a `note` on its rule, with what it was about
/// and why it did not run.
fn skipped_check(
    rule: &Rule,
    subject: &str,
    reason: &str,
    index: Option<usize>,
) -> s::Notification {
    let mut reference = s::ReportingDescriptorReference::builder()
        .id(rule.id)
        .build();
    reference.index = index.and_then(|i| i64::try_from(i).ok());
    s::Notification::builder()
        .message(format!("check not run: {} on {subject}: {reason}", rule.id).as_str())
        .level(json!("note"))
        .associated_rule(reference)
        .build()
}

fn notification(skipped: &Skipped) -> s::Notification {
    let location = s::Location::builder()
        .physical_location(physical(&skipped.file, skipped.line))
        .build();
    let mut notification = s::Notification::builder()
        .message(format!("entry skipped: {}", skipped.message).as_str())
        .level(json!("warning"))
        .locations(vec![location])
        .build();
    if let Some(entry) = skipped.entry {
        notification.properties = Some(
            s::PropertyBag::builder()
                .additional_properties(BTreeMap::from([("entry".to_owned(), json!(entry))]))
                .build(),
        );
    }
    notification
}

fn physical(file: &str, line: Option<usize>) -> s::PhysicalLocation {
    let artifact = s::ArtifactLocation::builder().uri(file_uri(file)).build();
    let mut physical = s::PhysicalLocation::builder()
        .artifact_location(artifact)
        .build();
    physical.region = line.map(|line| s::Region::builder().start_line(line as i64).build());
    physical
}

fn text(s: &str) -> s::MultiformatMessageString {
    s::MultiformatMessageString::builder().text(s).build()
}

/// SARIF's three result levels for candor's three severities.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warn => "warning",
        Severity::Info => "note",
    }
}

fn result_level(severity: Severity) -> s::ResultLevel {
    match severity {
        Severity::Error => s::ResultLevel::Error,
        Severity::Warn => s::ResultLevel::Warning,
        Severity::Info => s::ResultLevel::Note,
    }
}

/// A readable rule name from its ID: `auth.401_without_challenge` becomes
/// `Auth401WithoutChallenge`.
fn pascal_case(id: &str) -> String {
    id.split(['.', '_'])
        .flat_map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
        })
        .collect()
}

/// A link to the first RFC a reference cites, at its section when given:
/// `RFC 9110 §15.5.2; …` becomes
/// `https://www.rfc-editor.org/rfc/rfc9110#section-15.5.2`.
fn rfc_link(reference: &str) -> Option<String> {
    let rest = reference.strip_prefix("RFC ")?;
    let number_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let number = &rest[..number_end];
    if number.is_empty() {
        return None;
    }
    let mut link = format!("https://www.rfc-editor.org/rfc/rfc{number}");
    if let Some(section) = rest[number_end..].strip_prefix(" §") {
        let end = section
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(section.len());
        let section = section[..end].trim_end_matches('.');
        if !section.is_empty() {
            link.push_str("#section-");
            link.push_str(section);
        }
    }
    Some(link)
}

/// A file name as a URI reference: characters that may not appear in a URI
/// are percent-encoded, path separators kept.
fn file_uri(file: &str) -> String {
    let mut uri = String::with_capacity(file.len());
    for byte in file.bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&byte);
        if keep {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use candor_contract::Finding;
    use candor_contract::rules::AUTH_401_WITHOUT_CHALLENGE;
    use serde_json::Value;

    use super::*;
    use crate::report::testing::{
        HOSTILE_BODY, HOSTILE_REASON, feed, feed_probes, located, output,
    };

    fn run(feed_it: impl FnOnce(&mut dyn Sink)) -> Value {
        serde_json::from_str(&output(SarifSink::new, feed_it))
            .expect("the log is one valid JSON document")
    }

    /// The structural requirements of SARIF 2.1.0 that viewers rely on.
    fn assert_valid(log: &Value) {
        assert_eq!(log["version"], "2.1.0");
        assert_eq!(log["$schema"], SCHEMA);
        let runs = log["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 1);
        let driver = &runs[0]["tool"]["driver"];
        assert_eq!(driver["name"], "candor");
        assert!(
            driver["informationUri"]
                .as_str()
                .unwrap()
                .starts_with("https://")
        );
        let rules = driver["rules"].as_array().unwrap();
        let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids.iter().collect::<HashSet<_>>().len(),
            ids.len(),
            "rule ids are unique"
        );
        for rule in rules {
            let level = &rule["defaultConfiguration"]["level"];
            assert!(["error", "warning", "note"].contains(&level.as_str().unwrap()));
            assert!(rule["shortDescription"]["text"].is_string());
        }
        for result in runs[0]["results"].as_array().unwrap() {
            let id = result["ruleId"].as_str().unwrap();
            let index = result["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(ids[index], id, "ruleIndex points at its ruleId");
            assert!(result["message"]["text"].is_string());
            let uri = &result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"];
            assert!(uri.is_string());
        }
        // Deserialising through serde-sarif's own model checks the rest of
        // the required members.
        serde_json::from_value::<s::Sarif>(log.clone()).expect("serde-sarif reads the log back");
    }

    #[test]
    fn log_is_valid_sarif_with_the_whole_catalog() {
        let log = run(|sink| {
            feed(sink);
        });
        assert_valid(&log);
        let run = &log["runs"][0];
        assert_eq!(
            run["tool"]["driver"]["rules"].as_array().unwrap().len(),
            RULES.len()
        );
        assert_eq!(run["results"].as_array().unwrap().len(), 5);
        assert_eq!(run["properties"]["summary"]["errors"], 3);
        let notes = &run["invocations"][0]["toolExecutionNotifications"];
        assert_eq!(notes.as_array().unwrap().len(), 1);
    }

    #[test]
    fn result_carries_location_exchange_and_level() {
        let log = run(|sink| {
            feed(sink);
        });
        let results = &log["runs"][0]["results"];
        let first = &results[0];
        assert_eq!(first["level"], "error");
        assert_eq!(
            first["message"]["text"],
            "msg \"quoted\". Evidence: evidence\nline"
        );
        let physical = &first["locations"][0]["physicalLocation"];
        assert_eq!(physical["artifactLocation"]["uri"], "traffic.jsonl");
        assert_eq!(physical["region"]["startLine"], 1);
        assert_eq!(first["webRequest"]["method"], "GET");
        assert_eq!(first["webResponse"]["statusCode"], 401);
        assert_eq!(first["properties"]["entry"], 0);
        assert_eq!(first["properties"]["status"], 401);
        // A HAR entry: no region, but the entry; a lowered severity is a note.
        let har = &results[2];
        assert!(
            har["locations"][0]["physicalLocation"]
                .get("region")
                .is_none()
        );
        assert_eq!(har["properties"]["entry"], 5);
        assert_eq!(har["level"], "note");
        assert_eq!(har["message"]["text"], "no Location");
    }

    #[test]
    fn spec_findings_point_at_file_line_and_pointer() {
        let log = run(|sink| {
            feed_probes(sink);
        });
        assert_valid(&log);
        let spec = &log["runs"][0]["results"][0];
        let location = &spec["locations"][0];
        assert_eq!(
            location["physicalLocation"]["artifactLocation"]["uri"],
            "openapi.yaml"
        );
        assert_eq!(location["physicalLocation"]["region"]["startLine"], 42);
        assert_eq!(
            location["logicalLocations"][0]["fullyQualifiedName"],
            "/paths/~1users/post/responses/201"
        );
        assert_eq!(location["logicalLocations"][0]["name"], "201");
        assert_eq!(
            spec["properties"]["pointer"],
            "/paths/~1users/post/responses/201"
        );
        assert!(spec.get("webRequest").is_none() && spec.get("webResponse").is_none());
        assert_eq!(spec["level"], "warning");
    }

    #[test]
    fn checks_that_did_not_run_are_notes_on_their_rule() {
        use candor_contract::rules::PROBE_INSUFFICIENT_ROLE;
        let log = run(|sink| {
            feed_probes(sink);
        });
        assert_valid(&log);
        let notes = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
            .as_array()
            .expect("the skipped check is listed");
        let note = notes
            .iter()
            .find(|n| n["associatedRule"]["id"] == PROBE_INSUFFICIENT_ROLE.id)
            .expect("a notification on the skipped check's rule");
        assert_eq!(note["level"], "note");
        let index = note["associatedRule"]["index"].as_u64().unwrap();
        assert_eq!(
            log["runs"][0]["tool"]["driver"]["rules"][index as usize]["id"],
            PROBE_INSUFFICIENT_ROLE.id
        );
        let text = note["message"]["text"].as_str().unwrap();
        assert!(text.contains("DELETE /users/{id}"), "{text}");
        assert!(text.contains(HOSTILE_REASON), "{text}");
    }

    #[test]
    fn probe_findings_carry_request_response_and_curl() {
        let log = run(|sink| {
            feed_probes(sink);
        });
        let results = &log["runs"][0]["results"];
        let media = &results[1];
        assert_eq!(
            media["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "http://127.0.0.1:8080/users?a=1&b=2"
        );
        assert!(
            media["locations"][0]["physicalLocation"]
                .get("region")
                .is_none()
        );
        let request = &media["webRequest"];
        assert_eq!(request["method"], "POST");
        assert_eq!(request["target"], "http://127.0.0.1:8080/users?a=1&b=2");
        assert_eq!(request["headers"]["Content-Type"], "text/plain");
        assert_eq!(request["body"]["text"], HOSTILE_BODY);
        let response = &media["webResponse"];
        assert_eq!(response["statusCode"], 500);
        assert_eq!(response["headers"]["content-type"], "text/html");
        assert!(
            response["body"]["text"]
                .as_str()
                .unwrap()
                .starts_with("<html>")
        );
        let properties = &media["properties"];
        assert_eq!(properties["probe"], "probe.wrong_media_type");
        assert_eq!(properties["operation"], "POST /users");
        assert_eq!(properties["expected"], "415 (400 accepted as warn)");
        assert!(
            properties["curl"]
                .as_str()
                .unwrap()
                .starts_with("curl -i -X POST")
        );

        let oversize = &results[2];
        assert_eq!(oversize["webResponse"], json!({"noResponseReceived": true}));
        assert_eq!(
            oversize["webRequest"]["body"],
            json!({"binary": "//4AQQ=="})
        );
    }

    #[test]
    fn repeated_headers_are_joined() {
        let headers = [
            ("Vary".to_owned(), "Accept".to_owned()),
            ("Vary".to_owned(), "Origin".to_owned()),
        ];
        assert_eq!(header_object(&headers)["Vary"], "Accept, Origin");
    }

    #[test]
    fn no_findings_is_still_a_valid_log() {
        let log = run(|sink| sink.finish(&Summary::default()).unwrap());
        assert_valid(&log);
        assert_eq!(log["runs"][0]["results"], json!([]));
        assert!(
            log["runs"][0]["invocations"][0]
                .get("toolExecutionNotifications")
                .is_none()
        );
    }

    #[test]
    fn file_names_become_uri_references() {
        let finding = Finding::new(&AUTH_401_WITHOUT_CHALLENGE, "m", "e");
        let log = run(|sink| {
            sink.finding(&located("my logs/100%.jsonl", 0, Some(1), finding))
                .unwrap();
            sink.finish(&Summary::default()).unwrap();
        });
        let uri = &log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
            ["uri"];
        assert_eq!(uri, "my%20logs/100%25.jsonl");
    }

    #[test]
    fn rule_names_and_help_links_derive_from_the_catalog() {
        assert_eq!(
            pascal_case("auth.401_without_challenge"),
            "Auth401WithoutChallenge"
        );
        assert_eq!(
            rfc_link("RFC 9110 §15.5.2; RFC 6750 §3.1").as_deref(),
            Some("https://www.rfc-editor.org/rfc/rfc9110#section-15.5.2")
        );
        assert_eq!(
            rfc_link("RFC 9745; RFC 8594").as_deref(),
            Some("https://www.rfc-editor.org/rfc/rfc9745")
        );
        assert_eq!(rfc_link("candor contract §1"), None);
    }
}
