//! Reading recorded traffic end to end: formats, compression, damaged
//! entries, fatal errors, and the same output whatever the thread count.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use candor_audit::lint::{self, LintError, LintOptions, NoProgress, Progress};
use candor_audit::{Located, Sink, Skipped, Summary};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use tempfile::TempDir;

/// Remembers everything the engine reports, in order.
#[derive(Default)]
struct Recorder {
    findings: Vec<Located>,
    skipped: Vec<Skipped>,
    finished: Vec<Summary>,
}

impl Sink for Recorder {
    fn finding(&mut self, finding: &Located) -> std::io::Result<()> {
        self.findings.push(finding.clone());
        Ok(())
    }

    fn skipped(&mut self, skipped: &Skipped) -> std::io::Result<()> {
        self.skipped.push(skipped.clone());
        Ok(())
    }

    fn finish(&mut self, summary: &Summary) -> std::io::Result<()> {
        self.finished.push(*summary);
        Ok(())
    }
}

impl Recorder {
    /// Rule IDs found, with the entry index they were found at.
    fn rules(&self) -> Vec<(usize, &'static str)> {
        self.findings
            .iter()
            .map(|f| (f.entry, f.finding.rule.id))
            .collect()
    }

    /// Everything reported, one line per event, for comparing runs.
    fn transcript(&self) -> Vec<String> {
        let findings = self.findings.iter().map(|f| {
            format!(
                "{} #{} L{:?} {} {} {} {} {} {}",
                f.file,
                f.entry,
                f.line,
                f.method,
                f.url,
                f.status,
                f.finding.rule.id,
                f.finding.severity,
                f.finding.message
            )
        });
        let skipped = self.skipped.iter().map(|s| format!("skipped {s}"));
        findings.chain(skipped).collect()
    }
}

fn lint_with(files: &[&Path], threads: usize) -> Result<(Summary, Recorder), LintError> {
    let inputs: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let options = LintOptions {
        threads,
        ..LintOptions::default()
    };
    let mut sink = Recorder::default();
    let summary = lint::run(&inputs, &options, &NoProgress, &mut sink)?;
    assert_eq!(
        sink.finished,
        [summary],
        "finish is called once, with the summary"
    );
    Ok((summary, sink))
}

fn lint(file: &Path) -> (Summary, Recorder) {
    lint_with(&[file], 2).expect("the file is readable")
}

fn lint_error(file: &Path) -> String {
    match lint_with(&[file], 2) {
        Ok(_) => panic!("{} should not be readable", file.display()),
        Err(e) => e.to_string(),
    }
}

fn write(dir: &TempDir, name: &str, content: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn gzip(content: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(content).unwrap();
    encoder.finish().unwrap()
}

/// A JSON-lines exchange.
fn line(method: &str, url: &str, status: u16, headers: Value) -> String {
    json!({
        "request": {"method": method, "url": url},
        "response": {"status": status, "headers": headers},
    })
    .to_string()
}

/// A HAR 1.2 entry with only the members the linter needs.
fn har_entry(method: &str, url: &str, status: u16, headers: Value, content: Value) -> Value {
    json!({
        "request": {"method": method, "url": url, "httpVersion": "HTTP/2", "headers": []},
        "response": {"status": status, "headers": headers, "content": content},
    })
}

fn har(entries: Vec<Value>) -> Value {
    json!({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": entries}})
}

#[test]
fn corrupt_json_line_is_skipped_with_its_line_number_and_the_rest_linted() {
    let dir = TempDir::new().unwrap();
    let text = [
        line("GET", "https://api.example/users/1", 200, json!({})),
        String::new(),
        r#"{"request":{"method":"GET","url":"/"},"response":{"status":"x"}}"#.to_owned(),
        "{not json".to_owned(),
        line("POST", "https://api.example/users", 201, json!({})),
    ]
    .join("\n");
    let file = write(&dir, "traffic.jsonl", text.as_bytes());

    let (summary, sink) = lint(&file);

    assert_eq!(summary.exchanges, 2);
    assert_eq!(summary.skipped, 2);
    assert_eq!(sink.skipped[0].line, Some(3));
    assert_eq!(sink.skipped[0].entry, Some(1));
    assert_eq!(
        sink.skipped[0].message,
        r#"response.status: invalid type: string "x", expected u16"#
    );
    assert_eq!(sink.skipped[0].file, file.display().to_string());
    assert_eq!(sink.skipped[1].line, Some(4));
    assert!(sink.skipped[1].message.starts_with("invalid JSON"));
    assert_eq!(sink.rules(), [(3, "created.201_without_location")]);
    assert_eq!(sink.findings[0].line, Some(5));
    assert_eq!(sink.findings[0].method, "POST");
    assert_eq!(sink.findings[0].status, 201);
}

#[test]
fn json_lines_headers_may_repeat_and_bodies_may_be_base64() {
    let dir = TempDir::new().unwrap();
    let text = [
        json!({"request": {"method": "POST", "url": "https://api.example/users"},
               "response": {"status": 201, "headers": {"Location": ["/users/7"]}}})
        .to_string(),
        json!({"request": {"method": "DELETE", "url": "https://api.example/users/7"},
               "response": {"status": 204, "body_base64": "aGk="}})
        .to_string(),
    ]
    .join("\r\n");
    let file = write(&dir, "traffic.jsonl", text.as_bytes());

    let (summary, sink) = lint(&file);

    assert_eq!(summary.exchanges, 2);
    assert_eq!(sink.rules(), [(1, "no_content.204_with_body")]);
}

#[test]
fn gzip_is_recognised_from_the_content_not_the_name() {
    let dir = TempDir::new().unwrap();
    let text = [
        line("POST", "https://api.example/users", 201, json!({})),
        line("GET", "https://site.example/users", 405, json!({})),
    ]
    .join("\n");
    let file = write(&dir, "traffic.jsonl", &gzip(text.as_bytes()));

    let (summary, sink) = lint(&file);

    assert_eq!(summary.exchanges, 2);
    assert_eq!(
        sink.rules(),
        [
            (0, "created.201_without_location"),
            (1, "method.405_without_allow")
        ]
    );
}

#[test]
fn concatenated_gzip_members_are_all_read() {
    let dir = TempDir::new().unwrap();
    let mut content = gzip(format!("{}\n", line("GET", "/a", 200, json!({}))).as_bytes());
    content.extend(gzip(line("GET", "/b", 200, json!({})).as_bytes()));
    let file = write(&dir, "traffic.gz", &content);

    let (summary, _) = lint(&file);

    assert_eq!(summary.exchanges, 2);
}

#[test]
fn har_without_cache_timings_or_cookies_is_linted() {
    let dir = TempDir::new().unwrap();
    let doc = har(vec![
        har_entry("GET", "https://api.example/a", 200, json!([]), json!({})),
        json!({"request": {"method": "POST", "url": "https://api.example/users"},
               "response": {"status": 201}}),
    ]);
    let file = write(&dir, "export.har", doc.to_string().as_bytes());

    let (summary, sink) = lint(&file);

    assert_eq!(summary.exchanges, 2);
    assert_eq!(summary.skipped, 0);
    assert_eq!(sink.rules(), [(1, "created.201_without_location")]);
    assert_eq!(sink.findings[0].line, None);
}

#[test]
fn har_base64_body_is_decoded() {
    let dir = TempDir::new().unwrap();
    let body = json!({"size": 2, "mimeType": "text/plain", "text": "aGk=", "encoding": "base64"});
    let doc = har(vec![har_entry(
        "DELETE",
        "https://api.example/users/7",
        204,
        json!([]),
        body,
    )]);
    let file = write(&dir, "export.har", doc.to_string().as_bytes());

    let (_, sink) = lint(&file);

    assert_eq!(sink.rules(), [(0, "no_content.204_with_body")]);
    assert!(
        sink.findings[0].finding.evidence.contains("hi")
            || sink.findings[0].finding.message.contains('2'),
        "the decoded body is what was checked"
    );
}

#[test]
fn har_pseudo_headers_are_dropped_and_bad_headers_skip_the_entry() {
    let dir = TempDir::new().unwrap();
    let mut created = har_entry(
        "POST",
        "https://api.example/users",
        201,
        json!([{"name": ":status", "value": "201"}, {"name": "Location", "value": "/users/7"}]),
        json!({"size": 0, "mimeType": ""}),
    );
    created["request"]["headers"] = json!([
        {"name": ":method", "value": "POST"},
        {"name": ":authority", "value": "api.example"},
        {"name": ":path", "value": "/users"},
        {"name": "content-type", "value": "application/json"}
    ]);
    let broken = har_entry(
        "GET",
        "https://api.example/users",
        200,
        json!([{"name": "bad name", "value": "x"}]),
        json!({}),
    );
    let doc = har(vec![created, broken]);
    let file = write(&dir, "export.har", doc.to_string().as_bytes());

    let (summary, sink) = lint(&file);

    assert_eq!(summary.exchanges, 1);
    assert!(sink.findings.is_empty(), "{:?}", sink.transcript());
    assert_eq!(sink.skipped.len(), 1);
    assert_eq!(sink.skipped[0].entry, Some(1));
    assert_eq!(sink.skipped[0].line, None);
    assert!(sink.skipped[0].message.contains("bad name"));
}

#[test]
fn pretty_printed_har_with_aborted_requests_is_read() {
    let dir = TempDir::new().unwrap();
    let doc = har(vec![
        har_entry("GET", "https://api.example/a", 0, json!([]), json!({})),
        har_entry("GET", "https://site.example/b", 405, json!([]), json!({})),
    ]);
    let pretty = serde_json::to_string_pretty(&doc).unwrap();
    assert!(pretty.lines().count() > 10);
    let file = write(&dir, "export.har", pretty.as_bytes());

    let (summary, sink) = lint(&file);

    assert_eq!(summary.exchanges, 1);
    assert_eq!(summary.skipped, 1);
    assert_eq!(sink.skipped[0].entry, Some(0));
    assert!(sink.skipped[0].message.contains("status is 0"));
    assert_eq!(sink.rules(), [(1, "method.405_without_allow")]);
}

#[test]
fn format_is_recognised_from_the_content_whatever_the_extension() {
    let dir = TempDir::new().unwrap();
    let lines = line("GET", "https://site.example/a", 405, json!({}));
    let doc = har(vec![har_entry(
        "GET",
        "https://site.example/a",
        405,
        json!([]),
        json!({}),
    )]);
    let lines_as_har = write(&dir, "lines.har", lines.as_bytes());
    let har_as_lines = write(&dir, "doc.jsonl", doc.to_string().as_bytes());
    let gzip_har_as_text = write(&dir, "doc.txt", &gzip(doc.to_string().as_bytes()));

    for file in [&lines_as_har, &har_as_lines, &gzip_har_as_text] {
        let (summary, sink) = lint(file);
        assert_eq!(summary.exchanges, 1, "{}", file.display());
        assert_eq!(sink.rules(), [(0, "method.405_without_allow")]);
    }
    let (_, sink) = lint(&lines_as_har);
    assert_eq!(sink.findings[0].line, Some(1), "JSON lines carry lines");
}

#[test]
fn an_empty_input_is_refused() {
    let dir = TempDir::new().unwrap();
    for (name, content) in [
        ("blank.jsonl", &b"\n  \n"[..]),
        ("empty.har", b""),
        ("bom.jsonl", b"\xEF\xBB\xBF \n"),
    ] {
        let file = write(&dir, name, content);
        let message = lint_error(&file);
        assert!(
            message.starts_with(&format!("{}: is empty", file.display())),
            "{message}"
        );
    }
    let file = write(&dir, "empty.gz", &gzip(b"  \n"));
    assert!(lint_error(&file).contains(": is empty"));
}

#[test]
fn fatal_errors_name_the_file() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("missing.har");
    let message = lint_error(&missing);
    assert!(
        message.starts_with(&missing.display().to_string()),
        "{message}"
    );
    assert!(message.contains("cannot open"), "{message}");

    let html = write(&dir, "page.har", b"<html></html>");
    let message = lint_error(&html);
    assert!(
        message.starts_with(&html.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains("not an OpenAPI 3.x document, a HAR file or JSON lines"),
        "{message}"
    );

    let broken = write(
        &dir,
        "broken.har",
        b"{\n  \"log\": {\n    \"entries\": [\n      {,\n",
    );
    let message = lint_error(&broken);
    assert!(
        message.starts_with(&format!("{}:4:8: invalid HAR", broken.display())),
        "{message}"
    );

    let spread = write(&dir, "object.json", b"{\n  \"request\": {}\n}\n");
    let message = lint_error(&spread);
    assert!(message.contains("one exchange per line"), "{message}");

    let other = write(
        &dir,
        "package.json",
        b"{\"name\": \"x\", \"version\": \"1\"}",
    );
    let message = lint_error(&other);
    assert!(
        message.contains("a JSON object with keys `name`, `version`")
            && message.contains("expected an OpenAPI 3.x document"),
        "{message}"
    );
    let not_exchanges = write(
        &dir,
        "log.jsonl",
        b"{\"level\":\"info\"}\n{\"level\":\"warn\"}\n",
    );
    let message = lint_error(&not_exchanges);
    assert!(
        message.contains("first line is not an exchange"),
        "{message}"
    );

    let mut bad_gzip = gzip(line("GET", "/", 200, json!({})).as_bytes());
    let middle = bad_gzip.len() / 2;
    bad_gzip.truncate(middle);
    let truncated = write(&dir, "truncated.gz", &bad_gzip);
    let message = lint_error(&truncated);
    assert!(
        message.starts_with(&truncated.display().to_string()),
        "{message}"
    );
    assert!(message.contains("gzip"), "{message}");

    let garbage = write(&dir, "garbage.gz", b"\x1f\x8bnot really gzip at all");
    let message = lint_error(&garbage);
    assert!(message.contains("cannot read gzip data"), "{message}");
}

#[test]
fn a_bad_file_stops_the_run_after_the_good_ones() {
    let dir = TempDir::new().unwrap();
    let good = write(
        &dir,
        "good.jsonl",
        line("GET", "/", 405, json!({})).as_bytes(),
    );
    let missing = dir.path().join("missing.jsonl");
    let inputs = [good.display().to_string(), missing.display().to_string()];
    let mut sink = Recorder::default();

    let result = lint::run(&inputs, &LintOptions::default(), &NoProgress, &mut sink);

    assert!(matches!(result, Err(LintError::Input(_))));
    assert_eq!(sink.findings.len(), 1);
    assert!(sink.finished.is_empty(), "finish only after a complete run");
}

#[test]
fn history_carries_across_files() {
    let dir = TempDir::new().unwrap();
    let first = write(
        &dir,
        "first.jsonl",
        line("DELETE", "https://site.example/users/7", 204, json!({})).as_bytes(),
    );
    let second = write(
        &dir,
        "second.jsonl",
        line("GET", "https://site.example/users/7", 404, json!({})).as_bytes(),
    );

    let (summary, sink) = lint_with(&[&first, &second], 2).unwrap();

    assert_eq!(summary.exchanges, 2);
    assert_eq!(sink.rules(), [(0, "gone.404_after_delete")]);
    assert_eq!(sink.findings[0].file, second.display().to_string());
}

/// Many exchanges of many kinds, with damaged lines and deletions whose
/// 404s come batches later.
fn varied_traffic(count: usize) -> String {
    let mut out = String::new();
    for i in 0..count {
        let id = i % 97;
        let text = match i % 11 {
            0 => line(
                "DELETE",
                &format!("https://api.example/items/{id}"),
                204,
                json!({}),
            ),
            1 => line(
                "GET",
                &format!("https://api.example/items/{id}"),
                404,
                json!({}),
            ),
            2 => line("POST", "https://api.example/items", 201, json!({})),
            3 => line("GET", "https://api.example/items", 429, json!({})),
            4 => r#"{"request":{"method":"GET","url":"/"},"response":{"status":-1}}"#.to_owned(),
            5 => String::new(),
            6 => json!({"request": {"method": "GET", "url": "https://api.example/items"},
                        "response": {"status": 200,
                                     "headers": {"content-type": "application/json"},
                                     "body": "{\"success\": false}"}})
            .to_string(),
            7 => line("GET", "https://api.example/x", 999, json!({})),
            8 => line(
                "GET",
                "https://api.example/y",
                401,
                json!({"www-authenticate": "Bearer realm=\"x\""}),
            ),
            _ => line(
                "GET",
                &format!("https://api.example/items/{id}"),
                200,
                json!({}),
            ),
        };
        out.push_str(&text);
        out.push('\n');
    }
    out
}

#[test]
fn output_is_the_same_with_one_thread_or_four() {
    let dir = TempDir::new().unwrap();
    let lines = write(&dir, "big.jsonl", varied_traffic(12_000).as_bytes());
    let zipped = write(
        &dir,
        "big.jsonl.gz",
        &gzip(varied_traffic(3_000).as_bytes()),
    );
    let entries = (0..2_000)
        .map(|i| {
            let status = [200, 201, 204, 404, 0, 405, 503][i % 7];
            let method = if i % 5 == 0 { "DELETE" } else { "GET" };
            har_entry(
                method,
                &format!("https://api.example/h/{}", i % 13),
                status,
                json!([]),
                json!({}),
            )
        })
        .collect();
    let doc = write(&dir, "big.har", har(entries).to_string().as_bytes());
    let files = [lines.as_path(), zipped.as_path(), doc.as_path()];

    let (one_summary, one) = lint_with(&files, 1).unwrap();
    let (four_summary, four) = lint_with(&files, 4).unwrap();

    assert!(one_summary.exchanges > 10_000);
    assert!(one_summary.skipped > 1_000);
    assert!(
        one.rules()
            .iter()
            .any(|(_, id)| *id == "gone.404_after_delete")
    );
    assert_eq!(one_summary, four_summary);
    let (one, four) = (one.transcript(), four.transcript());
    assert_eq!(one.len(), four.len());
    for (a, b) in one.iter().zip(&four) {
        assert_eq!(a, b);
    }
}

/// Fails like a closed pipe after a few findings.
struct ClosedPipe(usize);

impl Sink for ClosedPipe {
    fn finding(&mut self, _: &Located) -> std::io::Result<()> {
        self.0 += 1;
        if self.0 > 10 {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        Ok(())
    }

    fn skipped(&mut self, _: &Skipped) -> std::io::Result<()> {
        Ok(())
    }

    fn finish(&mut self, _: &Summary) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_sink_stops_the_run() {
    let dir = TempDir::new().unwrap();
    let file = write(&dir, "big.jsonl", varied_traffic(20_000).as_bytes());
    for threads in [1, 4] {
        let options = LintOptions {
            threads,
            ..LintOptions::default()
        };
        let result = lint::run(
            &[file.display().to_string()],
            &options,
            &NoProgress,
            &mut ClosedPipe(0),
        );
        let error = result.expect_err("the sink failed");
        assert!(matches!(error, LintError::Output(_)));
        assert_eq!(
            error.io_error().map(std::io::Error::kind),
            Some(std::io::ErrorKind::BrokenPipe)
        );
    }
}

/// Counts what the engine tells a progress bar.
#[derive(Default)]
struct Counter {
    started: Mutex<Vec<(String, Option<u64>)>>,
    bytes: AtomicU64,
    finished: AtomicU64,
}

impl Progress for Counter {
    fn start_file(&self, name: &str, total_bytes: Option<u64>) {
        self.started
            .lock()
            .unwrap()
            .push((name.to_owned(), total_bytes));
    }

    fn advance(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn finish(&self) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn progress_counts_the_bytes_as_stored() {
    let dir = TempDir::new().unwrap();
    let plain = write(&dir, "a.jsonl", varied_traffic(3_000).as_bytes());
    let zipped = write(&dir, "b.jsonl.gz", &gzip(varied_traffic(3_000).as_bytes()));
    let sizes: Vec<u64> = [&plain, &zipped]
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    let inputs = [plain.display().to_string(), zipped.display().to_string()];
    let progress = Counter::default();

    lint::run(
        &inputs,
        &LintOptions::default(),
        &progress,
        &mut Recorder::default(),
    )
    .unwrap();

    let started = progress.started.lock().unwrap().clone();
    assert_eq!(
        started,
        [
            (inputs[0].clone(), Some(sizes[0])),
            (inputs[1].clone(), Some(sizes[1]))
        ]
    );
    assert_eq!(progress.bytes.load(Ordering::Relaxed), sizes[0] + sizes[1]);
    assert_eq!(progress.finished.load(Ordering::Relaxed), 2);
}

/// The two passive distinctions of the contract in recorded traffic: a
/// JSON body that does not parse answered 422 (entry 0), and a Bearer
/// token refused with a 401 whose challenge has no invalid_token (entry
/// 1). Their right answers (400; invalid_token) follow and pass. HAR and
/// JSON lines carry the request body and headers alike.
#[test]
fn malformed_json_answered_422_and_a_refused_token_without_invalid_token_are_found() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/traffic");
    for name in ["passive.har", "passive.jsonl"] {
        let (summary, sink) = lint(&fixtures.join(name));
        assert_eq!(
            sink.rules(),
            [
                (0, "body.malformed_not_400"),
                (1, "auth.401_without_invalid_token"),
            ],
            "{name}: {:#?}",
            sink.transcript()
        );
        assert_eq!(summary.exchanges, 4, "{name}");
        let malformed = &sink.findings[0];
        assert_eq!(malformed.status, 422);
        assert_eq!(malformed.finding.severity, candor_contract::Severity::Error);
        assert!(
            malformed
                .finding
                .message
                .starts_with("422 in answer to a body that does not parse"),
            "{}",
            malformed.finding.message
        );
        assert_eq!(malformed.finding.evidence, r#"{"item": "book", "qty": "#);
        let refused = &sink.findings[1];
        assert_eq!(refused.finding.severity, candor_contract::Severity::Warn);
        assert_eq!(refused.finding.evidence, r#"Bearer realm="api""#);
        assert!(
            !refused.finding.message.contains("eyJ"),
            "no credential in reports"
        );
    }
}
