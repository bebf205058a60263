//! The `candor` binary, driven as a user drives it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn candor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_candor"))
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn run(args: &[&str]) -> Output {
    candor().args(args).output().expect("run candor")
}

fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = candor()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn candor");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The sample traffic names what each line plants in its `comment`:
/// `planted: <rule>` or `clean: ...`.
fn planted() -> Vec<Option<String>> {
    std::fs::read_to_string(repo_file("examples/traffic.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let comment = v["comment"].as_str().unwrap().to_owned();
            comment.strip_prefix("planted: ").map(str::to_owned)
        })
        .collect()
}

#[test]
fn lint_finds_every_planted_violation_and_nothing_on_clean_exchanges() {
    let sample = repo_file("examples/traffic.jsonl");
    let out = run(&["lint", "--format", "json", sample.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "errors were found: exit 1");
    let report = json_of(&out);
    let findings = report["findings"].as_array().unwrap();
    let expected = planted();

    let mut seen = vec![Vec::new(); expected.len()];
    for f in findings {
        let entry = f["entry"].as_u64().unwrap() as usize;
        seen[entry].push(f["rule"].as_str().unwrap().to_owned());
        assert_eq!(f["line"].as_u64(), Some(entry as u64 + 1));
        assert!(f["file"].as_str().unwrap().ends_with("traffic.jsonl"));
    }
    for (entry, want) in expected.iter().enumerate() {
        match want {
            Some(rule) => assert_eq!(seen[entry], [rule.as_str()], "entry {entry}"),
            None => assert!(
                seen[entry].is_empty(),
                "clean entry {entry} flagged: {:?}",
                seen[entry]
            ),
        }
    }
    // Every section-2 rule is planted once.
    let passive: Vec<_> = candor_rules_of_section(2);
    let mut planted_rules: Vec<_> = expected.iter().flatten().cloned().collect();
    planted_rules.sort();
    assert_eq!(planted_rules, passive);

    let summary = &report["summary"];
    assert_eq!(summary["exchanges"], expected.len());
    assert_eq!(summary["skipped"], 0);
    let total = summary["errors"].as_u64().unwrap()
        + summary["warnings"].as_u64().unwrap()
        + summary["infos"].as_u64().unwrap();
    assert_eq!(total as usize, findings.len());
}

fn candor_rules_of_section(section: u64) -> Vec<String> {
    let out = run(&["rules", "--format", "json"]);
    assert!(out.status.success());
    let rules = json_of(&out);
    let mut ids: Vec<String> = rules
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            let s = r["section"].as_str().unwrap();
            matches!(
                (section, s),
                (1, "gateway") | (2, "passive") | (3, "probe") | (4, "fault")
            )
        })
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn rules_lists_every_section() {
    assert_eq!(candor_rules_of_section(1).len(), 36);
    assert_eq!(candor_rules_of_section(2).len(), 17);
    assert_eq!(candor_rules_of_section(3).len(), 14);
    assert!(!candor_rules_of_section(4).is_empty());
    let table = run(&["rules"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("rate.429_without_retry_after"));
}

#[test]
fn fail_on_sets_the_threshold() {
    let sample = repo_file("examples/traffic.jsonl");
    let sample = sample.to_str().unwrap();
    assert_eq!(
        run(&["lint", "--fail-on", "never", sample]).status.code(),
        Some(0)
    );

    let dir = tempfile::tempdir().unwrap();
    let info_only = dir.path().join("info.jsonl");
    std::fs::write(
        &info_only,
        r#"{"request":{"method":"DELETE","url":"https://x/t/1"},"response":{"status":200,"headers":{"content-type":"application/json"},"body":"{}"}}"#,
    )
    .unwrap();
    let p = info_only.to_str().unwrap();
    assert_eq!(
        run(&["lint", p]).status.code(),
        Some(0),
        "info is below the default threshold"
    );
    assert_eq!(
        run(&["lint", "--fail-on", "info", p]).status.code(),
        Some(1)
    );
}

#[test]
fn a_corrupt_line_is_named_and_the_rest_is_still_linted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    let good = r#"{"request":{"method":"GET","url":"https://x/a"},"response":{"status":429}}"#;
    std::fs::write(&path, format!("{good}\n{{not json\n\n{good}\n")).unwrap();
    let out = run(&["lint", "--format", "json", path.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "skipped input is an input error"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mixed.jsonl:2"),
        "stderr names file and line: {stderr}"
    );
    assert!(
        stderr.contains("1 entry could not be read and was skipped"),
        "one entry, in the singular: {stderr}"
    );
    let table = run(&["lint", path.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("Skipped 1 unreadable entry:")
            && text.contains("2 exchanges, 2 errors, 0 warnings, 0 infos, 1 unreadable"),
        "{text}"
    );
    let report = json_of(&out);
    assert_eq!(report["summary"]["exchanges"], 2);
    assert_eq!(report["summary"]["skipped"], 1);
    let entries: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["line"].clone())
        .collect();
    assert_eq!(entries, [Value::from(1), Value::from(4)]);
}

#[test]
fn missing_files_and_bad_usage_exit_2_with_a_reason() {
    let out = run(&["lint", "/no/such/traffic.har"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/traffic.har"));
    assert_eq!(run(&["lint"]).status.code(), Some(2));
    assert_eq!(
        run(&["lint", "--format", "xml", "x"]).status.code(),
        Some(2)
    );
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn stdin_and_gzip_inputs() {
    let sample = std::fs::read(repo_file("examples/traffic.jsonl")).unwrap();
    let out = run_stdin(&["lint", "--format", "json", "-"], &sample);
    assert_eq!(out.status.code(), Some(1));
    let from_stdin = json_of(&out);
    assert_eq!(from_stdin["summary"]["exchanges"], 35);
    assert_eq!(from_stdin["findings"][0]["file"], "-");

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&sample).unwrap();
    let out = run_stdin(&["lint", "--format", "json", "-"], &gz.finish().unwrap());
    assert_eq!(json_of(&out)["summary"], from_stdin["summary"]);
}

#[test]
fn sarif_output_names_the_catalog_and_locates_results() {
    let sample = repo_file("examples/traffic.jsonl");
    let out = run(&["lint", "--format", "sarif", sample.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let sarif = json_of(&out);
    assert_eq!(sarif["version"], "2.1.0");
    let run0 = &sarif["runs"][0];
    assert_eq!(run0["tool"]["driver"]["name"], "candor");
    let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run0["results"].as_array().unwrap();
    assert_eq!(results.len(), 17);
    for r in results {
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"]);
        let line = &r["locations"][0]["physicalLocation"]["region"]["startLine"];
        assert!(line.as_u64().unwrap() >= 1);
    }
}

#[test]
fn table_output_groups_by_rule_with_a_summary() {
    let sample = repo_file("examples/traffic.jsonl");
    let out = run(&["lint", sample.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("success.error_body"));
    assert!(
        text.contains("35 exchanges, 11 errors, 4 warnings, 2 infos, 0 unreadable"),
        "{text}"
    );
}

#[test]
fn a_har_file_is_linted_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capture.har");
    let har = serde_json::json!({"log": {"version": "1.2", "creator": {"name": "test", "version": "1"},
    "entries": [
        {"request": {"method": "GET", "url": "https://api.example.com/me", "httpVersion": "HTTP/1.1",
                     "headers": [{"name": "Accept", "value": "application/json"}]},
         "response": {"status": 401, "statusText": "Unauthorized", "httpVersion": "HTTP/1.1",
                      "headers": [{"name": "Content-Type", "value": "application/json"}],
                      "content": {"size": 2, "mimeType": "application/json", "text": "e30=", "encoding": "base64"}}}
    ]}});
    std::fs::write(&path, serde_json::to_vec_pretty(&har).unwrap()).unwrap();
    let out = run(&["lint", "--format", "json", path.to_str().unwrap()]);
    let report = json_of(&out);
    assert_eq!(report["findings"][0]["rule"], "auth.401_without_challenge");
    assert_eq!(report["findings"][0]["entry"], 0);
}
