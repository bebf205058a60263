//! `candor audit --spec ... --base-url ...` run as a user runs it, against a
//! tiny HTTP/1.1 API started by the test on 127.0.0.1 port 0.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// One GET operation, one secured operation.
const SPEC: &str = r#"
openapi: 3.1.0
info: {title: cli fixture, version: '1'}
paths:
  /items:
    get:
      responses:
        '200':
          description: the items
          content:
            application/json:
              schema: {type: object}
  /private:
    get:
      security: [{bearer: []}]
      responses:
        '200':
          description: secrets
          content:
            application/json:
              schema: {type: object}
components:
  securitySchemes:
    bearer: {type: http, scheme: bearer}
"#;

/// How the fixture API behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Keeps the contract.
    Good,
    /// Answers every unknown path with 200 (probe.unknown_route).
    CatchAll,
}

/// Serves the fixture API until the test's runtime ends.
async fn serve(mode: Mode) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream, mode));
        }
    });
    addr
}

/// Reads one request (head and Content-Length body, bounded) and answers
/// it, closing the connection.
async fn answer(mut stream: TcpStream, mode: Mode) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length.min(1 << 20) {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or("");
    let path = words.next().unwrap_or("");
    let authorised = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("authorization: Bearer good"));
    let has_auth = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("authorization:"));
    let problem = |status: u16, title: &str| {
        format!(r#"{{"type":"about:blank","title":"{title}","status":{status}}}"#)
    };
    let (status, extra, content_type, body) = match (method, path) {
        ("GET", "/items") => (200, String::new(), "application/json", "{}".to_owned()),
        // The API serves its own description.
        ("GET", "/openapi.yaml") => (200, String::new(), "application/yaml", SPEC.to_owned()),
        // Its server relative to where the document is served.
        ("GET", "/docs/openapi.yaml") => (
            200,
            String::new(),
            "application/yaml",
            SPEC.replacen("paths:", "servers:\n  - url: ../\npaths:", 1),
        ),
        (_, "/items") | (_, "/private") if method != "GET" => (
            405,
            "Allow: GET\r\n".to_owned(),
            "application/problem+json",
            problem(405, "Method Not Allowed"),
        ),
        ("GET", "/private") if authorised => {
            (200, String::new(), "application/json", "{}".to_owned())
        }
        ("GET", "/private") => {
            let challenge = if has_auth {
                "Bearer realm=\"cli\", error=\"invalid_token\""
            } else {
                "Bearer realm=\"cli\""
            };
            (
                401,
                format!("WWW-Authenticate: {challenge}\r\n"),
                "application/problem+json",
                problem(401, "Unauthorized"),
            )
        }
        _ if mode == Mode::CatchAll => (200, String::new(), "application/json", "{}".to_owned()),
        _ => (
            404,
            String::new(),
            "application/problem+json",
            problem(404, "Not Found"),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

struct Spec {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn spec(text: &str) -> Spec {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.yaml");
    std::fs::write(&path, text).unwrap();
    Spec { _dir: dir, path }
}

/// Runs candor off the runtime's threads, so the fixture keeps serving.
async fn candor(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_candor"))
            .args(&args)
            .output()
            .expect("run candor")
    })
    .await
    .unwrap()
}

fn audit_args(spec: &Spec, addr: SocketAddr, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "audit".to_owned(),
        "--spec".to_owned(),
        spec.path.display().to_string(),
        "--base-url".to_owned(),
        format!("http://{addr}"),
        "--no-progress".to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conforming_api_exits_0() {
    let addr = serve(Mode::Good).await;
    let spec = spec(SPEC);
    let out = candor(audit_args(
        &spec,
        addr,
        &[
            "--auth",
            "reader=Bearer good",
            "--auth",
            "expired=Bearer old",
            "--format",
            "json",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc = json_of(&out);
    assert_eq!(doc["summary"]["errors"], 0, "{doc:#}");
    assert!(doc["findings"].as_array().unwrap().is_empty(), "{doc:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_s_counts_agree_from_line_to_line() {
    let addr = serve(Mode::Good).await;
    let spec = spec(SPEC);
    // No --auth: the probes that need a credential are skipped.
    let out = candor(audit_args(&spec, addr, &[])).await;
    let text = String::from_utf8_lossy(&out.stdout);
    let checks = text
        .lines()
        .find(|l| l.contains(" checks: "))
        .unwrap_or_else(|| panic!("no checks line: {text}"));
    let skipped: u64 = checks
        .rsplit(", ")
        .next()
        .and_then(|s| s.strip_suffix(" skipped"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{checks}"));
    assert!(skipped > 0, "{text}");
    // The last line counts unreadable answers, and says so: no second
    // "skipped" count that disagrees with the checks line.
    let last = text.lines().last().unwrap();
    assert!(last.ends_with(", 0 unreadable"), "{text}");
    let skipped_counts: Vec<&str> = text
        .lines()
        .filter(|l| l.ends_with(" skipped") && !l.starts_with("  "))
        .collect();
    assert_eq!(skipped_counts, [checks], "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_takes_a_duration_or_bare_seconds() {
    let addr = serve(Mode::Good).await;
    let spec = spec(SPEC);
    let auth = [
        "--auth",
        "reader=Bearer good",
        "--auth",
        "expired=Bearer old",
    ];
    for timeout in ["10s", "1.5m", "10"] {
        let args = [&auth[..], &["--timeout", timeout]].concat();
        let out = candor(audit_args(&spec, addr, &args)).await;
        assert_eq!(out.status.code(), Some(0), "{timeout}: {}", stderr(&out));
    }
    for (timeout, says) in [
        ("10 s", "invalid duration \"10 s\""),
        ("0s", "longer than zero"),
        ("11m", "at most 600 s"),
    ] {
        let args = [&auth[..], &["--timeout", timeout]].concat();
        let out = candor(audit_args(&spec, addr, &args)).await;
        assert_eq!(out.status.code(), Some(2), "{timeout}");
        assert!(stderr(&out).contains(says), "{timeout}: {}", stderr(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_exit_1_with_request_response_and_a_curl_line_in_json() {
    let addr = serve(Mode::CatchAll).await;
    let spec = spec(SPEC);
    let out = candor(audit_args(&spec, addr, &["--format", "json"])).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc = json_of(&out);
    let findings = doc["findings"].as_array().unwrap();
    let route = findings
        .iter()
        .find(|f| f["rule"] == "probe.unknown_route")
        .unwrap_or_else(|| panic!("no probe.unknown_route: {doc:#}"));
    assert_eq!(route["probe"], "probe.unknown_route");
    assert_eq!(route["expected"], "404");
    assert!(
        route["operation"]
            .as_str()
            .unwrap()
            .starts_with("GET /candor-probe-")
    );
    let url = route["request"]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("http://{addr}/candor-probe-")),
        "{url}"
    );
    assert_eq!(route["request"]["method"], "GET");
    assert_eq!(route["response"]["status"], 200);
    let curl = route["curl"].as_str().unwrap();
    assert!(curl.starts_with("curl -i"), "{curl}");
    assert!(curl.contains(url), "{curl}");

    // --fail-on never keeps the report and exits 0.
    let out = candor(audit_args(&spec, addr, &["--fail-on", "never"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("probe.unknown_route"), "{table}");
    assert!(table.contains("curl -i"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_2_with_a_clear_message() {
    let addr = serve(Mode::Good).await;
    let spec = spec(SPEC);

    let out = candor(audit_args(&spec, addr, &["--auth", "admin-Bearer-secret"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("ROLE=VALUE"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("secret"), "the token is not echoed");

    let mut args = audit_args(&spec, addr, &[]);
    args[2] = "/nonexistent/api.yaml".to_owned();
    let out = candor(args).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/api.yaml"),
        "{}",
        stderr(&out)
    );

    let out = candor(audit_args(&spec, addr, &["--burst", "10"])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--allow-destructive"),
        "{}",
        stderr(&out)
    );

    // No --base-url and no server in the document.
    let out = candor(vec![
        "audit".into(),
        "--spec".into(),
        spec.path.display().to_string(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--base-url"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_that_answers_nothing_exits_2() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let spec = spec(SPEC);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let out = candor(audit_args(&spec, addr, &["--budget", "20"])).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot be reached") && stderr(&out).contains("nothing was probed"),
        "{}",
        stderr(&out)
    );
    // One line on stderr, and no report on stdout for CI to upload.
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_base_url_defaults_to_the_documents_first_server() {
    let addr = serve(Mode::Good).await;
    let text = SPEC.replacen(
        "paths:",
        &format!("servers:\n  - url: http://{addr}\npaths:"),
        1,
    );
    let spec = spec(&text);
    let out = candor(vec![
        "audit".into(),
        "--spec".into(),
        spec.path.display().to_string(),
        "--auth".into(),
        "reader=Bearer good".into(),
        "--no-progress".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("first server"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_may_be_a_url_the_api_serves_it_at() {
    let addr = serve(Mode::Good).await;
    let base = format!("http://{addr}");
    let spec = format!("{base}/openapi.yaml");
    // From a directory with no document in it.
    let out = candor(vec![
        "audit".into(),
        "--spec".into(),
        spec.clone(),
        "--base-url".into(),
        base.clone(),
        "--no-progress".into(),
        "--format".into(),
        "json".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json_of(&out);
    assert!(report["cases"]["passed"].as_u64().unwrap() > 0, "{report}");

    // A URL that is not the document: exit 2, naming it and its answer.
    let missing = format!("{base}/missing.yaml");
    let out = candor(vec![
        "audit".into(),
        "--spec".into(),
        missing.clone(),
        "--base-url".into(),
        base,
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "cannot fetch the document: {missing} answered 404, not the document"
        )),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_server_url_is_resolved_against_the_spec_url() {
    let addr = serve(Mode::Good).await;
    let out = candor(vec![
        "audit".into(),
        "--spec".into(),
        format!("http://{addr}/docs/openapi.yaml"),
        "--no-progress".into(),
        "--format".into(),
        "json".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("probing http://{addr}/, the first server")),
        "{}",
        stderr(&out)
    );
    let report = json_of(&out);
    assert!(report["cases"]["passed"].as_u64().unwrap() > 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_names_what_was_audited_and_its_verdict_follows_the_exit_code() {
    for (mode, code, verdict) in [
        (
            Mode::Good,
            0,
            "verdict-pass\">\n<p><span class=\"word\">PASS</span> exit code 0",
        ),
        (
            Mode::CatchAll,
            1,
            "verdict-fail\">\n<p><span class=\"word\">FAIL</span> exit code 1",
        ),
    ] {
        let addr = serve(mode).await;
        let spec = spec(SPEC);
        let out = candor(audit_args(&spec, addr, &["--format", "html"])).await;
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
        let html = String::from_utf8_lossy(&out.stdout);
        assert!(html.contains(verdict), "{html}");
        let base = format!("<tr><th>Base URL</th><td><code>http://{addr}</code></td></tr>");
        assert!(html.contains(&base), "{html}");
        let document = format!(
            "<tr><th>Document</th><td><code>{}</code></td></tr>",
            spec.path.display()
        );
        assert!(html.contains(&document), "{html}");
        assert!(html.contains("<tr><th>API</th><td>cli fixture, version 1</td></tr>"));
        assert!(html.contains("<h2 id=\"matrix\">"), "{html}");
    }
}
