//! `candor lint` reads documents as they are published: what a file is
//! comes from its structure (any key order, minified or not), a document
//! may span several files, and what is none of the kinds (empty, Swagger
//! 2.0, other JSON or YAML) is refused with exit 2 and what was expected.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../audit/tests/fixtures/read")
        .join(rel)
}

fn candor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_candor"))
        .args(args)
        .output()
        .expect("run candor")
}

fn lint_json(file: &Path) -> (Option<i32>, Value) {
    let out = candor(&["lint", "--format", "json", file.to_str().unwrap()]);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

/// `(rule, file name from the fixture folder, line, column)` of each
/// finding, in report order.
fn places(report: &Value) -> Vec<(String, String, u64, u64)> {
    let root = fixture("").display().to_string();
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap();
            (
                f["rule"].as_str().unwrap().to_owned(),
                file.strip_prefix(&root).unwrap_or(file).to_owned(),
                f["line"].as_u64().expect("a line"),
                f["column"].as_u64().expect("a column"),
            )
        })
        .collect()
}

/// Runs `candor lint` on `file` and expects a refusal: exit 2, nothing on
/// stdout, one line on stderr. Returns that line.
fn refused(file: &Path) -> String {
    let out = candor(&["lint", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{}: {stderr}", file.display());
    assert!(
        out.stdout.is_empty(),
        "no report before a refusal: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    for internal in ["expected struct", "missing field", "No findings"] {
        assert!(!stderr.contains(internal), "{stderr}");
    }
    stderr
}

#[test]
fn a_key_sorted_document_is_read_as_openapi() {
    let file = fixture("sorted.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.find("\"openapi\"").unwrap() > 4096,
        "the key comes late"
    );
    let (code, report) = lint_json(&file);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["summary"]["exchanges"], 2, "two operations");
    let found = places(&report);
    let line = 1 + text[..text.find("\"201\"").unwrap()].lines().count() as u64;
    assert_eq!(
        found,
        [(
            "spec.201_without_location".to_owned(),
            "sorted.json".to_owned(),
            line - 1,
            found[0].3
        )]
    );
}

#[test]
fn a_minified_document_has_columns_and_document_order() {
    let file = fixture("minified.json");
    let (code, report) = lint_json(&file);
    assert_eq!(code, Some(0), "{report}");
    let found = places(&report);
    let rules: Vec<&str> = found.iter().map(|(rule, ..)| rule.as_str()).collect();
    // /zeta comes first in the file, though /alpha sorts first.
    assert_eq!(
        rules,
        [
            "spec.only_200",
            "spec.201_without_location",
            "spec.error_not_problem_json"
        ]
    );
    let urls: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls, ["/zeta", "/zeta", "/alpha/{id}"]);
    let text = std::fs::read_to_string(&file).unwrap();
    for (rule, _, line, column) in &found {
        assert_eq!(*line, 1, "{rule}");
        let at = &text[*column as usize - 1..];
        assert!(at.starts_with('"'), "{rule} points at a key: {at:.20}");
    }
    assert!(found.windows(2).all(|w| w[0].3 < w[1].3), "{found:?}");
    let json_404 = text
        .find("\"application/json\":{\"schema\":{\"type\":\"object\"}}}}}")
        .unwrap();
    assert_eq!(found[2].3 as usize, json_404 + 1);

    let table = candor(&["lint", file.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains(&format!("minified.json:1:{}\n", found[2].3)),
        "{table}"
    );
}

#[test]
fn a_multi_file_document_is_followed_across_folders() {
    let file = fixture("multi/openapi.yaml");
    let (code, report) = lint_json(&file);
    assert_eq!(code, Some(0), "warnings only: {report}");
    assert_eq!(report["summary"]["exchanges"], 4, "{report}");
    assert_eq!(
        places(&report),
        [
            ("spec.unresolved_ref", "multi/openapi.yaml", 15, 5),
            ("spec.422_without_400", "multi/paths/users.yaml", 17, 3),
            ("spec.201_without_location", "multi/paths/users.yaml", 18, 5),
            ("spec.unresolved_ref", "multi/paths/users/item.yaml", 18, 15),
            ("spec.unresolved_ref", "multi/paths/users/item.yaml", 19, 15),
            (
                "spec.error_not_problem_json",
                "multi/responses/errors.yaml",
                8,
                5
            ),
        ]
        .map(|(r, f, l, c)| (r.to_owned(), f.to_owned(), l, c))
    );
    let findings = report["findings"].as_array().unwrap();
    let message = |i: usize| findings[i]["message"].as_str().unwrap();
    assert!(message(0).contains("remote"), "{}", message(0));
    assert!(message(3).contains("remote"), "{}", message(3));
    assert!(
        message(4).contains("dangling") && message(4).contains("errors.yaml#/Gone"),
        "{}",
        message(4)
    );
    assert_eq!(findings[1]["pointer"], "/post/responses");

    // What the remote and dangling references hide is skipped, and counted.
    let skipped: Vec<(&str, &str)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "skipped")
        .map(|c| (c["rule"].as_str().unwrap(), c["subject"].as_str().unwrap()))
        .collect();
    assert_eq!(report["cases"]["skipped"], skipped.len());
    for want in [
        ("spec.secured_without_401", "/remote (every operation)"),
        (
            "spec.401_without_challenge",
            "DELETE /users/{id} 401 response",
        ),
        (
            "spec.error_not_problem_json",
            "DELETE /users/{id} 404 response",
        ),
    ] {
        assert!(skipped.contains(&want), "{want:?} in {skipped:?}");
    }
    let table = candor(&["lint", file.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains(&format!("{} skipped", skipped.len())),
        "{table}"
    );
}

#[test]
fn swagger_2_is_refused_with_a_way_forward() {
    let line = refused(&fixture("swagger.json"));
    assert!(
        line.contains("swagger.json:2: a Swagger 2.0 document"),
        "{line}"
    );
    assert!(line.contains("swagger2openapi"), "{line}");

    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("api.yaml");
    std::fs::write(&yaml, "info: {title: t}\nswagger: '2.0'\npaths: {}\n").unwrap();
    let line = refused(&yaml);
    assert!(
        line.contains("api.yaml:2: a Swagger 2.0 document"),
        "{line}"
    );
}

#[test]
fn empty_and_unknown_files_are_refused_naming_what_was_expected() {
    let line = refused(&fixture("empty.json"));
    assert!(line.contains("empty.json: is empty"), "{line}");

    let dir = tempfile::tempdir().unwrap();
    let blank = dir.path().join("export.har");
    std::fs::write(&blank, " \n\t\n").unwrap();
    assert!(refused(&blank).contains("export.har: is empty"));

    for (name, content, found) in [
        (
            "package.json",
            "{\n  \"name\": \"x\",\n  \"version\": \"1.0.0\"\n}\n",
            "a JSON object with keys `name`, `version`",
        ),
        (
            "package.min.json",
            "{\"name\":\"x\",\"version\":\"1.0.0\"}",
            "a JSON object with keys `name`, `version`",
        ),
        (
            "events.jsonl",
            "{\"event\":\"a\"}\n{\"event\":\"b\"}\n",
            "first line is not an exchange",
        ),
        ("list.json", "[1, 2, 3]", "a JSON array"),
        (
            "config.yaml",
            "name: x\nversion: 1\n",
            "a mapping with keys `name`, `version`",
        ),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, content).unwrap();
        let line = refused(&file);
        assert!(line.contains(found), "{name}: {line}");
        for expected in ["OpenAPI 3.x", "HAR", "JSON lines", "`request`"] {
            assert!(line.contains(expected), "{name}: {line}");
        }
    }
}

#[test]
fn a_refused_file_stops_the_run_before_any_report() {
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/traffic.jsonl");
    // JSON streams findings as they come: none may come before the
    // refusal of a later file.
    let out = candor(&[
        "lint",
        "--format",
        "json",
        good.to_str().unwrap(),
        fixture("swagger.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_400_vs_422_rule_and_only_2xx_from_the_command_line() {
    let (code, report) = lint_json(&fixture("body-422.yaml"));
    assert_eq!(code, Some(0), "{report}");
    let found: Vec<(String, u64)> = places(&report)
        .into_iter()
        .map(|(rule, _, line, _)| (rule, line))
        .collect();
    assert_eq!(found, [("spec.422_without_400".to_owned(), 9)]);
    assert_eq!(report["findings"][0]["url"], "/orders");

    let (_, report) = lint_json(&fixture("only-2xx.yaml"));
    let found: Vec<(String, u64)> = places(&report)
        .into_iter()
        .map(|(rule, _, line, _)| (rule, line))
        .collect();
    assert_eq!(
        found,
        [
            ("spec.only_200".to_owned(), 8),
            ("spec.only_200".to_owned(), 15)
        ]
    );
    assert_eq!(report["findings"][0]["status"], 204);
    assert_eq!(report["findings"][1]["status"], 201);
}
