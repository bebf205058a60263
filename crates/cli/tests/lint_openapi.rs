//! `candor lint` on OpenAPI documents, driven as a user drives it: exit
//! codes, findings located by line (and pointer), and a document that does
//! not load.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn candor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_candor"))
        .args(args)
        .output()
        .expect("run candor")
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `(rule, line)` of every `# planted: <rule>` comment of bad.yaml.
fn planted() -> BTreeSet<(String, u64)> {
    std::fs::read_to_string(repo_file("examples/openapi/bad.yaml"))
        .unwrap()
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let (_, rule) = line.split_once("# planted: ")?;
            Some((rule.trim().to_owned(), i as u64 + 1))
        })
        .collect()
}

#[test]
fn conforming_documents_exit_0_and_count_their_operations() {
    for (rel, operations) in [
        ("examples/openapi/good.yaml", 13),
        ("examples/openapi/good-3.0.json", 7),
    ] {
        let file = repo_file(rel);
        let out = candor(&["lint", "--format", "json", path_str(&file)]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{rel}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let report = report(&out);
        assert_eq!(report["findings"], serde_json::json!([]), "{rel}");
        assert_eq!(report["summary"]["exchanges"], operations, "{rel}");
    }
}

#[test]
fn planted_violations_exit_1_with_rule_and_line_in_json() {
    let file = repo_file("examples/openapi/bad.yaml");
    let out = candor(&["lint", "--format", "json", path_str(&file)]);
    assert_eq!(out.status.code(), Some(1), "errors were found: exit 1");
    let report = report(&out);
    let findings = report["findings"].as_array().unwrap();
    let found: BTreeSet<(String, u64)> = findings
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_owned(),
                f["line"].as_u64().expect("every spec finding has a line"),
            )
        })
        .collect();
    assert_eq!(found, planted());
    assert_eq!(findings.len(), found.len(), "each violation once");
    for f in findings {
        assert!(f["file"].as_str().unwrap().ends_with("bad.yaml"));
        // Reports may not print pointers yet; when they do, they are JSON
        // pointers into the document.
        if let Some(pointer) = f.get("pointer").and_then(Value::as_str) {
            assert!(pointer.starts_with("/paths/"), "{pointer}");
        }
    }
    let by_rule = |rule: &str| {
        findings
            .iter()
            .find(|f| f["rule"] == rule)
            .unwrap_or_else(|| panic!("{rule} not found"))
    };
    let f = by_rule("spec.429_without_retry_after");
    assert_eq!(
        (&f["method"], &f["url"], &f["status"]),
        (&"GET".into(), &"/users/{id}".into(), &429.into())
    );
    assert_eq!(report["summary"]["errors"], 4, "{}", report["summary"]);
}

#[test]
fn fail_on_governs_the_exit_code_for_specs_too() {
    let file = repo_file("examples/openapi/bad.yaml");
    let out = candor(&["lint", "--fail-on", "never", path_str(&file)]);
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("spec.204_with_content"), "{table}");
}

#[test]
fn a_document_that_does_not_load_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /a: [\n    get\n",
    )
    .unwrap();
    let out = candor(&["lint", "--format", "json", path_str(&broken)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no half report");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let at = stderr
        .split_once("broken.yaml:")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("{stderr}"));
    let mut parts = at.splitn(3, ':');
    let line: usize = parts.next().unwrap().parse().expect("a line");
    let column: usize = parts.next().unwrap().parse().expect("a column");
    assert!(line >= 4 && column >= 1, "{stderr}");

    let swagger = dir.path().join("v2.yaml");
    std::fs::write(&swagger, "# old\nopenapi: 2.0\n").unwrap();
    let out = candor(&["lint", path_str(&swagger)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("v2.yaml:2:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn documents_and_traffic_share_one_report() {
    let spec = repo_file("examples/openapi/bad.yaml");
    let traffic = repo_file("examples/traffic.jsonl");
    let alone = report(&candor(&["lint", "--format", "json", path_str(&traffic)]));
    let out = candor(&[
        "lint",
        "--format",
        "json",
        path_str(&traffic),
        path_str(&spec),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let both = report(&out);
    let files: BTreeSet<&str> = both["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap();
            file.rsplit('/').next().unwrap()
        })
        .collect();
    assert_eq!(files, BTreeSet::from(["bad.yaml", "traffic.jsonl"]));
    let count = |r: &Value, key: &str| r["summary"][key].as_u64().unwrap();
    let lines = std::fs::read_to_string(&traffic).unwrap().lines().count() as u64;
    assert_eq!(count(&alone, "exchanges"), lines);
    assert!(count(&both, "exchanges") > lines, "operations count too");
    assert_eq!(
        count(&both, "errors") + count(&both, "warnings") + count(&both, "infos"),
        both["findings"].as_array().unwrap().len() as u64
    );
    // The traffic's own findings are unchanged by the document beside it.
    let traffic_findings = |r: &Value| -> Vec<Value> {
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["file"].as_str().unwrap().ends_with("traffic.jsonl"))
            .cloned()
            .collect()
    };
    assert_eq!(traffic_findings(&both), traffic_findings(&alone));
}

#[test]
fn one_finding_per_cause_and_expand_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("openapi: 3.1.0\nsecurity: [{bearer: []}]\npaths:\n");
    for i in 0..12 {
        text.push_str(&format!(
            "  /items{i}:\n    get:\n      responses:\n        '200': {{description: ok}}\n        \
             '401': {{$ref: '#/components/responses/Unauthorized'}}\n"
        ));
    }
    text.push_str(
        "components:\n  securitySchemes:\n    bearer: {type: http, scheme: bearer}\n  \
         responses:\n    Unauthorized: {description: no challenge}\n",
    );
    let path = dir.path().join("api.yaml");
    std::fs::write(&path, &text).unwrap();
    let file = path_str(&path);

    let grouped = report(&candor(&["lint", "--format", "json", file]));
    let findings = grouped["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{grouped:#}");
    assert_eq!(findings[0]["pointer"], "/components/responses/Unauthorized");
    let occurrences = findings[0]["occurrences"].as_array().unwrap();
    assert_eq!(occurrences.len(), 12);
    assert_eq!(occurrences[0]["operation"], "GET /items0");
    assert_eq!(occurrences[0]["line"], 8, "the operation's $ref");
    assert_eq!(grouped["summary"]["errors"], 1);

    let expanded = report(&candor(&["lint", "--expand", "--format", "json", file]));
    let findings = expanded["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 12);
    assert_eq!(findings[11]["url"], "/items11");
    assert_eq!(expanded["summary"]["errors"], 12);

    let sarif = report(&candor(&["lint", "--format", "sarif", file]));
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["relatedLocations"].as_array().unwrap().len(), 12);

    let table = candor(&["lint", file]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("affects 12 operations: GET /items0, GET /items1, GET /items2 and 9 more"),
        "{table}"
    );
    assert!(
        table.contains("12 exchanges, 1 error, 0 warnings, 0 infos, 0 unreadable"),
        "{table}"
    );
}
