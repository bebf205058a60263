//! The reference API over real HTTP: a server on 127.0.0.1:0 per test
//! (`:memory:`, or a temporary file where persistence is the point), a
//! client that records every exchange, and candor-contract's passive
//! checks run over all of them when the test ends.

use std::time::Duration;

use candor_contract::{
    CheckOptions, Exchange, History, PROBLEM_JSON, Problem, check_exchange, parse_challenges,
};
use candor_reference_api::{Config, DbLocation, FailSwitch, StartError, serve_with_shutdown};
use http::header::{
    ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue,
    LOCATION, WWW_AUTHENTICATE,
};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{Mutex, oneshot};
use tokio::task::JoinHandle;

const JSON: &str = "application/json";

/// One running service.
struct Server {
    base: String,
    fail: FailSwitch,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), StartError>>,
}

impl Server {
    async fn start(config: Config) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let fail = config.fail_db.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_with_shutdown(listener, config, async move {
            let _ = stopped.await;
        }));
        Server {
            base,
            fail,
            stop: Some(stop),
            task,
        }
    }

    async fn memory() -> Server {
        Server::start(Config::in_memory()).await
    }

    /// Graceful shutdown; returns once the service (and its database) is closed.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = (&mut self.task).await.unwrap();
        result.unwrap();
    }

    fn client(&self) -> Client {
        Client {
            base: self.base.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            exchanges: Mutex::new(Vec::new()),
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: impl http::header::AsHeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("missing header in {self:?}"))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the status and a sound problem document; returns it.
    #[track_caller]
    fn problem(&self, status: StatusCode) -> Problem {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(self.header(CONTENT_TYPE), PROBLEM_JSON);
        let problem = Problem::from_slice(&self.body).unwrap();
        assert_eq!(problem.status, Some(status.as_u16()));
        assert!(problem.validate(status.as_u16()).is_empty(), "{problem:?}");
        problem
    }
}

/// An HTTP client that remembers every exchange for the contract checks.
struct Client {
    base: String,
    http: reqwest::Client,
    exchanges: Mutex<Vec<Exchange>>,
}

impl Client {
    async fn send(&self, method: Method, path: &str, headers: HeaderMap, body: &[u8]) -> Reply {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .request(method.clone(), &url)
            .headers(headers.clone())
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let reply = Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.bytes().await.unwrap().to_vec(),
        };
        let mut ex = Exchange::default();
        ex.request.method = method.as_str().to_owned();
        ex.request.url = url;
        ex.request.headers = headers;
        ex.request.body = body.to_vec();
        ex.response.status = reply.status.as_u16();
        ex.response.headers = reply.headers.clone();
        ex.response.body = reply.body.clone();
        self.exchanges.lock().await.push(ex);
        reply
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, HeaderMap::new(), b"").await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, HeaderMap::new(), b"").await
    }

    async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, Some(JSON), body.to_string().as_bytes())
            .await
    }

    async fn post_raw(&self, path: &str, content_type: Option<&str>, body: &[u8]) -> Reply {
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        }
        self.send(Method::POST, path, headers, body).await
    }

    async fn with_token(&self, method: Method, path: &str, token: &str) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        self.send(method, path, headers, b"").await
    }

    async fn create_user(&self, email: &str) -> (String, Value) {
        let reply = self
            .post_json(
                "/users",
                &json!({"email": email, "password": "correct horse", "name": "Ada"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        (reply.header(LOCATION).to_owned(), reply.json())
    }

    /// Logs in; returns the session's location and token.
    async fn login(&self, email: &str) -> (String, String) {
        let reply = self
            .post_json(
                "/sessions",
                &json!({"email": email, "password": "correct horse"}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        let token = reply.json()["token"].as_str().unwrap().to_owned();
        (reply.header(LOCATION).to_owned(), token)
    }

    /// Runs every passive rule of the contract over the recorded exchanges:
    /// a response of this service must never be a finding.
    async fn assert_contract_kept(&self) {
        let exchanges = self.exchanges.lock().await;
        let opts = CheckOptions {
            assume_json_api: true,
            ..CheckOptions::default()
        };
        let mut history = History::default();
        let mut findings = Vec::new();
        for ex in exchanges.iter() {
            for f in check_exchange(ex, &opts)
                .into_iter()
                .chain(history.observe(ex))
            {
                findings.push(format!(
                    "{} {} -> {}: {} {}",
                    ex.request.method, ex.request.url, ex.response.status, f.rule.id, f.message
                ));
            }
        }
        assert!(
            findings.is_empty(),
            "contract findings:\n{}",
            findings.join("\n")
        );
    }
}

#[tokio::test]
async fn create_user_is_201_with_location_and_reads_back_200() {
    let server = Server::memory().await;
    let client = server.client();
    let (location, user) = client.create_user("ada@example.com").await;
    assert_eq!(location, format!("/users/{}", user["id"]));
    assert_eq!(user["email"], "ada@example.com");
    let read = client.get(&location).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json(), user);
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn malformed_json_is_400_with_the_parse_position() {
    let server = Server::memory().await;
    let client = server.client();
    let reply = client
        .post_raw("/users", Some(JSON), b"{\"email\": \"ada@exa")
        .await;
    let problem = reply.problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem.type_uri, "tag:candor.dev,2026:rule/body.malformed");
    assert_eq!(problem.extensions["line"], 1);
    assert_eq!(problem.extensions["column"], 18);
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn missing_and_ill_typed_fields_are_400_listing_every_violation() {
    let server = Server::memory().await;
    let client = server.client();
    let reply = client
        .post_json("/users", &json!({"email": 42, "name": ["x"]}))
        .await;
    let problem = reply.problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem.type_uri, "tag:candor.dev,2026:rule/body.schema");
    let pointers: Vec<&str> = problem.extensions["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/email", "/password", "/name"]);

    let reply = client.post_json("/users", &json!([1, 2])).await;
    let problem = reply.problem(StatusCode::BAD_REQUEST);
    assert_eq!(problem.extensions["errors"][0]["pointer"], "");
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn bad_email_syntax_and_short_password_are_400_not_422() {
    let server = Server::memory().await;
    let client = server.client();
    let reply = client
        .post_json(
            "/users",
            &json!({"email": "notanemail", "password": "short"}),
        )
        .await;
    let problem = reply.problem(StatusCode::BAD_REQUEST);
    let errors = problem.extensions["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415_with_accept_post() {
    let server = Server::memory().await;
    let client = server.client();
    let body = br#"{"email":"ada@example.com","password":"correct horse"}"#;
    for content_type in [Some("text/plain"), None] {
        let reply = client.post_raw("/users", content_type, body).await;
        let problem = reply.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(problem.type_uri, "tag:candor.dev,2026:rule/body.media");
        assert_eq!(reply.header("accept-post"), JSON);
    }
    // Nothing was created.
    assert_eq!(client.get("/users/1").await.status, StatusCode::NOT_FOUND);
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn oversize_body_is_413() {
    let server = Server::memory().await;
    let client = server.client();
    let huge = format!(r#"{{"email":"{}"}}"#, "a".repeat(3 << 20));
    let reply = client.post_raw("/users", Some(JSON), huge.as_bytes()).await;
    reply.problem(StatusCode::PAYLOAD_TOO_LARGE);
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_sends_a_huge_body_first_still_reads_its_413() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let server = Server::memory().await;
    // 8 MiB declared and written in full before reading, as most clients
    // do: the service answers 413 early and reads the rest away instead of
    // closing on it, which would reset the connection under the answer.
    let len = 8 << 20;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /users HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..len / chunk.len() {
        stream
            .write_all(&chunk)
            .await
            .expect("the service reads the body it refused");
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.expect("an answer, not a reset");
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn duplicate_email_is_422_whatever_its_case() {
    let server = Server::memory().await;
    let client = server.client();
    client.create_user("ada@example.com").await;
    for email in ["ada@example.com", "ADA@Example.com"] {
        let reply = client
            .post_json(
                "/users",
                &json!({"email": email, "password": "correct horse"}),
            )
            .await;
        let problem = reply.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(problem.extensions["errors"][0]["pointer"], "/email");
    }
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_user_is_404_whatever_the_id_looks_like() {
    let server = Server::memory().await;
    let client = server.client();
    for path in ["/users/999", "/users/abc", "/users/007", "/users/-1"] {
        let reply = client.get(path).await;
        let problem = reply.problem(StatusCode::NOT_FOUND);
        assert_eq!(problem.type_uri, "about:blank", "{path}");
    }
    client
        .delete("/users/999")
        .await
        .problem(StatusCode::NOT_FOUND);
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn delete_is_204_then_the_user_is_410_and_the_email_free_again() {
    let server = Server::memory().await;
    let client = server.client();
    let (location, _) = client.create_user("ada@example.com").await;
    let deleted = client.delete(&location).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.body.is_empty());
    assert!(deleted.headers.get(CONTENT_LENGTH).is_none_or(|v| v == "0"));
    client.get(&location).await.problem(StatusCode::GONE);
    client.delete(&location).await.problem(StatusCode::GONE);
    // The tombstone keeps the id, not the personal data.
    let (again, _) = client.create_user("ada@example.com").await;
    assert_ne!(again, location);
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn login_is_201_with_location_token_and_no_store() {
    let server = Server::memory().await;
    let client = server.client();
    let (_, user) = client.create_user("ada@example.com").await;
    let reply = client
        .post_json(
            "/sessions",
            &json!({"email": "ada@example.com", "password": "correct horse"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let body = reply.json();
    assert_eq!(reply.header(LOCATION), format!("/sessions/{}", body["id"]));
    assert_eq!(reply.header(CACHE_CONTROL), "no-store");
    assert_eq!(body["user_id"], user["id"]);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["token"].as_str().unwrap().len() >= 43);
    let token = body["token"].as_str().unwrap();
    let read = client
        .with_token(Method::GET, reply.header(LOCATION), token)
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json()["id"], body["id"]);
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_email_are_the_same_401_with_a_challenge() {
    let server = Server::memory().await;
    let client = server.client();
    client.create_user("ada@example.com").await;
    let mut answers = Vec::new();
    for (email, password) in [
        ("ada@example.com", "wrong horse"),
        ("bob@example.com", "correct horse"),
    ] {
        let reply = client
            .post_json("/sessions", &json!({"email": email, "password": password}))
            .await;
        let problem = reply.problem(StatusCode::UNAUTHORIZED);
        let challenges = parse_challenges(reply.header(WWW_AUTHENTICATE)).unwrap();
        assert_eq!(challenges[0].get("realm"), Some("candor-reference"));
        answers.push((reply.header(WWW_AUTHENTICATE).to_owned(), problem));
    }
    assert_eq!(answers[0], answers[1]);
    // A login without the password is a schema violation, not a 401.
    client
        .post_json("/sessions", &json!({"email": "ada@example.com"}))
        .await
        .problem(StatusCode::BAD_REQUEST);
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn ending_a_session_takes_its_owners_token() {
    let server = Server::memory().await;
    let client = server.client();
    client.create_user("ada@example.com").await;
    client.create_user("bob@example.com").await;
    let (ada_1, ada_token_1) = client.login("ada@example.com").await;
    let (ada_2, ada_token_2) = client.login("ada@example.com").await;
    let (_, bob_token) = client.login("bob@example.com").await;

    // No credentials: a bare Bearer challenge (RFC 6750 §3.1).
    let reply = client.delete(&ada_1).await;
    reply.problem(StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.header(WWW_AUTHENTICATE),
        r#"Bearer realm="candor-reference""#
    );
    // A token that is not one.
    let reply = client.with_token(Method::DELETE, &ada_1, "nope").await;
    reply.problem(StatusCode::UNAUTHORIZED);
    let challenge = parse_challenges(reply.header(WWW_AUTHENTICATE)).unwrap();
    assert_eq!(challenge[0].get("error"), Some("invalid_token"));
    // An empty Bearer is a malformed request.
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
    let reply = client.send(Method::DELETE, &ada_1, headers, b"").await;
    reply.problem(StatusCode::BAD_REQUEST);
    assert!(reply.header(WWW_AUTHENTICATE).contains("invalid_request"));
    // Someone else's session.
    let reply = client.with_token(Method::DELETE, &ada_1, &bob_token).await;
    let problem = reply.problem(StatusCode::FORBIDDEN);
    assert_eq!(problem.extensions["reason"], "insufficient_permissions");
    // An unknown session, asked by a valid token.
    client
        .with_token(Method::DELETE, "/sessions/999", &ada_token_2)
        .await
        .problem(StatusCode::NOT_FOUND);

    // The owner ends it: 204, and the session is gone for good.
    let reply = client
        .with_token(Method::DELETE, &ada_1, &ada_token_1)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(reply.body.is_empty());
    client
        .with_token(Method::GET, &ada_1, &ada_token_2)
        .await
        .problem(StatusCode::GONE);
    client
        .with_token(Method::DELETE, &ada_1, &ada_token_2)
        .await
        .problem(StatusCode::GONE);
    // Its token no longer authenticates.
    client
        .with_token(Method::GET, &ada_2, &ada_token_1)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn deleting_a_user_ends_their_sessions() {
    let server = Server::memory().await;
    let client = server.client();
    let (user, _) = client.create_user("ada@example.com").await;
    let (session, token) = client.login("ada@example.com").await;
    assert_eq!(client.delete(&user).await.status, StatusCode::NO_CONTENT);
    client
        .with_token(Method::GET, &session, &token)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    client
        .post_json(
            "/sessions",
            &json!({"email": "ada@example.com", "password": "correct horse"}),
        )
        .await
        .problem(StatusCode::UNAUTHORIZED);
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn admin_reports_count_what_happened() {
    let server = Server::memory().await;
    let client = server.client();
    let (ada, _) = client.create_user("ada@example.com").await;
    client.create_user("bob@example.com").await;
    client.login("bob@example.com").await;
    client.delete(&ada).await;
    let reply = client.get("/admin/reports").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.json(),
        json!({
            "users": {"active": 1, "deleted": 1},
            "sessions": {"active": 1, "ended": 0},
            "exports": {"pending": 0, "done": 0},
        })
    );
    client.assert_contract_kept().await;
    server.stop().await;
}

/// Polls an export until it is done, a bounded number of times.
async fn await_done(client: &Client, location: &str) -> Value {
    for _ in 0..400 {
        let reply = client.get(location).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let body = reply.json();
        if body["status"] == "done" {
            return body;
        }
        assert_eq!(body["status"], "pending");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("export {location} never reported done");
}

#[tokio::test]
async fn export_is_202_with_a_status_resource_that_later_reports_done() {
    let server = Server::memory().await;
    let client = server.client();
    client.create_user("ada@example.com").await;
    let reply = client.post_raw("/exports", None, b"").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    let location = reply.header(LOCATION).to_owned();
    assert_eq!(location, format!("/exports/{}", reply.json()["id"]));
    assert_eq!(reply.json()["status"], "pending");
    let done = await_done(&client, &location).await;
    assert_eq!(done["users"], 1);
    assert!(done["completed_at"].is_string());
    client
        .get("/exports/999")
        .await
        .problem(StatusCode::NOT_FOUND);
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn export_stays_pending_until_its_work_is_done() {
    let server = Server::start(Config {
        export_delay: Duration::from_secs(3600),
        ..Config::in_memory()
    })
    .await;
    let client = server.client();
    let location = client
        .post_raw("/exports", None, b"")
        .await
        .header(LOCATION)
        .to_owned();
    let reply = client.get(&location).await;
    assert_eq!(reply.json()["status"], "pending");
    assert!(reply.json().get("completed_at").is_none());
    client.assert_contract_kept().await;
    // Shutdown does not wait for the hour.
    server.stop().await;
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_with_allow() {
    let server = Server::memory().await;
    let client = server.client();
    let problem = client.get("/nowhere").await.problem(StatusCode::NOT_FOUND);
    assert_eq!(problem.type_uri, "tag:candor.dev,2026:rule/route.unknown");

    for (method, path, allow) in [
        (Method::PUT, "/users/1", "GET,HEAD,DELETE"),
        (Method::GET, "/users", "POST"),
        (Method::DELETE, "/admin/reports", "GET,HEAD"),
        (Method::PATCH, "/exports/1", "GET,HEAD"),
    ] {
        let reply = client.send(method, path, HeaderMap::new(), b"").await;
        let problem = reply.problem(StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(problem.type_uri, "tag:candor.dev,2026:rule/route.method");
        assert_eq!(reply.header(ALLOW), allow, "{path}");
    }
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_all_succeed_with_distinct_ids() {
    let server = Server::memory().await;
    let client = std::sync::Arc::new(server.client());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        let client = std::sync::Arc::clone(&client);
        tasks.spawn(async move { client.create_user(&format!("user{i}@example.com")).await });
    }
    let mut ids = std::collections::BTreeSet::new();
    while let Some(done) = tasks.join_next().await {
        let (_, user) = done.unwrap();
        ids.insert(user["id"].as_i64().unwrap());
    }
    assert_eq!(ids.len(), 32);
    let report = client.get("/admin/reports").await.json();
    assert_eq!(report["users"]["active"], 32);
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicates_let_exactly_one_win() {
    let server = Server::memory().await;
    let client = std::sync::Arc::new(server.client());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let client = std::sync::Arc::clone(&client);
        tasks.spawn(async move {
            client
                .post_json(
                    "/users",
                    &json!({"email": "same@example.com", "password": "correct horse"}),
                )
                .await
                .status
        });
    }
    let mut statuses = Vec::new();
    while let Some(done) = tasks.join_next().await {
        statuses.push(done.unwrap());
    }
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert_eq!((created, refused), (1, 15), "{statuses:?}");
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn writes_survive_a_restart_on_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data/reference.db");
    let config = || Config {
        db: DbLocation::File(file.clone()),
        ..Config::in_memory()
    };

    let first = Server::start(Config {
        export_delay: Duration::from_secs(3600),
        ..config()
    })
    .await;
    let client = first.client();
    let (kept, user) = client.create_user("ada@example.com").await;
    let (deleted, _) = client.create_user("bob@example.com").await;
    client.delete(&deleted).await;
    let (session, token) = client.login("ada@example.com").await;
    let export = client
        .post_raw("/exports", None, b"")
        .await
        .header(LOCATION)
        .to_owned();
    client.assert_contract_kept().await;
    first.stop().await;
    assert!(file.exists());

    let second = Server::start(config()).await;
    let client = second.client();
    let read = client.get(&kept).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json(), user);
    client.get(&deleted).await.problem(StatusCode::GONE);
    assert_eq!(
        client
            .with_token(Method::GET, &session, &token)
            .await
            .status,
        StatusCode::OK
    );
    client
        .post_json(
            "/users",
            &json!({"email": "ada@example.com", "password": "correct horse"}),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    // The export accepted before the restart is resumed and finishes.
    assert_eq!(await_done(&client, &export).await["users"], 1);
    client.assert_contract_kept().await;
    second.stop().await;
}

/// Words that would betray the database behind a 500.
const INTERNALS: &[&str] = &[
    "sqlite",
    "SQL",
    "rusqlite",
    "SELECT",
    "INSERT",
    "UPDATE",
    "constraint",
    "database",
    "simulated",
    "fail-db",
    "panic",
];

#[track_caller]
fn assert_opaque_500(reply: &Reply) {
    let problem = reply.problem(StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(problem.type_uri, "tag:candor.dev,2026:rule/internal");
    let text = reply.text();
    for word in INTERNALS {
        assert!(
            !text.to_lowercase().contains(&word.to_lowercase()),
            "{word} leaked: {text}"
        );
    }
}

#[tokio::test]
async fn fail_db_switch_gives_500_problems_without_internals() {
    let server = Server::memory().await;
    let client = server.client();
    let (user, _) = client.create_user("ada@example.com").await;
    let (session, token) = client.login("ada@example.com").await;

    server.fail.set(true);
    let new_user = json!({"email": "bob@example.com", "password": "correct horse"});
    let login = json!({"email": "ada@example.com", "password": "correct horse"});
    assert_opaque_500(&client.post_json("/users", &new_user).await);
    assert_opaque_500(&client.get(&user).await);
    assert_opaque_500(&client.delete(&user).await);
    assert_opaque_500(&client.post_json("/sessions", &login).await);
    assert_opaque_500(&client.with_token(Method::GET, &session, &token).await);
    assert_opaque_500(&client.with_token(Method::DELETE, &session, &token).await);
    assert_opaque_500(&client.get("/admin/reports").await);
    assert_opaque_500(&client.post_raw("/exports", None, b"").await);
    assert_opaque_500(&client.get("/exports/1").await);
    // Client faults are still client faults while the database is down.
    client
        .post_raw("/users", Some(JSON), b"{")
        .await
        .problem(StatusCode::BAD_REQUEST);

    // Off again through the control route: everything works as before.
    let reply = client.post_json("/-/fail-db", &json!({"on": false})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({"fail_db": false}));
    assert!(!server.fail.is_on());
    assert_eq!(client.get(&user).await.status, StatusCode::OK);
    // And on through it too.
    client.post_json("/-/fail-db", &json!({"on": true})).await;
    assert_opaque_500(&client.get(&user).await);
    client
        .post_json("/-/fail-db", &json!({"on": "yes"}))
        .await
        .problem(StatusCode::BAD_REQUEST);
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn a_service_started_with_the_switch_on_fails_until_it_is_off() {
    let server = Server::start(Config {
        fail_db: FailSwitch::new(true),
        ..Config::in_memory()
    })
    .await;
    let client = server.client();
    assert_opaque_500(&client.get("/admin/reports").await);
    server.fail.set(false);
    assert_eq!(client.get("/admin/reports").await.status, StatusCode::OK);
    client.assert_contract_kept().await;
    server.stop().await;
}

#[tokio::test]
async fn the_service_serves_its_openapi_document() {
    let server = Server::memory().await;
    let client = server.client();
    // Static: the document answers even while the database is down.
    server.fail.set(true);
    let reply = client.get("/openapi.yaml").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header(CONTENT_TYPE), "application/yaml");
    assert_eq!(reply.text(), candor_reference_api::OPENAPI);
    assert!(reply.text().starts_with("openapi: 3.1"), "{}", reply.text());
    client.assert_contract_kept().await;
    server.stop().await;
}
