//! The active probes against two live fixture APIs on 127.0.0.1: one that
//! keeps the contract (no errors, every case passes) and one with a planted
//! violation per probe and per passive rule (every one found, under the
//! right rule ID, on the right operation).

mod support;

use candor_audit::CaseOutcome;
use candor_audit::probe::Probe;
use candor_contract::{Section, Severity, rules};
use support::{Audit, Collected, HEALTH_LIMIT, SECOND_LIMIT, conforming, limited, misbehaving};

fn describe(collected: &Collected) -> String {
    let mut text = String::new();
    for f in &collected.findings {
        let op = f.probe.as_ref().map_or("", |p| p.operation.as_str());
        text.push_str(&format!(
            "  {} [{}] {} {} -> {}: {}\n",
            f.finding.rule.id, f.finding.severity, op, f.url, f.status, f.finding.message
        ));
    }
    for c in &collected.cases {
        text.push_str(&format!(
            "  case {} {} {:?}\n",
            c.rule.id, c.subject, c.outcome
        ));
    }
    text
}

#[tokio::test]
async fn conforming_api_has_no_errors_and_every_case_passes() {
    let api = conforming().await;
    let (collected, report) = Audit::new("conforming.yaml", &api)
        .destructive(Some(20))
        .run()
        .await;
    assert!(
        collected.errors().is_empty(),
        "errors on a conforming API:\n{}",
        describe(&collected)
    );
    assert!(
        collected.findings.is_empty(),
        "findings on a conforming API:\n{}",
        describe(&collected)
    );
    assert!(
        collected.not_passed().is_empty(),
        "cases that did not pass:\n{}",
        describe(&collected)
    );
    // Every probe ran on something.
    for probe in Probe::ALL {
        assert!(
            collected.cases.iter().any(|c| c.rule.id == probe.id()),
            "{} never ran",
            probe.id()
        );
    }
    assert_eq!(report.summary.errors, 0);
    assert_eq!(report.failed, 0);
    assert_eq!(report.skipped, 0);
    assert_eq!(report.passed as usize, collected.cases.len());
    assert!(!report.budget_exhausted);
    assert_eq!(report.requests, report.responses);
    assert_eq!(report.requests as usize, api.hits().len());
    assert!(collected.summary.is_some(), "the sink is finished");
}

#[tokio::test]
async fn conforming_api_ids_chain_from_create_to_read_to_delete() {
    let api = conforming().await;
    let (collected, _) = Audit::new("conforming.yaml", &api)
        .destructive(None)
        .run()
        .await;
    let hits = api.hits();
    let create = hits.iter().position(|h| h == "POST /users").unwrap();
    // The created user (id 1) is read, renamed and probed at its own URL.
    let read = hits.iter().position(|h| h == "GET /users/1").unwrap();
    assert!(create < read, "{hits:#?}");
    assert!(hits.iter().any(|h| h == "PATCH /users/1"), "{hits:#?}");
    // Deletes come last, and only the created user is deleted for real.
    let deletes: Vec<usize> = hits
        .iter()
        .enumerate()
        .filter(|(_, h)| h.starts_with("DELETE "))
        .map(|(i, _)| i)
        .collect();
    assert!(!deletes.is_empty());
    let last_other = hits
        .iter()
        .rposition(|h| !h.starts_with("DELETE ") && !h.starts_with("GET /users/1"))
        .unwrap();
    assert!(deletes[0] > last_other, "{hits:#?}");
    let delete = collected
        .case(rules::PROBE_DELETE.id, "DELETE /users/{id}")
        .unwrap();
    assert_eq!(delete.outcome, CaseOutcome::Passed);
    assert_eq!(hits.last().map(String::as_str), Some("GET /users/1"));
}

/// Every probe rule, the operation its violation is planted on, and the
/// severity of the worst finding there (a probe that sees a passive rule's
/// fact has that rule's severity: a 201 without Location is a warning).
const PLANTED_PROBES: [(&str, &str, Severity); 14] = [
    ("probe.no_credentials", "GET /reports", Severity::Error),
    ("probe.invalid_token", "GET /reports", Severity::Error),
    ("probe.insufficient_role", "GET /audit-log", Severity::Error),
    ("probe.malformed_json", "POST /notes", Severity::Error),
    ("probe.wrong_media_type", "POST /notes", Severity::Error),
    ("probe.schema_violation", "POST /notes", Severity::Error),
    ("probe.semantic_violation", "POST /notes", Severity::Error),
    ("probe.unknown_id", "GET /notes/{id}", Severity::Error),
    ("probe.unknown_route", "GET /candor-probe-", Severity::Error),
    ("probe.wrong_method", "PATCH /ping", Severity::Error),
    ("probe.oversize_body", "POST /notes", Severity::Error),
    ("probe.create", "POST /notes", Severity::Warn),
    ("probe.delete", "DELETE /notes/{id}", Severity::Error),
    ("probe.rate_burst", "GET /ping", Severity::Error),
];

/// Every passive rule, and the operation whose response carries it.
const PLANTED_PASSIVE: [(&str, &str); 17] = [
    ("success.error_body", "GET /notes/{id}"),
    ("auth.401_without_challenge", "GET /reports"),
    ("auth.challenge_syntax", "GET /audit-log"),
    ("auth.401_without_invalid_token", "GET /audit-log"),
    ("body.malformed_not_400", "POST /tags"),
    ("rate.429_without_retry_after", "GET /ping"),
    ("retry_after.syntax", "GET /ping"),
    ("unavailable.503_without_retry_after", "GET /ping"),
    ("created.201_without_location", "POST /notes"),
    ("no_content.204_with_body", "DELETE /notes/{id}"),
    ("method.405_without_allow", "PATCH /ping"),
    ("redirect.without_location", "GET /legacy"),
    ("status.unregistered", "GET /weird"),
    ("error.not_machine_readable", "POST /notes"),
    ("delete.200_empty", "DELETE /tags/{id}"),
    ("gone.404_after_delete", "DELETE /tags/{id}"),
    ("server.500_on_client_fault", "POST /notes"),
];

#[tokio::test]
async fn misbehaving_api_every_planted_violation_is_found_under_its_rule() {
    let api = misbehaving().await;
    let (collected, report) = Audit::new("misbehaving.yaml", &api)
        .destructive(Some(10))
        .run()
        .await;
    let text = describe(&collected);

    // The tables cover the whole catalog of sections 2 and 3.
    for rule in rules::RULES
        .iter()
        .filter(|r| matches!(r.section, Section::Probe | Section::Passive))
    {
        assert!(
            PLANTED_PROBES
                .iter()
                .map(|(id, _, _)| id)
                .chain(PLANTED_PASSIVE.iter().map(|(id, _)| id))
                .any(|id| *id == rule.id),
            "{} has no planted violation",
            rule.id
        );
    }

    for (rule, subject, severity) in PLANTED_PROBES {
        let found = collected.of(rule, subject);
        assert!(
            found.iter().any(|f| f.finding.severity == severity),
            "{rule} not found as {severity} on {subject}:\n{text}"
        );
        let case = collected
            .case(rule, subject)
            .unwrap_or_else(|| panic!("no case for {rule} on {subject}"));
        assert_eq!(
            case.outcome,
            CaseOutcome::Failed(severity),
            "{rule} on {subject}"
        );
        // The evidence reproduces the request.
        let evidence = found[0].probe.as_ref().unwrap();
        // (The oversize probe's body is made by a command piped into it.)
        let curl = evidence.request.curl();
        assert!(
            curl.starts_with("curl -i") || curl.contains(" | curl -i -X "),
            "{curl}"
        );
        assert!(evidence.request.url.starts_with(&api.base()));
        assert!(!evidence.expected.is_empty());
    }
    for (rule, subject) in PLANTED_PASSIVE {
        // On a probe's exchange, the probe's finding stands for it.
        let found = collected.reported(rule, subject);
        assert!(!found.is_empty(), "{rule} not found on {subject}:\n{text}");
        let evidence = found[0].probe.as_ref().unwrap();
        assert!(evidence.response.is_some(), "{rule}");
    }
    // One fact, one finding: no exchange reports a passive rule beside the
    // probe finding that stands for it.
    for probe in collected
        .findings
        .iter()
        .filter(|f| f.finding.same_as.is_some())
    {
        let passive = probe.finding.same_as.unwrap().id;
        assert!(
            !collected
                .findings
                .iter()
                .any(|f| f.entry == probe.entry && f.finding.rule.id == passive),
            "{passive} reported twice on {} {}:\n{text}",
            probe.method,
            probe.url
        );
    }
    assert!(report.summary.errors > 0);
    assert_eq!(
        report.summary.errors as usize,
        collected.errors().len(),
        "summary counts what was reported"
    );
}

#[tokio::test]
async fn misbehaving_api_planted_probe_findings_carry_what_was_expected() {
    let api = misbehaving().await;
    let mut audit = Audit::new("misbehaving.yaml", &api).destructive(Some(10));
    audit.reveal_credentials = true;
    let (collected, _) = audit.run().await;
    let role = &collected.of("probe.insufficient_role", "GET /audit-log")[0];
    let evidence = role.probe.as_ref().unwrap();
    assert_eq!(evidence.expected, rules::PROBE_INSUFFICIENT_ROLE.expects);
    assert_eq!(evidence.response.as_ref().unwrap().status, 401);
    assert!(
        evidence
            .request
            .headers
            .iter()
            .any(|(n, v)| n == "Authorization" && v == "Bearer user-token"),
        "the low role's credential was sent"
    );
    // A schema violation answered 422 is a warning, a missing member
    // accepted an error.
    let schema = collected.of("probe.schema_violation", "POST /notes");
    assert!(schema.iter().any(|f| f.finding.severity == Severity::Warn));
    assert!(schema.iter().any(|f| f.finding.severity == Severity::Error));
    // The oversize body is left out of the report.
    let oversize = &collected.of("probe.oversize_body", "POST /notes")[0];
    let evidence = oversize.probe.as_ref().unwrap();
    assert!(evidence.request.body.is_none());
    assert!(oversize.finding.message.contains("left out"));
}

#[tokio::test]
async fn credentials_are_redacted_in_reports_unless_revealed() {
    let api = misbehaving().await;
    let (collected, _) = Audit::new("misbehaving.yaml", &api).run().await;
    let role = &collected.of("probe.insufficient_role", "GET /audit-log")[0];
    let evidence = role.probe.as_ref().unwrap();
    let auth: Vec<&str> = evidence
        .request
        .headers
        .iter()
        .filter(|(n, _)| n == "Authorization")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(auth, ["Bearer <user credential>"]);
    for finding in &collected.findings {
        let curl = finding.probe.as_ref().unwrap().request.curl();
        assert!(!curl.contains("-token"), "{curl}");
    }
    // The generated garbage token is no secret: it is shown as sent.
    let invalid = &collected.of("probe.invalid_token", "GET /reports")[0];
    assert!(
        invalid
            .probe
            .as_ref()
            .unwrap()
            .request
            .curl()
            .contains("candor.invalid.token")
    );
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let api = misbehaving().await;
    let (collected, _) = Audit::new("misbehaving.yaml", &api).run().await;
    let hits = api.hits();
    assert!(hits.iter().any(|h| h == "GET /moved"), "{hits:#?}");
    assert!(!hits.iter().any(|h| h == "GET /trap"), "{hits:#?}");
    assert!(
        collected
            .of("redirect.without_location", "GET /legacy")
            .len()
            == 1,
        "the 302 itself is judged"
    );
}

#[tokio::test]
async fn destructive_probes_need_allow_destructive() {
    let api = misbehaving().await;
    let mut audit = Audit::new("misbehaving.yaml", &api);
    audit.burst = Some(50);
    let (collected, _) = audit.run().await;
    let hits = api.hits();
    assert!(
        !hits.iter().any(|h| h.starts_with("DELETE ")),
        "no DELETE without --allow-destructive: {hits:#?}"
    );
    let pings = hits.iter().filter(|h| *h == "GET /ping").count();
    assert_eq!(pings, 1, "only the plain read, no burst: {hits:#?}");
    for subject in ["DELETE /notes/{id}", "DELETE /tags/{id}"] {
        let case = collected.case(rules::PROBE_DELETE.id, subject).unwrap();
        let CaseOutcome::Skipped(why) = &case.outcome else {
            panic!("{subject}: {:?}", case.outcome);
        };
        assert!(why.contains("--allow-destructive"), "{why}");
    }
    let burst = collected
        .case(rules::PROBE_RATE_BURST.id, "GET /ping")
        .unwrap();
    assert!(
        matches!(&burst.outcome, CaseOutcome::Skipped(why) if why.contains("--allow-destructive")),
        "{:?}",
        burst.outcome
    );
    // Creates still run: they only add.
    assert!(hits.iter().any(|h| h == "POST /notes"));
}

#[tokio::test]
async fn writes_to_resources_the_run_did_not_create_need_allow_destructive() {
    let api = conforming().await;
    let mut audit = Audit::new("conforming.yaml", &api);
    // Without admin, nothing is created, so /users/{id} holds the
    // document's example id: PATCH probes must not touch it.
    audit.auth = vec!["user=Bearer user-token"];
    let (collected, _) = audit.run().await;
    let hits = api.hits();
    assert!(
        !hits.iter().any(|h| h.starts_with("PATCH /users/1")),
        "{hits:#?}"
    );
    let case = collected
        .case(rules::PROBE_NO_CREDENTIALS.id, "PATCH /users/{id}")
        .unwrap();
    assert!(
        matches!(&case.outcome, CaseOutcome::Skipped(why) if why.contains("did not create")),
        "{:?}",
        case.outcome
    );
    let create = collected
        .case(rules::PROBE_CREATE.id, "POST /users")
        .unwrap();
    assert_eq!(
        create.outcome,
        CaseOutcome::Skipped("no --auth for role admin".into())
    );
    let role = collected
        .case(rules::PROBE_INSUFFICIENT_ROLE.id, "POST /users")
        .unwrap();
    assert_eq!(role.outcome, CaseOutcome::Passed, "user is the low role");
}

#[tokio::test]
async fn budget_bounds_the_run_and_skips_the_rest() {
    let api = conforming().await;
    let mut audit = Audit::new("conforming.yaml", &api).destructive(Some(20));
    audit.budget = 7;
    let (collected, report) = audit.run().await;
    let hits = api.hits();
    assert_eq!(hits.len(), 7, "{hits:#?}");
    assert_eq!(report.requests, 7);
    assert!(report.budget_exhausted);
    let skipped: Vec<_> = collected
        .cases
        .iter()
        .filter(|c| matches!(&c.outcome, CaseOutcome::Skipped(why) if why.contains("budget of 7")))
        .collect();
    assert!(!skipped.is_empty(), "{}", describe(&collected));
    assert!(report.skipped as usize >= skipped.len());
}

#[tokio::test]
async fn the_burst_stops_at_the_first_429() {
    let api = conforming().await;
    let (collected, _) = Audit::new("conforming.yaml", &api)
        .destructive(Some(200))
        .run()
        .await;
    let health = api.hits().iter().filter(|h| *h == "GET /health").count();
    // The read, then the burst until limited: at most one wave past the limit.
    let wave = candor_audit::http::ClientOptions::default().concurrency;
    assert!(health as u32 > HEALTH_LIMIT, "{health}");
    assert!(health <= HEALTH_LIMIT as usize + 2 * wave, "{health}");
    let burst = collected
        .case(rules::PROBE_RATE_BURST.id, "GET /health")
        .unwrap();
    assert_eq!(burst.outcome, CaseOutcome::Passed);
}

#[tokio::test]
async fn the_burst_goes_to_the_operation_that_declares_429() {
    let api = limited().await;
    let mut audit = Audit::new("limited.yaml", &api).destructive(Some(50));
    audit.auth = Vec::new();
    let (collected, _) = audit.run().await;
    let hits = api.hits();
    let count = |hit: &str| hits.iter().filter(|h| *h == hit).count();
    assert_eq!(count("GET /first"), 1, "only its read: {hits:#?}");
    assert!(count("GET /second") as u32 > SECOND_LIMIT, "{hits:#?}");
    let burst = collected
        .case(rules::PROBE_RATE_BURST.id, "GET /second")
        .unwrap_or_else(|| panic!("no burst case on GET /second:\n{}", describe(&collected)));
    assert_eq!(burst.outcome, CaseOutcome::Passed);
    assert!(
        collected.findings.is_empty(),
        "findings on a conforming API:\n{}",
        describe(&collected)
    );
}

#[tokio::test]
async fn a_burst_that_reaches_no_limit_names_the_operation_it_chose_and_why() {
    let api = limited().await;
    // The read and two more: under the limit.
    let burst_size = SECOND_LIMIT - 2;
    let mut audit = Audit::new("limited.yaml", &api).destructive(Some(burst_size));
    audit.auth = Vec::new();
    let (collected, _) = audit.run().await;
    let burst = collected
        .case(rules::PROBE_RATE_BURST.id, "GET /second")
        .unwrap_or_else(|| panic!("no burst case on GET /second:\n{}", describe(&collected)));
    let CaseOutcome::Skipped(why) = &burst.outcome else {
        panic!("{:?}", burst.outcome);
    };
    assert_eq!(
        why,
        &format!(
            "no 429 within {burst_size} requests to GET /second (chosen: it declares 429): \
             no limit was reached, so none could be checked"
        )
    );
}

#[tokio::test]
async fn an_unreachable_api_is_reported_not_hidden() {
    // Bind then drop a listener: a port on 127.0.0.1 that refuses.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut audit = Audit {
        spec: support::spec("conforming.yaml"),
        base: format!("http://127.0.0.1:{port}"),
        auth: support::AUTH.to_vec(),
        allow_destructive: false,
        burst: None,
        budget: 500,
        reveal_credentials: false,
    };
    audit.budget = 40;
    // One request finds out; nothing is reported as findings.
    let (collected, report) = audit.try_run().await;
    let err = report.expect_err("an API that cannot be reached stops the run");
    assert!(
        matches!(err, candor_audit::probe::ProbeError::Unreachable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("nothing was probed"), "{err}");
    assert!(collected.findings.is_empty() && collected.cases.is_empty());
    assert!(collected.summary.is_none(), "no report was written");
}
