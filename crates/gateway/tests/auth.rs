//! contract.md section 1, auth and authz rows: 401 with the right
//! challenge, 400 for malformed credentials, 403 with insufficient_scope,
//! and concealment indistinguishable from an unknown route.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use candor_gateway::{Gateway, StartOptions};
use http::Method;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;
use support::*;

const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";
const API_KEY: &str = "key-for-the-reporting-service";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hs256(claims: serde_json::Value, secret: &str) -> String {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn claims(roles: &[&str]) -> serde_json::Value {
    json!({"sub": "ada", "roles": roles, "iss": "https://id.example", "aud": "api", "exp": now() + 600})
}

fn sha256_hex(s: &str) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Setup {
    gw: Gateway,
    _faults: candor_faults::FaultsHandle,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let (faults, handle) = faults().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("keys.toml"),
        format!(
            "[[keys]]\nsha256 = \"{}\"\nsubject = \"reporting\"\nroles = [\"reports\"]\n",
            sha256_hex(API_KEY)
        ),
    )
    .unwrap();
    let toml = format!(
        r#"{GATEWAY_TABLE}listen = "127.0.0.1:0"
access_log = false

[auth.jwt]
algorithms = ["HS256"]
secret = "{SECRET}"
issuer = "https://id.example"
audience = "api"
leeway = "0s"

[auth.api_keys]
header = "X-API-Key"
file = "keys.toml"

[upstreams.svc]
targets = ["{faults}"]

[[routes]]
path = "/jwt/{{*rest}}"
upstream = "svc"
auth = "jwt"

[[routes]]
path = "/key/{{*rest}}"
upstream = "svc"
auth = "api_key"

[[routes]]
path = "/any/{{*rest}}"
upstream = "svc"
auth = "any"

[[routes]]
path = "/admin/{{*rest}}"
upstream = "svc"
auth = "any"
roles = ["admin"]

[[routes]]
path = "/secret/{{*rest}}"
upstream = "svc"
auth = "jwt"
roles = ["admin"]
conceal = true

[[routes]]
path = "/open/{{*rest}}"
upstream = "svc"
"#
    );
    let config = candor_gateway::config::load_str(&toml, &dir.path().join("gw.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    let gw = Gateway::start(config, StartOptions::default())
        .await
        .unwrap();
    Setup {
        gw,
        _faults: handle,
        _dir: dir,
    }
}

async fn call(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> Reply {
    send(gw.addr(), Method::GET, path, headers, "").await
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn missing_credentials_get_401_with_the_routes_challenge_and_no_error_code() {
    let s = setup().await;
    let jwt = call(&s.gw, "/jwt/echo", &[]).await;
    assert_rule(&jwt, 401, "auth.missing");
    assert_eq!(jwt.header("www-authenticate"), Some("Bearer realm=\"api\""));
    let key = call(&s.gw, "/key/echo", &[]).await;
    assert_eq!(
        key.header("www-authenticate"),
        Some("ApiKey realm=\"api\", header=\"X-API-Key\"")
    );
    let any = call(&s.gw, "/any/echo", &[]).await;
    assert_eq!(
        any.header("www-authenticate"),
        Some("Bearer realm=\"api\", ApiKey realm=\"api\", header=\"X-API-Key\"")
    );
    // A scheme the route does not take counts as no credentials.
    let basic = call(&s.gw, "/jwt/echo", &[("authorization", "Basic YWRhOnB3")]).await;
    assert_rule(&basic, 401, "auth.missing");
}

#[tokio::test]
async fn invalid_tokens_get_401_invalid_token_saying_why() {
    let s = setup().await;
    let cases = [
        (
            hs256(
                json!({"sub": "a", "iss": "https://id.example", "aud": "api", "exp": now() - 60}),
                SECRET,
            ),
            "token expired",
        ),
        (
            hs256(claims(&[]), "another-secret-that-is-also-32-bytes-long!"),
            "bad signature",
        ),
        (
            hs256(
                json!({"sub": "a", "iss": "https://id.example", "aud": "other", "exp": now() + 60}),
                SECRET,
            ),
            "wrong audience",
        ),
        (
            hs256(
                json!({"sub": "a", "iss": "https://evil.example", "aud": "api", "exp": now() + 60}),
                SECRET,
            ),
            "wrong issuer",
        ),
        (
            hs256(
                json!({"sub": "a", "iss": "https://id.example", "aud": "api", "exp": now() + 600, "nbf": now() + 300}),
                SECRET,
            ),
            "token not yet valid",
        ),
        ("not.a.token".to_owned(), "malformed token"),
    ];
    for (token, why) in cases {
        let reply = call(&s.gw, "/jwt/echo", &[("authorization", &bearer(&token))]).await;
        assert_rule(&reply, 401, "auth.invalid");
        assert_eq!(
            reply.header("www-authenticate"),
            Some(
                format!(
                    "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"{why}\""
                )
                .as_str()
            ),
        );
    }
    // alg=none is never accepted.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(&["admin"]).to_string());
    let none = format!("{header}.{payload}.");
    let reply = call(&s.gw, "/jwt/echo", &[("authorization", &bearer(&none))]).await;
    assert_rule(&reply, 401, "auth.invalid");

    let key = call(&s.gw, "/key/echo", &[("x-api-key", "wrong-key")]).await;
    assert_rule(&key, 401, "auth.invalid");
    assert_eq!(
        key.header("www-authenticate"),
        Some(
            "ApiKey realm=\"api\", header=\"X-API-Key\", error=\"invalid_token\", error_description=\"unknown API key\""
        )
    );
}

fn assert_invalid_token(reply: &Reply, why: &str) {
    assert_rule(reply, 401, "auth.invalid");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(
            format!("Bearer realm=\"api\", error=\"invalid_token\", error_description=\"{why}\"")
                .as_str()
        ),
    );
}

#[tokio::test]
async fn a_configured_issuer_and_audience_are_required_claims() {
    let s = setup().await;
    let no_iss = hs256(
        json!({"sub": "a", "aud": "api", "exp": now() + 600}),
        SECRET,
    );
    let reply = call(&s.gw, "/jwt/echo", &[("authorization", &bearer(&no_iss))]).await;
    assert_invalid_token(&reply, "token has no iss claim");
    let no_aud = hs256(
        json!({"sub": "a", "iss": "https://id.example", "exp": now() + 600}),
        SECRET,
    );
    let reply = call(&s.gw, "/jwt/echo", &[("authorization", &bearer(&no_aud))]).await;
    assert_invalid_token(&reply, "token has no aud claim");
    let no_exp = hs256(
        json!({"sub": "a", "iss": "https://id.example", "aud": "api"}),
        SECRET,
    );
    let reply = call(&s.gw, "/jwt/echo", &[("authorization", &bearer(&no_exp))]).await;
    assert_invalid_token(&reply, "token has no exp claim");
    // An audience list that names the configured one is still accepted.
    let listed = hs256(
        json!({"sub": "a", "iss": "https://id.example", "aud": ["other", "api"], "exp": now() + 600}),
        SECRET,
    );
    let reply = call(&s.gw, "/jwt/echo", &[("authorization", &bearer(&listed))]).await;
    assert_eq!(reply.status.as_u16(), 200);
}

#[tokio::test]
async fn a_token_with_a_crit_header_is_refused() {
    let s = setup().await;
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let signed = |header: &Header| {
        encode(
            header,
            &claims(&["admin"]),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    let plain = signed(&Header::new(Algorithm::HS256));
    let reply = call(&s.gw, "/jwt/echo", &[("authorization", &bearer(&plain))]).await;
    assert_eq!(reply.status.as_u16(), 200);
    // An extension the gateway does not implement, a registered header
    // parameter (which crit must not name) and the empty list.
    let mut extension = Header::new(Algorithm::HS256);
    extension.crit = Some(vec!["b64".into()]);
    extension.extras.insert("b64", false);
    let mut registered = Header::new(Algorithm::HS256);
    registered.crit = Some(vec!["alg".into()]);
    let mut empty = Header::new(Algorithm::HS256);
    empty.crit = Some(Vec::new());
    for header in [extension, registered, empty] {
        let token = signed(&header);
        let reply = call(&s.gw, "/jwt/echo", &[("authorization", &bearer(&token))]).await;
        assert_invalid_token(&reply, "unsupported critical header extension");
    }
}

#[tokio::test]
async fn malformed_credentials_get_400_invalid_request() {
    let s = setup().await;
    let empty = call(&s.gw, "/jwt/echo", &[("authorization", "Bearer ")]).await;
    assert_rule(&empty, 400, "auth.bad_request");
    assert!(
        empty
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_request\"")
    );
    let token = hs256(claims(&[]), SECRET);
    let two = call(
        &s.gw,
        "/jwt/echo",
        &[
            ("authorization", &bearer(&token)),
            ("authorization", &bearer(&token)),
        ],
    )
    .await;
    assert_rule(&two, 400, "auth.bad_request");
    let both = call(
        &s.gw,
        "/any/echo",
        &[("authorization", &bearer(&token)), ("x-api-key", API_KEY)],
    )
    .await;
    assert_rule(&both, 400, "auth.bad_request");
}

#[tokio::test]
async fn valid_credentials_reach_the_upstream_with_identity_headers_only_from_the_gateway() {
    let s = setup().await;
    let token = hs256(
        json!({"sub": "ada", "roles": ["user"], "scope": "read write", "iss": "https://id.example", "aud": "api", "exp": now() + 600}),
        SECRET,
    );
    let reply = call(
        &s.gw,
        "/jwt/echo",
        &[
            ("authorization", &bearer(&token)),
            ("x-auth-roles", "admin"),
        ],
    )
    .await;
    assert_eq!(reply.status.as_u16(), 200);
    let headers = &reply.json()["headers"];
    assert_eq!(headers["x-auth-subject"], "ada");
    assert_eq!(headers["x-auth-roles"], "user,read,write");

    let key = call(&s.gw, "/key/echo", &[("x-api-key", API_KEY)]).await;
    assert_eq!(key.status.as_u16(), 200);
    assert_eq!(key.json()["headers"]["x-auth-subject"], "reporting");

    let open = call(&s.gw, "/open/echo", &[("x-auth-subject", "forged")]).await;
    assert!(
        open.json()["headers"].get("x-auth-subject").is_none(),
        "client-sent identity is stripped"
    );
}

#[tokio::test]
async fn missing_roles_get_403_insufficient_scope() {
    let s = setup().await;
    let user = hs256(claims(&["user"]), SECRET);
    let reply = call(&s.gw, "/admin/echo", &[("authorization", &bearer(&user))]).await;
    assert_rule(&reply, 403, "authz.denied");
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"admin\"")
    );
    assert_eq!(reply.json()["reason"], "insufficient_permissions");
    // An API key without the role: 403 too.
    let key = call(&s.gw, "/admin/echo", &[("x-api-key", API_KEY)]).await;
    assert_rule(&key, 403, "authz.denied");

    let admin = hs256(claims(&["admin"]), SECRET);
    assert_eq!(
        call(&s.gw, "/admin/echo", &[("authorization", &bearer(&admin))])
            .await
            .status
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn concealed_denials_are_indistinguishable_from_unknown_routes() {
    let s = setup().await;
    let user = hs256(claims(&["user"]), SECRET);
    let id = [("x-request-id", "same-id")];
    let concealed = call(
        &s.gw,
        "/secret/x",
        &[("authorization", &bearer(&user)), id[0]],
    )
    .await;
    // A path of the same length, so that even Content-Length matches.
    let unknown = call(
        &s.gw,
        "/absent/x",
        &[("authorization", &bearer(&user)), id[0]],
    )
    .await;
    assert_eq!(concealed.status.as_u16(), 404);
    assert_eq!(concealed.status, unknown.status);
    let without_date = |h: &http::HeaderMap| {
        let mut h = h.clone();
        h.remove("date");
        h
    };
    assert_eq!(
        without_date(&concealed.headers),
        without_date(&unknown.headers),
        "same headers"
    );
    let (mut a, mut b) = (concealed.json(), unknown.json());
    a["detail"] = json!(null);
    b["detail"] = json!(null);
    assert_eq!(a, b, "same body shape");
    assert_eq!(concealed.body.len(), unknown.body.len());
    // Without credentials a concealed route still says 401, like every protected route.
    assert_rule(&call(&s.gw, "/secret/x", &[]).await, 401, "auth.missing");
}

#[tokio::test]
async fn es256_tokens_are_verified_through_a_jwks_file() {
    let (faults, _h) = faults().await;
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = key.public_key_raw();
    let (x, y) = (&raw[1..33], &raw[33..65]);
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}]});
    std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).unwrap();
    let toml = format!(
        "{GATEWAY_TABLE}listen = \"127.0.0.1:0\"\naccess_log = false\n[auth.jwt]\nalgorithms = [\"ES256\"]\njwks_file = \"jwks.json\"\n\
         [upstreams.svc]\ntargets = [\"{faults}\"]\n[[routes]]\npath = \"/{{*rest}}\"\nupstream = \"svc\"\nauth = \"jwt\"\n"
    );
    let config = candor_gateway::config::load_str(&toml, &dir.path().join("gw.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("{e}"));
    let gw = Gateway::start(config, StartOptions::default())
        .await
        .unwrap();

    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    let signing = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    let token = encode(
        &header,
        &json!({"sub": "svc", "exp": now() + 600}),
        &signing,
    )
    .unwrap();
    let ok = call(&gw, "/echo", &[("authorization", &bearer(&token))]).await;
    assert_eq!(ok.status.as_u16(), 200);
    assert_eq!(ok.json()["headers"]["x-auth-subject"], "svc");

    header.kid = Some("k2".into());
    let unknown_kid = encode(
        &header,
        &json!({"sub": "svc", "exp": now() + 600}),
        &signing,
    )
    .unwrap();
    let reply = call(&gw, "/echo", &[("authorization", &bearer(&unknown_kid))]).await;
    assert_rule(&reply, 401, "auth.invalid");
    // An HS256 token is refused on an ES256 route (no algorithm confusion).
    let confused = hs256(json!({"sub": "svc", "exp": now() + 600}), SECRET);
    let header = jsonwebtoken::decode_header(&confused).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("k1".into());
    let confused = encode(
        &h,
        &json!({"sub": "svc", "exp": now() + 600}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_rule(
        &call(&gw, "/echo", &[("authorization", &bearer(&confused))]).await,
        401,
        "auth.invalid",
    );
}

#[tokio::test]
async fn a_verified_token_is_not_reused_after_the_secret_changes() {
    let (faults, _h) = faults().await;
    let dir = tempfile::tempdir().unwrap();
    let config_with = |secret: &str| {
        let toml = format!(
            "{GATEWAY_TABLE}listen = \"127.0.0.1:0\"\naccess_log = false\n[auth.jwt]\nalgorithms = [\"HS256\"]\nsecret = \"{secret}\"\n\
             [upstreams.svc]\ntargets = [\"{faults}\"]\n[[routes]]\npath = \"/{{*rest}}\"\nupstream = \"svc\"\nauth = \"jwt\"\n"
        );
        candor_gateway::config::load_str(&toml, &dir.path().join("gw.toml"), &|_| None).unwrap()
    };
    let gw = Gateway::start(config_with(SECRET), StartOptions::default())
        .await
        .unwrap();
    let token = hs256(json!({"sub": "ada", "exp": now() + 600}), SECRET);
    for _ in 0..4 {
        // Repeated: served from the verified-token cache on every worker.
        assert_eq!(
            call(&gw, "/ok", &[("authorization", &bearer(&token))])
                .await
                .status
                .as_u16(),
            200
        );
    }
    gw.reload(config_with("a-rotated-secret-that-is-also-32-bytes-long"))
        .unwrap();
    for _ in 0..4 {
        let reply = call(&gw, "/ok", &[("authorization", &bearer(&token))]).await;
        assert_rule(&reply, 401, "auth.invalid");
    }
}
