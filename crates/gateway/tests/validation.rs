//! contract.md section 1, the body rows on routes with a `request_schema`:
//! 415 body.media, 400 body.malformed and body.schema, 413 body.too_large,
//! their place after auth.*, and the config errors of `request_schema`.

mod support;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use candor_gateway::config::load_str;
use candor_gateway::{Gateway, StartOptions};
use http::Method;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";
const MAX_BODY_BYTES: usize = 256;

/// Two required members, a format and a type, no other members.
const NEW_USER: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["name", "email"],
  "properties": {
    "name": { "type": "string", "minLength": 1 },
    "email": { "type": "string", "format": "email" },
    "age": { "type": "integer", "minimum": 0 }
  },
  "additionalProperties": false
}"#;

const JSON: (&str, &str) = ("content-type", "application/json");

struct Setup {
    gw: Gateway,
    _faults: candor_faults::FaultsHandle,
    _dir: tempfile::TempDir,
}

/// A directory holding `schemas/new-user.json`.
fn schema_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("schemas")).unwrap();
    std::fs::write(dir.path().join("schemas/new-user.json"), NEW_USER).unwrap();
    dir
}

async fn setup() -> Setup {
    let (faults, handle) = faults().await;
    let dir = schema_dir();
    let toml = format!(
        r#"{GATEWAY_TABLE}listen = "127.0.0.1:0"
access_log = false
max_body_bytes = {MAX_BODY_BYTES}

[auth.jwt]
algorithms = ["HS256"]
secret = "{SECRET}"

[upstreams.svc]
targets = ["{faults}"]

[[routes]]
path = "/users/{{*rest}}"
methods = ["GET", "POST", "PATCH"]
upstream = "svc"
request_schema = "schemas/new-user.json"

[[routes]]
path = "/secure/{{*rest}}"
upstream = "svc"
auth = "jwt"
request_schema = "schemas/new-user.json"

[[routes]]
path = "/plain/{{*rest}}"
upstream = "svc"
"#
    );
    let config =
        load_str(&toml, &dir.path().join("gw.toml"), &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let gw = Gateway::start(config, StartOptions::default())
        .await
        .expect("gateway starts");
    Setup {
        gw,
        _faults: handle,
        _dir: dir,
    }
}

async fn post(s: &Setup, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    send(s.gw.addr(), Method::POST, path, headers, body).await
}

/// The `errors` extension as (pointer, message) pairs, sorted.
fn violations(reply: &Reply) -> Vec<(String, String)> {
    let body = reply.json();
    let list = body["errors"].as_array().expect("an errors array");
    let mut pairs: Vec<(String, String)> = list
        .iter()
        .map(|e| {
            let pointer = e["pointer"].as_str().expect("a pointer").to_owned();
            let message = e["message"].as_str().expect("a message").to_owned();
            (pointer, message)
        })
        .collect();
    pairs.sort();
    pairs
}

/// One HTTP/1.1 request written by hand with a chunked body (no
/// Content-Length), and the status and body of the answer.
async fn post_chunked(s: &Setup, path: &str, content_type: &str, chunks: &[&str]) -> (u16, Value) {
    let mut stream = TcpStream::connect(s.gw.addr()).await.unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: {content_type}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    for chunk in chunks {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a complete head");
    let status = head[9..12].parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, serde_json::from_str(&body).unwrap())
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size, 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

#[tokio::test]
async fn a_valid_body_is_forwarded_byte_for_byte() {
    let s = setup().await;
    // Odd spacing, key order and an escape: the upstream gets the bytes as
    // sent, not a re-serialization.
    let body = "{ \"email\":\"ada@example.com\",\n  \"name\" : \"Ad\\u0061\", \"age\": 36 }";
    let reply = post(&s, "/users/echo", &[JSON], body).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let echo = reply.json();
    assert_eq!(echo["body"], body);
    assert_eq!(echo["headers"]["content-length"], body.len().to_string());
    assert_eq!(echo["headers"]["content-type"], "application/json");
}

#[tokio::test]
async fn json_with_a_charset_or_a_plus_json_type_is_accepted() {
    let s = setup().await;
    let body = r#"{"name": "Ada", "email": "ada@example.com"}"#;
    for content_type in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.candor.user+json",
    ] {
        let reply = post(&s, "/users/echo", &[("content-type", content_type)], body).await;
        assert_eq!(reply.status, 200, "{content_type}");
        assert_eq!(reply.json()["body"], body);
    }
}

#[tokio::test]
async fn a_chunked_body_is_read_whole_checked_and_forwarded() {
    let s = setup().await;
    let chunks = [r#"{"name": "Ada", "#, r#""email": "ada@example.com"}"#];
    let (status, echo) = post_chunked(&s, "/users/echo", "application/json", &chunks).await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["body"], chunks.concat());
    assert_eq!(
        echo["headers"]["content-length"],
        chunks.concat().len().to_string()
    );
    assert!(echo["headers"].get("transfer-encoding").is_none());
}

#[tokio::test]
async fn a_body_without_content_type_is_415_with_accept_post() {
    let s = setup().await;
    let reply = post(&s, "/users/echo", &[], r#"{"name": "Ada"}"#).await;
    assert_rule(&reply, 415, "body.media");
    assert_eq!(reply.header("accept-post"), Some("application/json"));
    assert_eq!(reply.header("accept-patch"), None);
    assert!(reply.json()["detail"].as_str().unwrap().contains("none"));
}

#[tokio::test]
async fn a_body_of_another_media_type_is_415() {
    let s = setup().await;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=iso-8859-1",
    ] {
        let reply = post(&s, "/users/echo", &[("content-type", content_type)], "{}").await;
        assert_rule(&reply, 415, "body.media");
        assert_eq!(reply.header("accept-post"), Some("application/json"));
        let detail = reply.json()["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains(content_type), "{detail}");
    }
}

#[tokio::test]
async fn a_patch_of_another_media_type_gets_accept_patch() {
    let s = setup().await;
    let reply = send(
        s.gw.addr(),
        Method::PATCH,
        "/users/echo",
        &[("content-type", "text/plain")],
        "name=Ada",
    )
    .await;
    assert_rule(&reply, 415, "body.media");
    assert_eq!(reply.header("accept-patch"), Some("application/json"));
    assert_eq!(reply.header("accept-post"), None);
}

#[tokio::test]
async fn malformed_json_is_400_with_the_line_and_column() {
    let s = setup().await;
    let body = "{\n  \"name\": \"Ada\",\n  \"email\": \n}";
    let expected = serde_json::from_str::<Value>(body).unwrap_err();
    let reply = post(&s, "/users/echo", &[JSON], body).await;
    assert_rule(&reply, 400, "body.malformed");
    let problem = reply.json();
    assert_eq!(problem["line"], 4);
    assert_eq!(problem["line"], expected.line());
    assert_eq!(problem["column"], expected.column());
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("line 4"), "{detail}");
}

#[tokio::test]
async fn an_empty_json_body_is_malformed_at_line_1_column_0() {
    let s = setup().await;
    let reply = post(&s, "/users/echo", &[JSON], "").await;
    assert_rule(&reply, 400, "body.malformed");
    let problem = reply.json();
    assert_eq!(
        (problem["line"].clone(), problem["column"].clone()),
        (json!(1), json!(0))
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("EOF while parsing")
    );
}

#[tokio::test]
async fn duplicate_member_names_are_malformed() {
    let s = setup().await;
    // Which "name" would the upstream read? Refused rather than guessed.
    let body = r#"{"name": "Ada", "email": "ada@example.com", "name": 7}"#;
    let reply = post(&s, "/users/echo", &[JSON], body).await;
    assert_rule(&reply, 400, "body.malformed");
    let detail = reply.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("duplicate member name \"name\""),
        "{detail}"
    );
}

#[tokio::test]
async fn schema_violations_are_400_listing_every_one() {
    let s = setup().await;
    let reply = post(
        &s,
        "/users/echo",
        &[JSON],
        r#"{"name": 42, "email": "not-an-email", "age": -1, "admin": true}"#,
    )
    .await;
    assert_rule(&reply, 400, "body.schema");
    let errors = violations(&reply);
    let pointers: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(pointers, ["", "/age", "/email", "/name"], "{errors:?}");
    assert!(errors[0].1.contains("'admin'"), "{errors:?}");
    assert!(errors[1].1.contains("minimum of 0"), "{errors:?}");
    assert!(errors[2].1.contains("\"email\""), "{errors:?}");
    assert!(errors[3].1.contains("\"string\""), "{errors:?}");
}

#[tokio::test]
async fn missing_required_members_are_each_listed_at_the_object() {
    let s = setup().await;
    let reply = post(&s, "/users/echo", &[JSON], r#"{"age": 3}"#).await;
    assert_rule(&reply, 400, "body.schema");
    assert_eq!(
        violations(&reply),
        [
            (String::new(), "\"email\" is a required property".to_owned()),
            (String::new(), "\"name\" is a required property".to_owned()),
        ]
    );
    // The root itself of the wrong type: one violation at "".
    let reply = post(&s, "/users/echo", &[JSON], "[1, 2]").await;
    assert_rule(&reply, 400, "body.schema");
    let errors = violations(&reply);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "");
}

#[tokio::test]
async fn a_body_over_max_body_bytes_is_413() {
    let s = setup().await;
    let big = format!(
        r#"{{"name": "{}", "email": "ada@example.com"}}"#,
        "a".repeat(MAX_BODY_BYTES)
    );
    let reply = post(&s, "/users/echo", &[JSON], &big).await;
    assert_rule(&reply, 413, "body.too_large");
    // Without a Content-Length the limit holds while reading.
    let half = big.len() / 2;
    let (status, problem) = post_chunked(
        &s,
        "/users/echo",
        "application/json",
        &[&big[..half], &big[half..]],
    )
    .await;
    assert_eq!(status, 413, "{problem}");
    assert_eq!(problem["type"], "tag:candor.dev,2026:rule/body.too_large");
}

#[tokio::test]
async fn a_route_without_a_schema_streams_any_body_as_before() {
    let s = setup().await;
    let reply = post(
        &s,
        "/plain/echo",
        &[("content-type", "text/plain")],
        "not { json",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["body"], "not { json");
    let reply = post(&s, "/plain/echo", &[], "").await;
    assert_eq!(reply.status, 200);
    let big = "a".repeat(MAX_BODY_BYTES + 1);
    let reply = post(&s, "/plain/echo", &[], &big).await;
    assert_rule(&reply, 413, "body.too_large");
}

#[tokio::test]
async fn a_get_without_a_body_passes_a_schema_route() {
    let s = setup().await;
    let reply = get(s.gw.addr(), "/users/echo").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["method"], "GET");
    // Some clients label even an empty GET as JSON.
    let reply = send(s.gw.addr(), Method::GET, "/users/echo", &[JSON], "").await;
    assert_eq!(reply.status, 200);
    // A GET that does carry a body is checked like any other.
    let reply = send(s.gw.addr(), Method::GET, "/users/echo", &[JSON], "{}").await;
    assert_rule(&reply, 400, "body.schema");
}

fn hs256(claims: Value) -> String {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn authentication_comes_before_the_body() {
    let s = setup().await;
    // No credentials and a body that breaks every body rule: 401, unread.
    let reply = post(
        &s,
        "/secure/echo",
        &[("content-type", "text/plain")],
        "{oops",
    )
    .await;
    assert_rule(&reply, 401, "auth.missing");
    let reply = post(&s, "/secure/echo", &[JSON], "{oops").await;
    assert_rule(&reply, 401, "auth.missing");
    // Authenticated, the body rules apply.
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let auth = format!("Bearer {}", hs256(json!({"sub": "ada", "exp": exp})));
    let reply = post(
        &s,
        "/secure/echo",
        &[JSON, ("authorization", &auth)],
        "{oops",
    )
    .await;
    assert_rule(&reply, 400, "body.malformed");
    let body = r#"{"name": "Ada", "email": "ada@example.com"}"#;
    let reply = post(&s, "/secure/echo", &[JSON, ("authorization", &auth)], body).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["body"], body);
}

// Configuration errors of `request_schema`.

const ROUTE_LINE: usize = 5;

/// Loads a config whose only route (its `request_schema` on line 5) names
/// `schema`, with `files` written beside the config first.
fn load_with(schema: &str, files: &[(&str, &str)], retired: bool) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let target = if retired {
        "retired = {}"
    } else {
        "upstream = \"svc\""
    };
    let toml = format!(
        "[upstreams.svc]\ntargets = [\"127.0.0.1:9001\"]\n[[routes]]\npath = \"/users\"\n\
         request_schema = \"{schema}\"\n{target}\n"
    );
    let origin = dir.path().join("gw.toml");
    match load_str(&toml, &origin, &|_| None) {
        Ok(config) => {
            let doc = config.routes[0].request_schema.as_ref().expect("a schema");
            assert_eq!(doc.path, dir.path().join(schema));
            Ok(())
        }
        Err(e) => {
            let prefix = format!(
                "{}:{ROUTE_LINE}: routes[0].request_schema: ",
                origin.display()
            );
            let message = e.to_string();
            let rest = message
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{message:?} does not start with {prefix:?}"));
            Err(rest.to_owned())
        }
    }
}

fn refused(schema: &str, files: &[(&str, &str)]) -> String {
    load_with(schema, files, false).expect_err("accepted")
}

#[test]
fn a_schema_path_is_read_relative_to_the_config_file() {
    assert_eq!(
        load_with("user.json", &[("user.json", NEW_USER)], false),
        Ok(())
    );
    let dir = schema_dir();
    let config = load_str(
        "[upstreams.svc]\ntargets = [\"127.0.0.1:9001\"]\n[[routes]]\npath = \"/users\"\n\
         upstream = \"svc\"\nrequest_schema = \"schemas/new-user.json\"\n",
        &dir.path().join("gw.toml"),
        &|_| None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let doc = config.routes[0].request_schema.as_ref().unwrap();
    assert_eq!(doc.json, serde_json::from_str::<Value>(NEW_USER).unwrap());
}

#[test]
fn a_missing_schema_file_is_refused() {
    let why = refused("nope.json", &[]);
    assert!(why.contains("nope.json\" cannot be opened"), "{why}");
}

#[test]
fn a_schema_that_is_not_json_is_refused_with_the_json_error() {
    let why = refused("bad.json", &[("bad.json", "{\n  \"type\": object\n}")]);
    assert!(
        why.contains("bad.json\" is not JSON: expected value at line 2 column 11"),
        "{why}"
    );
}

#[test]
fn an_invalid_schema_is_refused_with_the_validators_message() {
    let why = refused("bad.json", &[("bad.json", r#"{"type": "strnig"}"#)]);
    assert!(
        why.contains("bad.json\" is not a usable JSON Schema: "),
        "{why}"
    );
    assert!(why.contains("(at /type)"), "{why}");
    let why = refused("bad.json", &[("bad.json", r#"{"minLength": -1}"#)]);
    assert!(why.contains("is not a usable JSON Schema"), "{why}");
}

#[test]
fn an_unknown_format_is_refused_rather_than_ignored() {
    let why = refused("f.json", &[("f.json", r#"{"format": "emial"}"#)]);
    assert!(why.contains("Unknown format: 'emial'"), "{why}");
}

#[test]
fn references_outside_the_document_are_refused_never_fetched() {
    for reference in [
        "https://example.com/user.json",
        "other.json",
        "file:///etc/passwd",
    ] {
        let schema = format!(r#"{{"$ref": "{reference}"}}"#);
        let why = refused("r.json", &[("r.json", &schema), ("other.json", "{}")]);
        assert!(
            why.contains("is not a usable JSON Schema"),
            "{reference}: {why}"
        );
    }
    // A reference inside the document is fine.
    let local = r##"{"$defs": {"name": {"type": "string"}}, "properties": {"name": {"$ref": "#/$defs/name"}}}"##;
    assert_eq!(load_with("l.json", &[("l.json", local)], false), Ok(()));
}

#[test]
fn a_retired_route_with_a_schema_is_refused() {
    let why = load_with("user.json", &[("user.json", NEW_USER)], true).expect_err("accepted");
    assert!(why.contains("retired"), "{why}");
}

#[test]
fn schema_files_resolve_against_the_config_directory_not_the_cwd() {
    let dir = schema_dir();
    let toml = "[upstreams.svc]\ntargets = [\"127.0.0.1:9001\"]\n[[routes]]\npath = \"/u\"\n\
                upstream = \"svc\"\nrequest_schema = \"schemas/new-user.json\"\n";
    assert!(load_str(toml, &dir.path().join("gw.toml"), &|_| None).is_ok());
    assert!(load_str(toml, Path::new("elsewhere/gw.toml"), &|_| None).is_err());
}

#[tokio::test]
async fn the_example_schema_loads_and_checks_bodies() {
    let (faults, _handle) = faults().await;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let toml = format!(
        "{GATEWAY_TABLE}listen = \"127.0.0.1:0\"\naccess_log = false\n[upstreams.svc]\n\
         targets = [\"{faults}\"]\n[[routes]]\npath = \"/users/{{*rest}}\"\nupstream = \"svc\"\n\
         request_schema = \"schemas/new-user.json\"\n"
    );
    let config =
        load_str(&toml, &examples.join("gw.toml"), &|_| None).unwrap_or_else(|e| panic!("{e}"));
    let gw = Gateway::start(config, StartOptions::default())
        .await
        .expect("gateway starts");
    let ok = r#"{"name": "Ada", "email": "ada@example.com", "roles": ["admin"]}"#;
    let reply = send(gw.addr(), Method::POST, "/users/echo", &[JSON], ok).await;
    assert_eq!(reply.status, 200);
    let bad = r#"{"name": "Ada", "email": "ada@example.com", "birth_date": "1815-13-10", "roles": ["root"]}"#;
    let reply = send(gw.addr(), Method::POST, "/users/echo", &[JSON], bad).await;
    assert_rule(&reply, 400, "body.schema");
    let pointers: Vec<String> = violations(&reply).into_iter().map(|(p, _)| p).collect();
    assert_eq!(pointers, ["/birth_date", "/roles/0"]);
}
