//! Catalog section 5 over the shipped examples: the conforming documents
//! are clean, and every violation planted in `examples/openapi/bad.yaml` is
//! found exactly where its `# planted: <rule>` comment says.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use candor_audit::openapi::lint::{cases, lint};
use candor_audit::openapi::{Document, operations};
use candor_audit::{CaseOutcome, Located};
use candor_contract::Section;
use candor_contract::rules::section;

fn example(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/openapi")
        .join(rel)
}

fn load(rel: &str) -> Document {
    let path = example(rel);
    Document::load(path.to_str().unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

fn describe(findings: &[Located]) -> String {
    findings
        .iter()
        .map(|l| {
            format!(
                "line {} {} {} {} at {}: {}",
                l.line.unwrap_or(0),
                l.finding.rule.id,
                l.method,
                l.url,
                l.pointer.as_deref().unwrap_or("-"),
                l.finding.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `(rule, line)` of every `# planted: <rule>` comment, in file order.
fn planted(rel: &str) -> Vec<(String, usize)> {
    std::fs::read_to_string(example(rel))
        .unwrap()
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let (_, rule) = line.split_once("# planted: ")?;
            Some((rule.trim().to_owned(), i + 1))
        })
        .collect()
}

#[test]
fn conforming_documents_have_no_findings() {
    for (rel, count) in [("good.yaml", 13), ("good-3.0.json", 7)] {
        let doc = load(rel);
        assert_eq!(operations(&doc).len(), count, "{rel}");
        let findings = lint(&doc);
        assert!(
            findings.is_empty(),
            "{rel} should be clean:\n{}",
            describe(&findings)
        );
    }
}

#[test]
fn every_planted_violation_is_found_exactly_where_planted() {
    let doc = load("bad.yaml");
    let findings = lint(&doc);
    let found: Vec<(String, usize)> = findings
        .iter()
        .map(|l| (l.finding.rule.id.to_owned(), l.line.unwrap_or(0)))
        .collect();
    assert_eq!(
        found,
        planted("bad.yaml"),
        "found, in document order:\n{}",
        describe(&findings)
    );
}

#[test]
fn bad_yaml_plants_every_static_rule() {
    let rules: BTreeSet<String> = section(Section::Spec).map(|r| r.id.to_owned()).collect();
    let planted: BTreeSet<String> = planted("bad.yaml").into_iter().map(|(r, _)| r).collect();
    assert_eq!(planted, rules);
}

#[test]
fn findings_point_at_the_node_to_fix() {
    let doc = load("bad.yaml");
    let findings = lint(&doc);
    let pointer_of = |rule: &str| {
        let hits: Vec<_> = findings
            .iter()
            .filter(|l| l.finding.rule.id == rule)
            .collect();
        assert_eq!(hits.len(), 1, "{rule}:\n{}", describe(&findings));
        hits[0].pointer.clone().unwrap()
    };
    let expected = [
        ("spec.secured_without_401", "/paths/~1users/get/responses"),
        (
            "spec.401_without_challenge",
            "/paths/~1users/post/responses/401",
        ),
        (
            "spec.429_without_retry_after",
            "/paths/~1users~1{id}/get/responses/429",
        ),
        (
            "spec.roles_without_403",
            "/paths/~1users~1{id}/delete/responses",
        ),
        (
            "spec.201_without_location",
            "/paths/~1sessions/post/responses/201",
        ),
        (
            "spec.204_with_content",
            "/paths/~1sessions~1{id}/delete/responses/204/content",
        ),
        (
            "spec.error_not_problem_json",
            "/paths/~1reports/get/responses/400/content/application~1json",
        ),
        ("spec.only_200", "/paths/~1search/get/responses"),
        (
            "spec.405_without_allow",
            "/paths/~1exports~1{id}/put/responses/405",
        ),
        (
            "spec.410_without_link",
            "/paths/~1v1~1users/get/responses/410",
        ),
        (
            "spec.roles_in_scopes",
            "/paths/~1admin~1reports/get/security/0/bearer",
        ),
        (
            "spec.unresolved_ref",
            "/paths/~1status/get/responses/200/$ref",
        ),
    ];
    for (rule, pointer) in expected {
        assert_eq!(pointer_of(rule), pointer, "{rule}");
        // The pointer names a real node of the document.
        let parent = pointer.rsplit_once('/').map_or("", |(p, _)| p);
        assert!(doc.root.pointer(parent).is_some(), "{rule}: {pointer}");
    }
}

#[test]
fn findings_name_the_operation_and_the_declared_status() {
    let doc = load("bad.yaml");
    let ops = operations(&doc);
    let findings = lint(&doc);
    for l in &findings {
        assert!(l.file.ends_with("bad.yaml"), "{}", l.file);
        assert!(l.probe.is_none());
        let op = &ops[l.entry];
        assert_eq!(
            (l.method.as_str(), l.url.as_str()),
            (op.method.as_str(), op.path.as_str())
        );
    }
    let too_many = findings
        .iter()
        .find(|l| l.finding.rule.id == "spec.429_without_retry_after")
        .unwrap();
    assert_eq!(
        (
            too_many.method.as_str(),
            too_many.url.as_str(),
            too_many.status
        ),
        ("GET", "/users/{id}", 429)
    );
    let secured = findings
        .iter()
        .find(|l| l.finding.rule.id == "spec.secured_without_401")
        .unwrap();
    assert_eq!(secured.status, 0, "nothing declared, no status");
}

#[test]
fn cases_fail_on_planted_rules_and_pass_on_clean_documents() {
    let bad = load("bad.yaml");
    let findings = lint(&bad);
    let bad_cases = cases(&bad.file, &findings);
    assert_eq!(bad_cases.len(), section(Section::Spec).count());
    for case in &bad_cases {
        assert!(
            matches!(case.outcome, CaseOutcome::Failed(s) if s == case.rule.severity),
            "{}: {:?}",
            case.rule.id,
            case.outcome
        );
    }
    let good = load("good.yaml");
    for case in cases(&good.file, &lint(&good)) {
        assert_eq!(case.outcome, CaseOutcome::Passed, "{}", case.rule.id);
        assert_eq!(case.subject, good.file);
    }
}
