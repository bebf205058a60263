//! candor-client against candor serve, the faults upstream and the reference
//! service: each row of contract.md §6, through both adapters.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use candor_client::{BoxError, Policy, Reason, RetryBudget};
use http::{Method, StatusCode};
use support::{BOTH, Waits, call, faults, gateway, get, policy};

fn rule(name: &str) -> String {
    format!("tag:candor.dev,2026:rule/{name}")
}

#[tokio::test]
async fn a_503_with_retry_after_is_waited_then_retried_once() {
    let (faults, _f) = faults().await;
    for via in BOTH {
        // A maintenance window that closes in about a second: 503 with
        // Retry-After until then, the upstream's 200 after.
        let gw = gateway(&format!(
            "[upstreams.f]\ntargets = [\"{faults}\"]\n\n[[routes]]\npath = \"/f/{{*rest}}\"\nupstream = \"f\"\nmaintenance = {{ until = \"{}\" }}\n",
            support::in_seconds(2)
        ))
        .await;
        let waits = Waits::default();
        let p = Policy::builder()
            .sleeper(waits.real())
            .deadline(Duration::from_secs(20))
            .build();
        let got = get(via, &p, &format!("http://{}/f/ok", gw.addr()), &[])
            .await
            .unwrap_or_else(|e| panic!("{via:?}: {e}"));
        assert_eq!(got.status, StatusCode::OK, "{via:?}");
        let waited = waits.list();
        assert_eq!(waited.len(), 1, "{via:?}: one retry, {waited:?}");
        // The gateway's Retry-After, in whole seconds (1 or 2 as the second turns).
        assert!(
            waited[0] == Duration::from_secs(1) || waited[0] == Duration::from_secs(2),
            "{via:?}: {waited:?}"
        );
    }
}

#[tokio::test]
async fn a_retry_after_past_the_deadline_gives_up_at_once() {
    let (faults, _f) = faults().await;
    let gw = gateway(&format!(
        "[upstreams.f]\ntargets = [\"{faults}\"]\n\n[[routes]]\npath = \"/f/{{*rest}}\"\nupstream = \"f\"\nmaintenance = {{ until = \"{}\" }}\n",
        support::in_seconds(3600)
    ))
    .await;
    for via in BOTH {
        let waits = Waits::default();
        let p = policy(&waits).deadline(Duration::from_secs(5)).build();
        let e = get(via, &p, &format!("http://{}/f/ok", gw.addr()), &[])
            .await
            .expect_err("no 200 within the deadline");
        assert_eq!(e.reason(), Reason::RetryAfterPastDeadline, "{via:?}: {e}");
        assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert!(e.retry_after() > Some(Duration::from_secs(3500)), "{e}");
        assert_eq!(e.attempts(), 1);
        assert_eq!(
            e.problem().map(|p| p.type_uri.as_str()),
            Some(rule("gateway.maintenance").as_str())
        );
        assert!(waits.list().is_empty(), "{via:?}: no sleep");
    }
}

const REFUSED: &str = "eject_after = 1000\n";

#[tokio::test]
async fn a_refused_upstream_is_retried_on_get_but_not_on_a_post_without_a_key() {
    let dead = support::closed_port();
    let gw = gateway(&format!(
        "[upstreams.dead]\ntargets = [\"{dead}\"]\n{REFUSED}\n[[routes]]\npath = \"/d/{{*rest}}\"\nupstream = \"dead\"\n"
    ))
    .await;
    let url = format!("http://{}/d/x", gw.addr());
    for via in BOTH {
        let waits = Waits::default();
        let p = policy(&waits).max_attempts(3).build();
        let e = get(via, &p, &url, &[]).await.expect_err("502");
        assert_eq!(e.reason(), Reason::AttemptsExhausted, "{via:?}: {e}");
        assert_eq!(e.status(), Some(StatusCode::BAD_GATEWAY));
        assert_eq!(e.attempts(), 3, "{via:?}");
        assert_eq!(
            waits.list().len(),
            2,
            "{via:?}: a backoff before each retry"
        );
        let problem = e.problem().expect("problem body");
        assert_eq!(problem.type_uri, rule("upstream.unreachable"));
        assert_eq!(problem.extensions["failure"], "connect_refused");

        let e = call(via, &p, Method::POST, &url, &[], "{}")
            .await
            .expect_err("502");
        assert_eq!(e.reason(), Reason::NotRepeatable, "{via:?}: {e}");
        assert_eq!(
            e.attempts(),
            1,
            "{via:?}: a POST without a key is sent once"
        );

        // With a key it is safe to repeat, and the option adds one.
        let keyed = policy(&waits).add_idempotency_key(true).build();
        let e = call(via, &keyed, Method::POST, &url, &[], "{}")
            .await
            .expect_err("502");
        assert_eq!(e.attempts(), 3, "{via:?}: {e}");
    }
}

#[tokio::test]
async fn the_idempotency_key_the_option_adds_reaches_the_upstream() {
    let (faults, _f) = faults().await;
    let gw = gateway(&format!(
        "[upstreams.f]\ntargets = [\"{faults}\"]\n\n[[routes]]\npath = \"/f/{{*rest}}\"\nupstream = \"f\"\n"
    ))
    .await;
    for via in BOTH {
        let p = Policy::builder().add_idempotency_key(true).build();
        let got = call(
            via,
            &p,
            Method::POST,
            &format!("http://{}/f/echo", gw.addr()),
            &[],
            "{}",
        )
        .await
        .unwrap();
        let echo: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        let key = echo["headers"]["idempotency-key"].as_str().unwrap_or("");
        assert_eq!(key.len(), 32, "{via:?}: {echo}");
    }
}

fn jwt_gateway_toml(faults: std::net::SocketAddr) -> String {
    format!(
        "[upstreams.f]\ntargets = [\"{faults}\"]\n\n\
         [[routes]]\npath = \"/me/{{*rest}}\"\nupstream = \"f\"\nauth = \"jwt\"\n\n\
         [[routes]]\npath = \"/admin/{{*rest}}\"\nupstream = \"f\"\nauth = \"jwt\"\nroles = [\"admin\"]\n\n\
         [[routes]]\npath = \"/old/{{*rest}}\"\nretired = {{ successor = \"/new\" }}\n"
    )
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once() {
    let (faults, _f) = faults().await;
    let gw = gateway(&jwt_gateway_toml(faults)).await;
    let url = format!("http://{}/me/ok", gw.addr());
    let expired = format!("Bearer {}", support::token("ada", &[], -3600));
    for via in BOTH {
        let asked = Arc::new(AtomicU32::new(0));
        let counter = asked.clone();
        let p = Policy::builder()
            .token_source(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, BoxError>(support::token("ada", &[], 3600)) }
            })
            .build();
        let got = get(via, &p, &url, &[("authorization", &expired)])
            .await
            .unwrap_or_else(|e| panic!("{via:?}: {e}"));
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(asked.load(Ordering::SeqCst), 1, "{via:?}: one refresh");
        // The fresh token is kept: the next call needs no refresh.
        let got = get(via, &p, &url, &[]).await.unwrap();
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(asked.load(Ordering::SeqCst), 1, "{via:?}");
    }
}

#[tokio::test]
async fn a_second_401_gives_up_with_the_challenge() {
    let (faults, _f) = faults().await;
    let gw = gateway(&jwt_gateway_toml(faults)).await;
    let url = format!("http://{}/me/ok", gw.addr());
    for via in BOTH {
        let asked = Arc::new(AtomicU32::new(0));
        let counter = asked.clone();
        let p = Policy::builder()
            .token_source(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, BoxError>(support::token("ada", &[], -3600)) }
            })
            .build();
        let e = get(via, &p, &url, &[("authorization", "Bearer not-a-jwt")])
            .await
            .expect_err("401 twice");
        assert_eq!(e.reason(), Reason::Unauthorized, "{via:?}: {e}");
        assert_eq!(e.attempts(), 2);
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        let challenge = &e.challenges()[0];
        assert!(challenge.is_scheme("Bearer"));
        assert_eq!(challenge.get("error"), Some("invalid_token"));
        assert_eq!(
            e.problem().map(|p| p.type_uri.as_str()),
            Some(rule("auth.invalid").as_str())
        );
    }
}

/// A path, its headers, the status and problem type it must give up with.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], StatusCode, String);

#[tokio::test]
async fn client_faults_give_up_at_once_with_the_problem_parsed() {
    let (faults, _f) = faults().await;
    let api = support::reference_api().await;
    let gw = gateway(&format!(
        "{}\n[upstreams.accounts]\ntargets = [\"{api}\"]\n\n[[routes]]\npath = \"/users\"\nmethods = [\"POST\"]\nupstream = \"accounts\"\n",
        jwt_gateway_toml(faults)
    ))
    .await;
    let base = format!("http://{}", gw.addr());
    let user = format!("Bearer {}", support::token("ada", &[], 3600));
    let signup = r#"{"email":"ada@example.com","password":"correct horse battery","name":"Ada"}"#;
    let json = [("content-type", "application/json")];
    for via in BOTH {
        let waits = Waits::default();
        let p = policy(&waits).build();
        let cases: [Case<'_>; 3] = [
            (
                "/admin/ok",
                &[("authorization", &user)],
                StatusCode::FORBIDDEN,
                rule("authz.denied"),
            ),
            (
                "/nowhere",
                &[],
                StatusCode::NOT_FOUND,
                rule("route.unknown"),
            ),
            ("/old/page", &[], StatusCode::GONE, rule("route.retired")),
        ];
        for (path, headers, status, type_uri) in cases {
            let e = get(via, &p, &format!("{base}{path}"), headers)
                .await
                .expect_err(path);
            assert_eq!(e.reason(), Reason::Status, "{via:?} {path}: {e}");
            assert_eq!(e.status(), Some(status), "{via:?} {path}");
            assert_eq!(e.attempts(), 1, "{via:?} {path}");
            assert_eq!(e.problem().map(|p| p.type_uri.clone()), Some(type_uri));
        }
        // 403 carries its challenge too.
        let e = get(
            via,
            &p,
            &format!("{base}/admin/ok"),
            &[("authorization", &user)],
        )
        .await
        .expect_err("403");
        assert_eq!(e.challenges()[0].get("error"), Some("insufficient_scope"));

        // The reference service: the first sign-up makes Ada, the second is a 422.
        let first = call(
            via,
            &p,
            Method::POST,
            &format!("{base}/users"),
            &json,
            signup,
        )
        .await;
        if let Err(e) = &first {
            assert_eq!(e.status(), Some(StatusCode::UNPROCESSABLE_ENTITY), "{e}");
        }
        let e = call(
            via,
            &p,
            Method::POST,
            &format!("{base}/users"),
            &json,
            signup,
        )
        .await
        .expect_err("email taken");
        assert_eq!(
            e.status(),
            Some(StatusCode::UNPROCESSABLE_ENTITY),
            "{via:?}: {e}"
        );
        assert_eq!(e.attempts(), 1);
        let problem = e.problem().expect("the service's problem body");
        assert_eq!(problem.status, Some(422));
        assert!(waits.list().is_empty(), "{via:?}: nothing retried");
    }
}

#[tokio::test]
async fn proactive_pacing_keeps_429_from_the_caller() {
    let (faults, _f) = faults().await;
    let toml = format!(
        "[rate_limits.pace]\nrequests = 2\nper = \"1s\"\nkey = \"ip\"\n\n\
         [upstreams.f]\ntargets = [\"{faults}\"]\n\n\
         [[routes]]\npath = \"/f/{{*rest}}\"\nupstream = \"f\"\nrate_limit = \"pace\"\n"
    );
    for via in BOTH {
        let gw = gateway(&toml).await;
        let url = format!("http://{}/f/ok", gw.addr());
        // One attempt per call: a 429 would reach the caller as an error.
        let waits = Waits::default();
        let paced = Policy::builder()
            .max_attempts(1)
            .pace(true)
            .sleeper(waits.real())
            .build();
        for i in 0..5 {
            let got = get(via, &paced, &url, &[])
                .await
                .unwrap_or_else(|e| panic!("{via:?} call {i}: {e}"));
            assert_eq!(got.status, StatusCode::OK);
        }
        assert!(
            !waits.list().is_empty(),
            "{via:?}: the client waited for a reset"
        );

        // The same burst unpaced collects a 429 (what the pacing spares).
        let gw = gateway(&toml).await;
        let url = format!("http://{}/f/ok", gw.addr());
        let unpaced = Policy::builder().max_attempts(1).build();
        let mut limited = 0;
        for _ in 0..5 {
            if let Err(e) = get(via, &unpaced, &url, &[]).await {
                assert_eq!(e.status(), Some(StatusCode::TOO_MANY_REQUESTS), "{e}");
                limited += 1;
            }
        }
        assert!(limited > 0, "{via:?}");
    }
}

#[tokio::test]
async fn the_budget_stops_retries_during_a_storm() {
    let dead = support::closed_port();
    let gw = gateway(&format!(
        "[upstreams.dead]\ntargets = [\"{dead}\"]\n{REFUSED}\n[[routes]]\npath = \"/d/{{*rest}}\"\nupstream = \"dead\"\n"
    ))
    .await;
    let url = format!("http://{}/d/x", gw.addr());
    for via in BOTH {
        let waits = Waits::default();
        // 10% of recent calls, plus 0.1 a second over 10 s: one more.
        let p = policy(&waits)
            .max_attempts(3)
            .budget(RetryBudget::new(0.1, 0.1, Duration::from_secs(10)))
            .build();
        let (mut sent, mut stopped) = (0, 0);
        for _ in 0..40 {
            let e = get(via, &p, &url, &[]).await.expect_err("502");
            sent += e.attempts();
            if e.reason() == Reason::BudgetExhausted {
                stopped += 1;
            }
        }
        // Without the budget: 120 attempts.
        assert!(sent <= 40 + 4 + 1, "{via:?}: {sent} attempts");
        assert!(
            stopped > 30,
            "{via:?}: {stopped} calls stopped by the budget"
        );
    }
}

#[tokio::test]
async fn connection_failures_are_named_and_retried_only_when_safe() {
    let (faults, _f) = faults().await;
    let dead = support::closed_port();
    for via in BOTH {
        let waits = Waits::default();
        let p = policy(&waits).max_attempts(3).build();
        // Refused: the request never left, so even a POST is sent again.
        for method in [Method::GET, Method::POST] {
            let e = call(
                via,
                &p,
                method.clone(),
                &format!("http://{dead}/x"),
                &[],
                "{}",
            )
            .await
            .expect_err("refused");
            assert_eq!(
                e.failure(),
                Some(candor_contract::FailureType::ConnectRefused),
                "{via:?} {method}: {e}"
            );
            assert_eq!(e.reason(), Reason::AttemptsExhausted, "{via:?} {method}");
            assert_eq!(e.attempts(), 3);
            assert_eq!(e.status(), None);
        }
        // Reset after the request was read: a GET is repeated, a POST is not.
        let reset = format!("http://{faults}/reset");
        let e = get(via, &p, &reset, &[]).await.expect_err("reset");
        assert_eq!(
            e.failure(),
            Some(candor_contract::FailureType::Reset),
            "{via:?}: {e}"
        );
        assert_eq!(e.attempts(), 3, "{via:?}");
        let e = call(via, &p, Method::POST, &reset, &[], "{}")
            .await
            .expect_err("reset");
        assert_eq!(
            e.failure(),
            Some(candor_contract::FailureType::Reset),
            "{via:?}: {e}"
        );
        assert_eq!(e.reason(), Reason::NotRepeatable, "{via:?}");
        assert_eq!(e.attempts(), 1, "{via:?}");
    }
}
