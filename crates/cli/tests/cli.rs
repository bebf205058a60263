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

/// `candor ARGS` with stdout a pipe whose reader is already closed: every
/// write fails with EPIPE, as under `candor ... | head -1` once head exits.
fn run_into_closed_pipe(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    candor()
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run candor")
}

#[test]
fn a_closed_stdout_ends_every_printing_command_quietly_with_exit_0() {
    let config = repo_file("examples/auth.toml");
    let config = config.to_str().unwrap();
    let commands: &[&[&str]] = &[
        &["rules", "--format", "json"],
        &["rules", "--format", "markdown"],
        &["rules"],
        &["check-config", config],
        &["completions", "bash"],
        &["man"],
        &["token", "-c", config],
        &["--help"],
    ];
    for args in commands {
        let out = run_into_closed_pipe(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "candor {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "candor {args:?} said: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_rules_table_fits_the_width_it_is_given_and_is_plain_in_a_pipe() {
    let width = 72;
    let out = candor()
        .args(["rules"])
        .env("COLUMNS", width.to_string())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with('┌'), "{text}");
    for line in text.lines() {
        assert!(
            line.chars().count() <= width,
            "{} > {width}: {line}",
            line.chars().count()
        );
    }
    // IDs are never cut: each appears whole.
    let catalog = json_of(&run(&["rules", "--format", "json"]));
    for rule in catalog.as_array().unwrap() {
        let id = rule["id"].as_str().unwrap();
        assert!(text.contains(id), "{id} is cut in the table");
    }

    // No terminal, no COLUMNS: one line per rule, no box to strip.
    let out = candor()
        .args(["rules"])
        .env_remove("COLUMNS")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), catalog.as_array().unwrap().len() + 1, "{text}");
    assert!(lines[0].starts_with("§  rule"), "{text}");
    assert!(!text.contains('│') && !text.contains('┆'), "{text}");
    for (line, rule) in lines[1..].iter().zip(catalog.as_array().unwrap()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[1], rule["id"].as_str().unwrap(), "{line}");
        assert!(line.ends_with(rule["expects"].as_str().unwrap()), "{line}");
    }
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _candor"),
        ("zsh", "#compdef candor"),
        ("fish", "complete -c candor"),
    ] {
        let out = run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: {script}");
        // Subcommands and their flags are in the script.
        assert!(script.contains("check-config"), "{shell}");
        assert!(script.contains("expired"), "{shell}");
    }
    let out = run(&["completions", "tcsh"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn man_prints_a_roff_page_naming_every_command() {
    let out = run(&["man"]);
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH candor 1"), "{page}");
    assert!(page.contains(".SH NAME"), "{page}");
    for command in [
        "lint",
        "audit",
        "serve",
        "check\\-config",
        "token",
        "completions",
    ] {
        assert!(page.contains(command), "{command} missing: {page}");
    }
}

#[test]
fn check_config_counts_invalid_files_with_the_right_words() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[gateway]\nlisten = 7\n").unwrap();
    let good = repo_file("examples/minimal.toml");
    let out = run(&["check-config", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 of 1 configuration file is invalid"),
        "{err}"
    );
    let out = run(&[
        "check-config",
        bad.to_str().unwrap(),
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("2 of 3 configuration files are invalid"),
        "{err}"
    );
}

#[test]
fn token_refuses_without_a_key_and_names_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    // No [auth.jwt] at all.
    let minimal = repo_file("examples/minimal.toml");
    let out = run(&["token", "-c", minimal.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("minimal.toml") && err.contains("[auth.jwt]"),
        "{err}"
    );

    // Public keys only: the private key must be given.
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#,
    )
    .unwrap();
    let config = dir.path().join("gw.toml");
    std::fs::write(
        &config,
        "[auth.jwt]\nalgorithms = [\"EdDSA\"]\njwks_file = \"jwks.json\"\n",
    )
    .unwrap();
    let out = run(&["token", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gw.toml") && err.contains("auth.jwt.jwks_file") && err.contains("--key"),
        "{err}"
    );

    // A shared secret signs, and the secret itself is never printed.
    let secret = "never-print-me-0123456789abcdef0123456789";
    std::fs::write(
        &config,
        format!("[auth.jwt]\nalgorithms = [\"HS256\"]\nsecret = \"{secret}\"\n"),
    )
    .unwrap();
    let out = run(&["token", "-c", config.to_str().unwrap(), "--roles", "admin"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    assert_eq!(token.lines().count(), 1, "{token}");
    assert_eq!(token.trim_end().split('.').count(), 3, "{token}");
    assert!(!token.contains(secret) && !String::from_utf8_lossy(&out.stderr).contains(secret));
    let out = run(&[
        "token",
        "-c",
        config.to_str().unwrap(),
        "--key",
        jwks.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(secret));
}
