//! The reference auth service over real HTTP: introspection answers (RFC
//! 7662) from its SQLite store of sessions, and its failure switches.

use std::time::{Duration, SystemTime};

use candor_reference_api::{AuthConfig, AuthService, SESSION_TTL};
use http::StatusCode;
use serde_json::{Value, json};

async fn start() -> (String, AuthService) {
    let service = AuthService::open(AuthConfig::default()).await.unwrap();
    let now = SystemTime::now();
    service
        .add_session("s3cr+t/1", "grace", &["reader", "admin"], now + SESSION_TTL)
        .await
        .unwrap();
    service
        .add_session("old", "grace", &[], now - Duration::from_secs(60))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = service.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, service)
}

async fn introspect(base: &str, body: &'static str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/introspect"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn json(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let bytes = r.bytes().await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn active_sessions_are_introspected_with_subject_and_roles() {
    let (base, _service) = start().await;
    let (status, body) = json(introspect(&base, "token=s3cr%2Bt%2F1").await).await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], "grace");
    assert_eq!(body["roles"], json!(["reader", "admin"]));
    assert!(body["exp"].as_i64().unwrap() > 0);
    for inactive in ["token=old", "token=unknown", "other=1"] {
        let (status, body) = json(introspect(&base, inactive).await).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, json!({"active": false})),
            "{inactive}"
        );
    }
    // No body at all: no token, not active.
    let r = reqwest::Client::new()
        .post(format!("{base}/introspect"))
        .send()
        .await
        .unwrap();
    assert_eq!(json(r).await.1, json!({"active": false}));
    // A body that is not a form is refused, not guessed at.
    let r = reqwest::Client::new()
        .post(format!("{base}/introspect"))
        .header("content-type", "application/json")
        .body("{\"token\":\"old\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn the_switches_make_it_fail_answer_garbage_and_hang() {
    let (base, service) = start().await;
    let switches = service.switches();
    let client = reqwest::Client::new();
    let flip = |path: &'static str, on: bool| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let r = client
                .post(format!("{base}/-/auth/{path}"))
                .header("content-type", "application/json")
                .body(json!({"on": on}).to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
        }
    };

    flip("fail-db", true).await;
    let r = introspect(&base, "token=s3cr%2Bt%2F1").await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    flip("fail-db", false).await;

    flip("invalid-answers", true).await;
    let r = introspect(&base, "token=s3cr%2Bt%2F1").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    flip("invalid-answers", false).await;

    // Hung: the answer comes once the switch is off.
    flip("hang-db", true).await;
    assert!(switches.hang_db.is_on());
    let held = tokio::spawn({
        let base = base.clone();
        async move { introspect(&base, "token=s3cr%2Bt%2F1").await }
    });
    // Until the database holds it, the request has not been answered.
    tokio::time::timeout(Duration::from_secs(30), async {
        while switches.hang_db.held() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the query is held");
    assert!(!held.is_finished());
    flip("hang-db", false).await;
    let r = tokio::time::timeout(Duration::from_secs(30), held)
        .await
        .expect("answered once the switch is off")
        .unwrap();
    assert_eq!(json(r).await.1["active"], true);
}
