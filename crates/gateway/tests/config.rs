//! The configuration loader: the shipped examples, every validation error
//! with its `FILE:LINE: KEY:` prefix, `${VAR}` expansion, and the files that
//! `[auth]` reads (JWKS, API keys).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use candor_gateway::config::{
    Action, ApiKey, ApiKeys, Auth, Config, ConfigError, Deprecation, Gateway, Jwt, JwtKey,
    Maintenance, Repair, Route, RouteAuth, Upstream, load_file, load_str,
};
use http::Method;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(text: &str) -> Result<Config, ConfigError> {
    load_str(text, Path::new("gw.toml"), &no_env)
}

/// The error message for `text`, which must be refused.
fn refused(text: &str) -> String {
    match load(text) {
        Ok(config) => panic!("accepted: {config:#?}"),
        Err(error) => error.to_string(),
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

const UPSTREAM: &str = "[upstreams.accounts]\ntargets = [\"127.0.0.1:9001\"]\n";

/// `UPSTREAM` followed by `rest`; `rest` starts at line 3.
fn with_upstream(rest: &str) -> String {
    format!("{UPSTREAM}{rest}")
}

#[test]
fn minimal_example_is_the_defaults_plus_one_route() {
    let file = examples().join("minimal.toml");
    let config = load_file(&file).unwrap();
    let expected = Config {
        gateway: Gateway {
            listen: "127.0.0.1:8080".parse().unwrap(),
            admin_listen: None,
            realm: "api".to_owned(),
            debug_headers: true,
            max_concurrent_requests: 10_000,
            max_body_bytes: 1_048_576,
            max_header_bytes: 16_384,
            max_uri_bytes: 8_192,
            keep_encoded_slashes: false,
            body_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(75),
            header_timeout: Duration::from_secs(30),
            max_connections: None,
            workers: 0,
            tls: None,
            access_log: true,
            access_log_path: None,
            direct_path: true,
            maintenance: None,
        },
        auth: Auth::default(),
        upstreams: BTreeMap::from([(
            "app".to_owned(),
            Arc::new(Upstream {
                name: "app".to_owned(),
                targets: vec!["127.0.0.1:9001".to_owned()],
                connect_timeout: Duration::from_secs(1),
                response_timeout: Duration::from_secs(15),
                pool_idle_timeout: Duration::from_secs(4),
                eject_after: 3,
                eject_for: Duration::from_secs(10),
                monitor: false,
                monitor_body_bytes: 65_536,
                repair: Repair::default(),
                tls: None,
            }),
        )]),
        routes: vec![Route {
            path: "/api/{*rest}".to_owned(),
            methods: None,
            action: Action::Proxy {
                upstream: "app".to_owned(),
            },
            deprecated: None,
            maintenance: None,
            debug_headers: None,
            auth: RouteAuth::None,
            roles: vec![],
            conceal: false,
            request_schema: None,
            rate_limit: None,
            strip_prefix: None,
            add_prefix: None,
            request_headers: None,
            response_headers: None,
            cors: None,
            line: Some(10),
        }],
        rate_limits: BTreeMap::new(),
        traces: None,
    };
    assert_eq!(config, expected);
}

#[test]
fn reference_example_sets_every_key() {
    let config = load_file(&examples().join("gateway.toml")).unwrap();
    let g = &config.gateway;
    assert_eq!(g.admin_listen, Some("127.0.0.1:9901".parse().unwrap()));
    assert_eq!(g.max_body_bytes, 1_048_576);
    assert_eq!(g.tls, None);
    assert_eq!(g.maintenance, None);

    let accounts = &config.upstreams["accounts"];
    assert_eq!(accounts.targets, ["127.0.0.1:9001", "127.0.0.1:9002"]);
    assert_eq!(accounts.response_timeout, Duration::from_secs(5));
    assert!(accounts.monitor);
    assert_eq!(
        accounts.repair,
        Repair {
            challenge: true,
            retry_after: true
        }
    );
    assert!(!config.upstreams["reports"].monitor);

    // Each route remembers the line of its `[[routes]]` header.
    let text = std::fs::read_to_string(examples().join("gateway.toml")).unwrap();
    let headers: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == "[[routes]]")
        .map(|(i, _)| i + 1)
        .collect();
    let lines: Vec<_> = config.routes.iter().map(|r| r.line.unwrap()).collect();
    assert_eq!(lines, headers);
    assert_eq!(
        config.routes[0].methods,
        Some(vec![Method::GET, Method::DELETE])
    );
    assert_eq!(config.routes[1].debug_headers, Some(false));
    assert_eq!(
        config.routes[3].action,
        Action::Retired {
            successor: Some("/docs/v2".to_owned())
        }
    );
    assert_eq!(config.routes[4].action, Action::Retired { successor: None });
    assert_eq!(
        config.routes[5].deprecated,
        Some(Deprecation {
            since: Some(at(1_767_225_600)),
            sunset: Some(at(1_814_313_600)),
            link: Some("https://example.com/migrate".to_owned()),
        })
    );
}

#[test]
fn every_shipped_example_loads() {
    let mut checked = 0;
    for entry in std::fs::read_dir(examples()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            if let Err(error) = load_file(&path) {
                panic!("{error}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 2);
}

#[test]
fn an_empty_file_is_a_gateway_with_no_routes() {
    let config = load("").unwrap();
    assert!(config.upstreams.is_empty());
    assert!(config.routes.is_empty());
    assert_eq!(config.gateway.listen, "127.0.0.1:8080".parse().unwrap());
}

#[test]
fn route_options_reach_the_model() {
    let config = load(&with_upstream(
        r#"
[[routes]]
path = "/reports/{*rest}"
methods = ["get", "Post", "PURGE"]
upstream = "accounts"
debug_headers = false
deprecated = { sunset = "2027-06-30T00:00:00Z" }
maintenance = { from = "2026-12-01T05:00:00Z", until = "2026-12-01T06:00:00Z" }
"#,
    ))
    .unwrap();
    let route = &config.routes[0];
    assert_eq!(route.line, Some(4));
    assert_eq!(
        route.methods,
        Some(vec![
            Method::GET,
            Method::POST,
            Method::from_bytes(b"PURGE").unwrap()
        ])
    );
    assert_eq!(route.debug_headers, Some(false));
    assert_eq!(
        route.deprecated,
        Some(Deprecation {
            since: None,
            sunset: Some(at(1_814_313_600)),
            link: None
        })
    );
    assert_eq!(
        route.maintenance,
        Some(Maintenance {
            from: Some(at(1_796_101_200)),
            until: at(1_796_104_800)
        })
    );
}

#[test]
fn unquoted_toml_dates_are_accepted_too() {
    let config = load("[gateway]\nmaintenance = { until = 2026-12-01T06:00:00Z }\n").unwrap();
    assert_eq!(config.gateway.maintenance.unwrap().until, at(1_796_104_800));
    assert_eq!(
        refused("[gateway]\nmaintenance = { until = 2026-12-01T06:00:00 }\n"),
        "gw.toml:2: gateway.maintenance.until: invalid date \"2026-12-01T06:00:00\": missing the \
         offset: end with Z or +hh:mm; expected RFC 3339, e.g. 2026-12-01T06:00:00Z"
    );
}

#[test]
fn same_path_routes_with_disjoint_methods_are_allowed() {
    let config = load(&with_upstream(
        r#"
[[routes]]
path = "/users/{id}"
methods = ["GET"]
upstream = "accounts"

[[routes]]
path = "/users/{id}"
methods = ["DELETE"]
retired = {}
"#,
    ))
    .unwrap();
    assert_eq!(config.routes.len(), 2);
    assert_eq!(config.routes[1].line, Some(9));
}

// ---- errors: syntax and structure ----

#[test]
fn syntax_errors_name_the_line() {
    assert_eq!(
        refused("[gateway]\nlisten = \"a\"\nlisten = \"b\"\n"),
        "gw.toml:3: duplicate key `listen`"
    );
    let unterminated = refused("[gateway]\nrealm = \"api\n");
    assert!(unterminated.starts_with("gw.toml:2: "), "{unterminated}");
}

#[test]
fn unknown_top_level_key_is_named() {
    assert_eq!(
        refused("\n\nbogus = 1\n"),
        "gw.toml:3: bogus: unknown field `bogus`, expected one of `gateway`, `auth`, `upstreams`, \
         `routes`, `rate_limits`, `traces`"
    );
}

#[test]
fn unknown_nested_keys_are_named() {
    assert_eq!(
        refused("[upstreams.a]\ntargets = [\"127.0.0.1:9001\"]\nconect_timeout = \"1s\"\n"),
        "gw.toml:3: upstreams.a.conect_timeout: unknown field `conect_timeout`, expected one of \
         `targets`, `connect_timeout`, `response_timeout`, `pool_idle_timeout`, `eject_after`, \
         `eject_for`, `monitor`, `monitor_body_bytes`, `repair`, `tls`"
    );
    assert_eq!(
        refused("[gateway]\nlisten = \"127.0.0.1:8080\"\nlisen = \"127.0.0.1:8081\"\n"),
        format!(
            "gw.toml:3: gateway.lisen: unknown field `lisen`, expected one of {}",
            "`listen`, `admin_listen`, `realm`, `debug_headers`, `max_concurrent_requests`, \
             `max_body_bytes`, `max_header_bytes`, `max_uri_bytes`, `keep_encoded_slashes`, \
             `body_timeout`, `shutdown_grace`, `idle_timeout`, `header_timeout`, \
             `max_connections`, `workers`, `access_log`, `access_log_path`, `direct_path`, `tls`, `maintenance`"
        )
    );
    assert_eq!(
        refused(
            "[[routes]]\npath = \"/old\"\nretired = { successor = \"/new\", when = \"now\" }\n"
        ),
        "gw.toml:3: routes[0].retired.when: unknown field `when`, expected `successor`"
    );
}

#[test]
fn missing_and_mistyped_keys_are_named() {
    assert_eq!(
        refused("\n[upstreams.a]\nconnect_timeout = \"1s\"\n"),
        "gw.toml:2: upstreams.a: missing field `targets`"
    );
    assert_eq!(
        refused(&with_upstream("[[routes]]\nupstream = \"accounts\"\n")),
        "gw.toml:3: routes[0]: missing field `path`"
    );
    assert_eq!(
        refused("[gateway]\nmax_body_bytes = \"1MB\"\n"),
        "gw.toml:2: gateway.max_body_bytes: invalid type: string \"1MB\", expected an integer"
    );
    assert_eq!(
        refused("[gateway]\nmax_body_bytes = 99999999999999999999\n"),
        "gw.toml:2: gateway.max_body_bytes: 99999999999999999999 is too large"
    );
    assert_eq!(
        refused("[gateway]\nmax_body_bytes = 1.5\n"),
        "gw.toml:2: gateway.max_body_bytes: invalid type: floating point `1.5`, expected an integer"
    );
    assert_eq!(
        refused("[gateway]\nrealm = { name = \"api\" }\n"),
        "gw.toml:2: gateway.realm: invalid type: table, expected a string"
    );
    assert_eq!(
        refused("[gateway]\naccess_log = \"yes\"\n"),
        "gw.toml:2: gateway.access_log: invalid type: string \"yes\", expected a boolean"
    );
    assert_eq!(
        refused("[upstreams.a]\ntargets = \"127.0.0.1:9001\"\n"),
        "gw.toml:2: upstreams.a.targets: invalid type: string \"127.0.0.1:9001\", expected an array"
    );
    assert_eq!(
        refused("[[routes]]\npath = \"/old\"\nretired = true\n"),
        "gw.toml:3: routes[0].retired: invalid type: boolean `true`, expected a table like \
         { successor = \"/v2\" } (or {} without a successor)"
    );
}

// ---- errors: gateway ----

#[test]
fn listen_addresses_must_parse_and_differ() {
    assert_eq!(
        refused("[gateway]\nlisten = \"localhost:8080\"\n"),
        "gw.toml:2: gateway.listen: invalid address \"localhost:8080\": expected IP:port, e.g. \
         127.0.0.1:8080"
    );
    assert_eq!(
        refused("[gateway]\nadmin_listen = \"127.0.0.1:8080\"\n"),
        "gw.toml:2: gateway.admin_listen: 127.0.0.1:8080 is also gateway.listen; the admin \
         listener needs its own address"
    );
    // Port 0 picks a free port for each listener: fine for tests.
    let config = load("[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n");
    assert!(config.is_ok());
}

#[test]
fn client_connection_limits_are_checked_and_have_defaults() {
    let config = load(
        "[gateway]\nidle_timeout = \"5s\"\nheader_timeout = \"250ms\"\nmax_connections = 512\n",
    )
    .unwrap();
    assert_eq!(config.gateway.idle_timeout, Duration::from_secs(5));
    assert_eq!(config.gateway.header_timeout, Duration::from_millis(250));
    assert_eq!(config.gateway.max_connections, Some(512));
    assert_eq!(
        refused("[gateway]\nidle_timeout = \"0s\"\n"),
        "gw.toml:2: gateway.idle_timeout: must be greater than 0"
    );
    assert_eq!(
        refused("[gateway]\n\nheader_timeout = \"soon\"\n"),
        "gw.toml:3: gateway.header_timeout: invalid duration \"soon\": expected a number \
         followed by ms, s, m or h"
    );
    assert_eq!(
        refused("[gateway]\nmax_connections = 0\n"),
        "gw.toml:2: gateway.max_connections: must be greater than 0, not 0"
    );
}

#[test]
fn numeric_limits_must_be_positive() {
    assert_eq!(
        refused("[gateway]\nmax_concurrent_requests = 0\n"),
        "gw.toml:2: gateway.max_concurrent_requests: must be greater than 0, not 0"
    );
    assert_eq!(
        refused("[gateway]\n\nmax_header_bytes = -1\n"),
        "gw.toml:3: gateway.max_header_bytes: must be greater than 0, not -1"
    );
    assert_eq!(
        refused("[upstreams.a]\ntargets = [\"127.0.0.1:9001\"]\neject_after = 5000000000\n"),
        "gw.toml:3: upstreams.a.eject_after: 5000000000 is too large"
    );
}

#[test]
fn durations_are_checked_where_they_are_written() {
    assert_eq!(
        refused(&with_upstream("connect_timeout = \"5 sec\"\n")),
        "gw.toml:3: upstreams.accounts.connect_timeout: invalid duration \"5 sec\": expected a \
         number followed by ms, s, m or h"
    );
    assert_eq!(
        refused(&with_upstream("response_timeout = \"0s\"\n")),
        "gw.toml:3: upstreams.accounts.response_timeout: must be greater than 0"
    );
    assert_eq!(
        refused("[gateway]\nshutdown_grace = \"30\"\n"),
        "gw.toml:2: gateway.shutdown_grace: invalid duration \"30\": expected a number followed \
         by ms, s, m or h"
    );
    let config = load("[gateway]\nshutdown_grace = \"0s\"\n").unwrap();
    assert_eq!(config.gateway.shutdown_grace, Duration::ZERO);
    assert_eq!(
        refused("[gateway]\nbody_timeout = \"0ms\"\n"),
        "gw.toml:2: gateway.body_timeout: must be greater than 0"
    );
    assert_eq!(
        refused("[gateway]\n\nbody_timeout = \"a minute\"\n"),
        "gw.toml:3: gateway.body_timeout: invalid duration \"a minute\": expected a number \
         followed by ms, s, m or h"
    );
    let config = load("[gateway]\nbody_timeout = \"2.5s\"\n").unwrap();
    assert_eq!(config.gateway.body_timeout, Duration::from_millis(2500));
}

#[test]
fn realm_must_fit_in_a_quoted_string() {
    assert_eq!(
        refused("[gateway]\nrealm = 'a\"b'\n"),
        "gw.toml:2: gateway.realm: invalid realm \"a\\\"b\": use printable ASCII without '\"' or '\\'"
    );
    assert!(refused("[gateway]\nrealm = \"\"\n").starts_with("gw.toml:2: gateway.realm: "));
}

#[test]
fn maintenance_must_end_after_it_starts() {
    assert_eq!(
        refused(
            "[gateway]\nmaintenance = { from = \"2026-12-01T06:00:00Z\", until = \"2026-12-01T05:00:00Z\" }\n"
        ),
        "gw.toml:2: gateway.maintenance.until: the window must end (`until`) after it starts (`from`)"
    );
    assert_eq!(
        refused("[gateway]\nmaintenance = { until = \"2026-02-30T00:00:00Z\" }\n"),
        "gw.toml:2: gateway.maintenance.until: invalid date \"2026-02-30T00:00:00Z\": day 30 is out \
         of range: 2026-02 has 28 days; expected RFC 3339, e.g. 2026-12-01T06:00:00Z"
    );
    assert_eq!(
        refused("[gateway]\nmaintenance = { from = \"2026-12-01T06:00:00Z\" }\n"),
        "gw.toml:2: gateway.maintenance: missing field `until`"
    );
}

#[test]
fn tls_files_must_exist_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), "cert").unwrap();
    std::fs::write(dir.path().join("key.pem"), "key").unwrap();
    let origin = dir.path().join("gw.toml");
    let text = "[gateway]\ntls = { cert = \"cert.pem\", key = \"key.pem\" }\n";
    let config = load_str(text, &origin, &no_env).unwrap();
    let tls = config.gateway.tls.unwrap();
    assert_eq!(tls.cert, dir.path().join("cert.pem"));
    assert_eq!(tls.key, dir.path().join("key.pem"));

    let text = "[gateway]\ntls = { cert = \"cert.pem\", key = \"nope.pem\" }\n";
    let error = load_str(text, &origin, &no_env).unwrap_err().to_string();
    let expected = format!(
        "{}:2: gateway.tls.key: {:?} cannot be opened: ",
        origin.display(),
        dir.path().join("nope.pem").display().to_string()
    );
    assert!(error.starts_with(&expected), "{error}");

    let text = "[gateway]\ntls = { cert = \".\", key = \"key.pem\" }\n";
    let error = load_str(text, &origin, &no_env).unwrap_err().to_string();
    assert!(error.ends_with(" is a directory"), "{error}");
}

// ---- errors: upstreams ----

#[test]
fn targets_must_be_host_and_port() {
    assert_eq!(
        refused("[upstreams.a]\ntargets = []\n"),
        "gw.toml:2: upstreams.a.targets: needs at least one target (host:port)"
    );
    assert_eq!(
        refused("[upstreams.a]\ntargets = [\n  \"127.0.0.1:9001\",\n  \"127.0.0.1\",\n]\n"),
        "gw.toml:4: upstreams.a.targets[1]: invalid target \"127.0.0.1\": missing port; expected \
         host:port, e.g. 127.0.0.1:9001"
    );
    assert_eq!(
        refused("[upstreams.a]\ntargets = [\"http://127.0.0.1:9001\"]\n"),
        "gw.toml:2: upstreams.a.targets[0]: invalid target \"http://127.0.0.1:9001\": targets take \
         no scheme; expected host:port, e.g. 127.0.0.1:9001"
    );
    assert!(
        refused("[upstreams.a]\ntargets = [\"127.0.0.1:70000\"]\n").starts_with(
            "gw.toml:2: upstreams.a.targets[0]: invalid target \"127.0.0.1:70000\": invalid port"
        )
    );
}

#[test]
fn upstream_names_are_header_safe() {
    assert_eq!(
        refused("[upstreams.\"a b\"]\ntargets = [\"127.0.0.1:9001\"]\n"),
        "gw.toml:1: upstreams.\"a b\": an upstream name may only use ASCII letters, digits, '-', \
         '_' and '.'"
    );
}

#[test]
fn repair_takes_known_names_only() {
    assert_eq!(
        refused(&with_upstream("repair = [\"challenge\", \"location\"]\n")),
        "gw.toml:3: upstreams.accounts.repair[1]: unknown variant `location`, expected \
         `challenge` or `retry_after`"
    );
}

// ---- errors: routes ----

#[test]
fn a_route_names_a_defined_upstream() {
    assert_eq!(
        refused(&with_upstream(
            "[[routes]]\npath = \"/a\"\nupstream = \"acounts\"\n"
        )),
        "gw.toml:5: routes[0].upstream: unknown upstream \"acounts\" (defined: accounts)"
    );
}

#[test]
fn a_route_proxies_or_is_retired() {
    assert_eq!(
        refused(&with_upstream(
            "[[routes]]\npath = \"/a\"\nupstream = \"accounts\"\nretired = {}\n"
        )),
        "gw.toml:6: routes[0].retired: a route either proxies to an `upstream` or is `retired`, \
         not both"
    );
    assert_eq!(
        refused("\n[[routes]]\npath = \"/a\"\n"),
        "gw.toml:2: routes[0]: a route needs `upstream` (to proxy) or `retired` (to answer 410 \
         Gone)"
    );
}

#[test]
fn retired_routes_cannot_be_deprecated() {
    assert_eq!(
        refused("[[routes]]\npath = \"/a\"\nretired = {}\ndeprecated = {}\n"),
        "gw.toml:4: routes[0].deprecated: a retired route is gone, not deprecated: use one or the \
         other"
    );
}

#[test]
fn deprecation_dates_and_links_are_checked() {
    let route = "[[routes]]\npath = \"/a\"\nupstream = \"accounts\"\n";
    assert_eq!(
        refused(&with_upstream(&format!(
            "{route}deprecated = {{ since = \"2027-01-01T00:00:00Z\", sunset = \"2026-01-01T00:00:00Z\" }}\n"
        ))),
        "gw.toml:6: routes[0].deprecated.sunset: the sunset must come after `since`"
    );
    assert_eq!(
        refused(&with_upstream(&format!(
            "{route}deprecated = {{ link = \"https://example.com/a b\" }}\n"
        ))),
        "gw.toml:6: routes[0].deprecated.link: invalid link \"https://example.com/a b\": expected \
         a URI without spaces, quotes or angle brackets"
    );
    assert_eq!(
        refused("[[routes]]\npath = \"/a\"\nretired = { successor = \"<x>\" }\n"),
        "gw.toml:3: routes[0].retired.successor: invalid link \"<x>\": expected a URI without \
         spaces, quotes or angle brackets"
    );
}

#[test]
fn methods_are_tokens_without_duplicates() {
    let route = "[[routes]]\npath = \"/a\"\nupstream = \"accounts\"\n";
    assert_eq!(
        refused(&with_upstream(&format!(
            "{route}methods = [\"GET\", \"get\"]\n"
        ))),
        "gw.toml:6: routes[0].methods[1]: duplicate method GET"
    );
    assert_eq!(
        refused(&with_upstream(&format!(
            "{route}methods = [\"GET\", \"GET /\"]\n"
        ))),
        "gw.toml:6: routes[0].methods[1]: invalid method \"GET /\""
    );
    assert_eq!(
        refused(&with_upstream(&format!("{route}methods = []\n"))),
        "gw.toml:6: routes[0].methods: lists no method; leave `methods` out to serve every method"
    );
}

#[test]
fn paths_start_with_a_slash_and_suit_the_router() {
    let route = |path: &str| {
        with_upstream(&format!(
            "[[routes]]\npath = \"{path}\"\nupstream = \"accounts\"\n"
        ))
    };
    assert_eq!(
        refused(&route("users")),
        "gw.toml:4: routes[0].path: invalid path \"users\": must start with '/'"
    );
    assert_eq!(
        refused(&route("/users?id={id}")),
        "gw.toml:4: routes[0].path: invalid path \"/users?id={id}\": a route path has no query or \
         fragment"
    );
    // Requests are routed on their normalised path: a pattern must be one.
    assert_eq!(
        refused(&route("/a//b")),
        "gw.toml:4: routes[0].path: invalid path \"/a//b\": requests are routed on their \
         normalised path, which this pattern never is; write \"/a/b\""
    );
    assert_eq!(
        refused(&route("/admin;v=1/{*rest}")),
        "gw.toml:4: routes[0].path: invalid path \"/admin;v=1/{*rest}\": requests are routed on \
         their normalised path, which this pattern never is; write \"/admin/{*rest}\""
    );
    assert_eq!(
        refused(&route("/../x")),
        "gw.toml:4: routes[0].path: invalid path \"/../x\": the request path climbs above the root"
    );
    assert_eq!(
        refused(&route("/files/{*rest}/meta")),
        "gw.toml:4: routes[0].path: rejected by the router: Catch-all parameters are only allowed \
         at the end of a route"
    );
    assert_eq!(
        refused(&route("/users/{id")),
        "gw.toml:4: routes[0].path: rejected by the router: Parameters must be registered with a \
         valid name"
    );
}

#[test]
fn conflicting_patterns_name_both_routes() {
    assert_eq!(
        refused(&with_upstream(
            r#"
[[routes]]
path = "/users/{id}"
upstream = "accounts"

[[routes]]
path = "/users/{name}"
upstream = "accounts"
"#
        )),
        "gw.toml:9: routes[1].path: rejected by the router: Insertion failed due to conflict with \
         previously registered route: /users/{id} (routes[0] at line 4)"
    );
}

#[test]
fn same_path_routes_need_disjoint_methods() {
    let two = |first: &str, second: &str| {
        with_upstream(&format!(
            "\n[[routes]]\npath = \"/users\"\n{first}upstream = \"accounts\"\n\n\
             [[routes]]\npath = \"/users\"\n{second}upstream = \"accounts\"\n"
        ))
    };
    assert_eq!(
        refused(&two(
            "methods = [\"GET\", \"POST\"]\n",
            "methods = [\"PUT\", \"POST\"]\n"
        )),
        "gw.toml:10: routes[1].path: \"/users\" is also routed by routes[0] at line 4: both serve POST"
    );
    assert_eq!(
        refused(&two("methods = [\"GET\"]\n", "")),
        "gw.toml:10: routes[1].path: \"/users\" is also routed by routes[0] at line 4: both must \
         list `methods`, and disjoint ones"
    );
    assert_eq!(
        refused(&two("", "methods = [\"GET\"]\n")),
        "gw.toml:9: routes[1].path: \"/users\" is also routed by routes[0] at line 4: both must \
         list `methods`, and disjoint ones"
    );
}

// ---- auth ----

/// An HS256 `[auth.jwt]` on lines 1-3.
const JWT: &str =
    "[auth.jwt]\nalgorithms = [\"HS256\"]\nsecret = \"0123456789abcdef0123456789abcdef\"\n";

/// A real P-256 public key, for JWKS fixtures.
const EC_JWK: &str = r#"{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
  "x": "yAh45kx3573jM-LDdhZ0KDvnLNMpUZNLcPYhmYf2Soo",
  "y": "P0Fg9Enu_hGsbCphyt4Bq3D7wt-si8gJTbB7dWUbrhk"}"#;

/// The SHA-256 of "k1" and of "k2".
const SHA_K1: &str = "6ab9f1eb8f7d3388f4f9d586f66e99fd54080df2c446f0e58668b09c08a16dd0";
const SHA_K2: &str = "015f7e6bc5aeaf483724089e9252cc13b50951a6b69412522765cff4d780306e";

/// A directory holding `files`, for configurations that name files.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// Loads `text` as `DIR/gw.toml`; an error reads with `DIR/` left out.
fn load_in(dir: &tempfile::TempDir, text: &str) -> Result<Config, String> {
    load_str(text, &dir.path().join("gw.toml"), &no_env).map_err(|e| {
        e.to_string()
            .replace(&format!("{}/", dir.path().display()), "")
    })
}

fn refused_in(dir: &tempfile::TempDir, text: &str) -> String {
    match load_in(dir, text) {
        Ok(config) => panic!("accepted: {config:#?}"),
        Err(error) => error,
    }
}

fn jwks(keys: &[&str]) -> String {
    format!("{{\"keys\": [{}]}}", keys.join(", "))
}

#[test]
fn auth_example_protects_routes() {
    let config = load_file(&examples().join("auth.toml")).unwrap();
    let jwt = config.auth.jwt.as_ref().unwrap();
    assert_eq!(jwt.algorithms, ["HS256"]);
    assert!(matches!(&jwt.key, JwtKey::Secret(secret) if secret.len() >= 32));
    assert_eq!(jwt.issuer.as_deref(), Some("https://id.example.com"));
    let api_keys = config.auth.api_keys.as_ref().unwrap();
    assert_eq!(api_keys.header, "x-api-key");
    assert_eq!(api_keys.file, examples().join("keys").join("api-keys.toml"));
    let subjects: Vec<_> = api_keys.keys.iter().map(|k| k.subject.as_str()).collect();
    assert_eq!(subjects, ["reporting-service", "ops-cli"]);

    let access: Vec<_> = config
        .routes
        .iter()
        .map(|r| (r.path.as_str(), r.auth, r.roles.join(","), r.conceal))
        .collect();
    assert_eq!(
        access,
        [
            ("/public/{*rest}", RouteAuth::None, String::new(), false),
            ("/me", RouteAuth::Jwt, String::new(), false),
            (
                "/reports/{*rest}",
                RouteAuth::Any,
                "reports,admin".to_owned(),
                false
            ),
            ("/admin/{*rest}", RouteAuth::Jwt, "admin".to_owned(), true),
            ("/ingest", RouteAuth::ApiKey, String::new(), false),
        ]
    );
}

#[test]
fn jwt_and_api_keys_reach_the_model() {
    let jwks_json = jwks(&[EC_JWK]);
    let keys = format!(
        "[[keys]]\nsha256 = \"{SHA_K1}\"\nsubject = \"reporting\"\nroles = [\"reports\"]\n\n\
         [[keys]]\nsha256 = \"{}\"\nsubject = \"ops\"\n",
        SHA_K2.to_ascii_uppercase()
    );
    let dir = dir_with(&[("jwks.json", &jwks_json), ("secrets/keys.toml", &keys)]);
    let config = load_in(
        &dir,
        &with_upstream(
            r#"
[auth]
subject_header = "X-Client"
roles_header = "x-client-roles"

[auth.jwt]
algorithms = ["ES256", "RS256"]
jwks_file = "jwks.json"
issuer = "https://id.example"
audience = "api"
leeway = "0s"
roles_claim = "groups"

[auth.api_keys]
header = "X-Key"
file = "secrets/keys.toml"

[[routes]]
path = "/reports"
upstream = "accounts"
auth = "any"
roles = ["reports", "admin"]
conceal = true
"#,
        ),
    )
    .unwrap();
    let sha = |hex: &str| -> [u8; 32] {
        let mut out = [0; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    };
    assert_eq!(
        config.auth,
        Auth {
            jwt: Some(Jwt {
                algorithms: vec!["ES256".to_owned(), "RS256".to_owned()],
                key: JwtKey::Jwks {
                    path: dir.path().join("jwks.json"),
                    json: jwks_json,
                },
                issuer: Some("https://id.example".to_owned()),
                audience: Some("api".to_owned()),
                leeway: Duration::ZERO,
                roles_claim: "groups".to_owned(),
            }),
            api_keys: Some(ApiKeys {
                header: http::HeaderName::from_static("x-key"),
                header_text: "X-Key".to_owned(),
                file: dir.path().join("secrets/keys.toml"),
                keys: vec![
                    ApiKey {
                        sha256: sha(SHA_K1),
                        subject: "reporting".to_owned(),
                        roles: vec!["reports".to_owned()],
                    },
                    ApiKey {
                        sha256: sha(SHA_K2),
                        subject: "ops".to_owned(),
                        roles: vec![],
                    },
                ],
            }),
            external: None,
            subject_header: http::HeaderName::from_static("x-client"),
            roles_header: http::HeaderName::from_static("x-client-roles"),
        }
    );
    let route = &config.routes[0];
    assert_eq!(route.auth, RouteAuth::Any);
    assert_eq!(route.roles, ["reports", "admin"]);
    assert!(route.conceal);
}

#[test]
fn jwt_settings_have_defaults_and_the_secret_may_come_from_the_environment() {
    let env = |name: &str| (name == "JWT_SECRET").then(|| "s".repeat(64));
    let text = "[auth.jwt]\nalgorithms = [\"HS512\", \"HS256\"]\nsecret = \"${JWT_SECRET}\"\n";
    let config = load_str(text, Path::new("gw.toml"), &env).unwrap();
    assert_eq!(
        config.auth.jwt,
        Some(Jwt {
            algorithms: vec!["HS512".to_owned(), "HS256".to_owned()],
            key: JwtKey::Secret("s".repeat(64)),
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(30),
            roles_claim: "roles".to_owned(),
        })
    );
    assert_eq!(config.auth.api_keys, None);
    assert_eq!(config.auth.subject_header, "x-auth-subject");
    assert_eq!(config.auth.roles_header, "x-auth-roles");
    assert_eq!(
        refused("[auth.jwt]\nalgorithms = [\"HS256\"]\nsecret = \"${JWT_SECRET}\"\n"),
        "gw.toml:3: auth.jwt.secret: environment variable JWT_SECRET is not set"
    );
}

#[test]
fn jwt_algorithms_are_pinned_and_never_none() {
    let algorithms = |list: &str| {
        refused(&format!(
            "[auth.jwt]\nalgorithms = {list}\nsecret = \"0123456789abcdef0123456789abcdef\"\n"
        ))
    };
    assert_eq!(
        algorithms("[]"),
        "gw.toml:2: auth.jwt.algorithms: lists no algorithm; name the ones your tokens are signed \
         with, e.g. [\"RS256\"]"
    );
    assert_eq!(
        algorithms("[\"HS256\", \"none\"]"),
        "gw.toml:2: auth.jwt.algorithms[1]: \"none\" would accept unsigned tokens; it is never \
         allowed"
    );
    assert_eq!(
        algorithms("[\"None\"]"),
        "gw.toml:2: auth.jwt.algorithms[0]: \"None\" would accept unsigned tokens; it is never \
         allowed"
    );
    assert_eq!(
        algorithms("[\"hs256\"]"),
        "gw.toml:2: auth.jwt.algorithms[0]: unknown algorithm \"hs256\"; expected one of HS256, \
         HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA"
    );
    assert_eq!(
        algorithms("[\"HS256\", \"HS256\"]"),
        "gw.toml:2: auth.jwt.algorithms[1]: duplicate algorithm HS256"
    );
    assert_eq!(
        algorithms("[\"HS256\", \"RS256\"]"),
        "gw.toml:2: auth.jwt.algorithms[1]: RS256 cannot be listed with HS256: mixing \
         shared-secret (HS*) and public-key algorithms invites algorithm confusion"
    );
    assert_eq!(
        refused("[auth.jwt]\nsecret = \"0123456789abcdef0123456789abcdef\"\n"),
        "gw.toml:1: auth.jwt: missing field `algorithms`"
    );
}

#[test]
fn jwt_takes_a_secret_or_a_jwks_file_to_suit_its_algorithms() {
    assert_eq!(
        refused("[auth.jwt]\nalgorithms = [\"HS256\"]\n"),
        "gw.toml:1: auth.jwt: HS256 needs `secret`, the shared key"
    );
    assert_eq!(
        refused("\n[auth.jwt]\nalgorithms = [\"EdDSA\"]\n"),
        "gw.toml:2: auth.jwt: EdDSA needs `jwks_file`, the issuer's public keys"
    );
    assert_eq!(
        refused(&format!("{JWT}jwks_file = \"jwks.json\"\n")),
        "gw.toml:4: auth.jwt.jwks_file: give either `secret` or `jwks_file`, not both"
    );
    assert_eq!(
        refused(
            "[auth.jwt]\nalgorithms = [\"RS256\"]\nsecret = \"0123456789abcdef0123456789abcdef\"\n"
        ),
        "gw.toml:3: auth.jwt.secret: a shared secret is for HS256, HS384 and HS512; RS256 verifies \
         with the public keys of `jwks_file`"
    );
    assert_eq!(
        refused("[auth.jwt]\nalgorithms = [\"HS256\"]\njwks_file = \"jwks.json\"\n"),
        "gw.toml:3: auth.jwt.jwks_file: HS256 verifies with a shared `secret`, not with public keys"
    );
}

#[test]
fn jwt_secrets_are_as_long_as_their_hash() {
    assert_eq!(
        refused("[auth.jwt]\nalgorithms = [\"HS256\"]\nsecret = \"too short\"\n"),
        "gw.toml:3: auth.jwt.secret: is 9 bytes; HS256 needs a secret of at least 32 bytes, the \
         size of its hash (RFC 7518 section 3.2)"
    );
    let secret = "s".repeat(48);
    assert_eq!(
        refused(&format!(
            "[auth.jwt]\nalgorithms = [\"HS256\", \"HS512\", \"HS384\"]\nsecret = \"{secret}\"\n"
        )),
        "gw.toml:3: auth.jwt.secret: is 48 bytes; HS512 needs a secret of at least 64 bytes, the \
         size of its hash (RFC 7518 section 3.2)"
    );
    let config = load(&format!(
        "[auth.jwt]\nalgorithms = [\"HS384\"]\nsecret = \"{secret}\"\n"
    ));
    assert!(config.is_ok());
}

#[test]
fn jwt_strings_and_leeway_are_checked() {
    assert_eq!(
        refused(&format!("{JWT}issuer = \"\"\n")),
        "gw.toml:4: auth.jwt.issuer: must not be empty"
    );
    assert_eq!(
        refused(&format!("{JWT}audience = \"\"\n")),
        "gw.toml:4: auth.jwt.audience: must not be empty"
    );
    assert_eq!(
        refused(&format!("{JWT}roles_claim = \"\"\n")),
        "gw.toml:4: auth.jwt.roles_claim: must not be empty"
    );
    assert_eq!(
        refused(&format!("{JWT}leeway = \"30\"\n")),
        "gw.toml:4: auth.jwt.leeway: invalid duration \"30\": expected a number followed by ms, \
         s, m or h"
    );
    assert_eq!(
        refused(&format!("{JWT}public_key = \"k.pem\"\n")),
        "gw.toml:4: auth.jwt.public_key: unknown field `public_key`, expected one of \
         `algorithms`, `secret`, `jwks_file`, `issuer`, `audience`, `leeway`, `roles_claim`"
    );
}

#[test]
fn jwks_files_are_read_and_checked_with_the_config() {
    let config = |jwks_file: &str| {
        format!("\n[auth.jwt]\nalgorithms = [\"ES256\"]\njwks_file = \"{jwks_file}\"\n")
    };
    let rsa = r#"{"kty": "RSA", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"}"#;
    let dir = dir_with(&[
        ("empty.json", "{\"keys\": []}"),
        ("broken.json", "{\"keys\": [}"),
        ("not-jwks.json", "{\"key\": []}"),
        ("rsa.json", &jwks(&[rsa])),
        ("oct.json", &jwks(&[r#"{"kty": "oct", "k": "c2VjcmV0"}"#])),
        ("odd.json", &jwks(&[r#"{"kty": "RSA"}"#])),
        (
            "bad-x.json",
            &jwks(&[r#"{"kty": "EC", "crv": "P-256", "x": "%%", "y": "AA"}"#]),
        ),
        (
            "encryption.json",
            &jwks(&[&EC_JWK.replace("\"sig\"", "\"enc\"")]),
        ),
        ("ok.json", &jwks(&[rsa, EC_JWK])),
    ]);
    let refused_with = |file: &str| refused_in(&dir, &config(file));
    assert!(load_in(&dir, &config("ok.json")).is_ok());
    assert!(
        refused_with("missing.json")
            .starts_with("gw.toml:4: auth.jwt.jwks_file: \"missing.json\" cannot be opened: "),
        "{}",
        refused_with("missing.json")
    );
    assert_eq!(
        refused_with("empty.json"),
        "gw.toml:4: auth.jwt.jwks_file: \"empty.json\" holds no keys"
    );
    assert_eq!(
        refused_with("broken.json"),
        "gw.toml:4: auth.jwt.jwks_file: \"broken.json\" is not a JWKS ({\"keys\": [..]}): \
         expected value at line 1 column 11"
    );
    assert_eq!(
        refused_with("not-jwks.json"),
        "gw.toml:4: auth.jwt.jwks_file: \"not-jwks.json\" is not a JWKS ({\"keys\": [..]}): \
         missing field `keys` at line 1 column 11"
    );
    assert_eq!(
        refused_with("rsa.json"),
        "gw.toml:4: auth.jwt.jwks_file: \"rsa.json\" has no signing key for ES256"
    );
    assert_eq!(
        refused_with("encryption.json"),
        "gw.toml:4: auth.jwt.jwks_file: \"encryption.json\" has no signing key for ES256"
    );
    assert_eq!(
        refused_with("oct.json"),
        "gw.toml:4: auth.jwt.jwks_file: \"oct.json\" holds a shared secret at keys[0] (\"kty\": \
         \"oct\"); a JWKS here holds public keys only"
    );
    assert_eq!(
        refused_with("odd.json"),
        "gw.toml:4: auth.jwt.jwks_file: \"odd.json\" keys[0] is not a public key: expected \
         \"kty\" \"RSA\" (with n, e), \"EC\" (crv, x, y) or \"OKP\" (crv, x)"
    );
    assert!(
        refused_with("bad-x.json").starts_with(
            "gw.toml:4: auth.jwt.jwks_file: \"bad-x.json\" keys[0] is not a valid key: "
        ),
        "{}",
        refused_with("bad-x.json")
    );
}

#[test]
fn auth_headers_are_valid_own_and_distinct() {
    assert_eq!(
        refused("[auth]\nsubject_header = \"X Subject\"\n"),
        "gw.toml:2: auth.subject_header: invalid header name \"X Subject\""
    );
    assert_eq!(
        refused("[auth]\nroles_header = \"Cookie\"\n"),
        "gw.toml:2: auth.roles_header: \"Cookie\" is a standard HTTP header; use one of your own, \
         e.g. X-Auth-Roles"
    );
    assert_eq!(
        refused("[auth]\nroles_header = \"X-Auth-Subject\"\n"),
        "gw.toml:2: auth.roles_header: \"X-Auth-Subject\" is also auth.subject_header; each needs \
         a header of its own"
    );
    let dir = dir_with(&[("keys.toml", "")]);
    assert_eq!(
        refused_in(
            &dir,
            "[auth.api_keys]\nheader = \"Authorization\"\nfile = \"keys.toml\"\n"
        ),
        "gw.toml:2: auth.api_keys.header: \"Authorization\" is a standard HTTP header; use one of \
         your own, e.g. X-API-Key"
    );
    assert_eq!(
        refused_in(
            &dir,
            "[auth]\nsubject_header = \"x-api-key\"\n[auth.api_keys]\nfile = \"keys.toml\"\n"
        ),
        "gw.toml:2: auth.subject_header: \"x-api-key\" is also auth.api_keys.header; each needs a \
         header of its own"
    );
    assert_eq!(
        refused_in(
            &dir,
            "[auth.api_keys]\nheader = \"X-Auth-Roles\"\nfile = \"keys.toml\"\n"
        ),
        "gw.toml:2: auth.api_keys.header: \"X-Auth-Roles\" is also auth.roles_header; each needs \
         a header of its own"
    );
}

#[test]
fn api_keys_need_a_readable_keys_file() {
    assert_eq!(
        refused("[auth.api_keys]\nheader = \"X-Key\"\n"),
        "gw.toml:1: auth.api_keys: missing field `file`"
    );
    let dir = dir_with(&[("keys.toml", "")]);
    assert!(
        refused_in(&dir, "[auth.api_keys]\nfile = \"nope.toml\"\n")
            .starts_with("gw.toml:2: auth.api_keys.file: \"nope.toml\" cannot be opened: ")
    );
    // An empty keys file accepts no key: every key gets 401 auth.invalid.
    let config = load_in(&dir, "[auth.api_keys]\nfile = \"keys.toml\"\n").unwrap();
    let api_keys = config.auth.api_keys.unwrap();
    assert_eq!(api_keys.header, "x-api-key");
    assert!(api_keys.keys.is_empty());
}

#[test]
fn keys_file_errors_name_the_keys_file() {
    let refused_keys = |keys: &str| {
        let dir = dir_with(&[("keys.toml", keys)]);
        refused_in(&dir, "[auth.api_keys]\nfile = \"keys.toml\"\n")
    };
    let entry = |sha256: &str, rest: &str| {
        format!("[[keys]]\nsha256 = \"{sha256}\"\nsubject = \"svc\"\n{rest}")
    };
    assert_eq!(
        refused_keys(&format!(
            "{}\n[[keys]]\nsha256 = \"{}\"\nsubject = \"b\"\n",
            entry(SHA_K1, ""),
            &SHA_K2[1..]
        )),
        "keys.toml:6: keys[1].sha256: expected 64 hex digits"
    );
    assert_eq!(
        refused_keys(&entry(&SHA_K1.replace('a', "g"), "")),
        "keys.toml:2: keys[0].sha256: expected 64 hex digits"
    );
    assert_eq!(
        refused_keys(&format!(
            "{}\n{}",
            entry(SHA_K1, ""),
            entry(&SHA_K1.to_ascii_uppercase(), "")
        )),
        "keys.toml:6: keys[1].sha256: duplicate key: also keys[0] at line 1"
    );
    assert_eq!(
        refused_keys(&format!(
            "[[keys]]\nsha256 = \"{SHA_K1}\"\nsubject = \"\"\n"
        )),
        "keys.toml:3: keys[0].subject: must not be empty"
    );
    assert_eq!(
        refused_keys(&format!(
            "[[keys]]\nsha256 = \"{SHA_K1}\"\nsubject = \" svc\"\n"
        )),
        "keys.toml:3: keys[0].subject: must be printable ASCII without leading or trailing spaces: \
         it is sent to the upstream in a header"
    );
    assert_eq!(
        refused_keys(&entry(SHA_K1, "roles = [\"a\", \"b,c\"]\n")),
        "keys.toml:4: keys[0].roles[1]: invalid role \"b,c\": use printable ASCII without spaces \
         or commas"
    );
    assert_eq!(
        refused_keys(&entry(SHA_K1, "roles = [\"a\", \"a\"]\n")),
        "keys.toml:4: keys[0].roles[1]: duplicate role \"a\""
    );
    assert_eq!(
        refused_keys("[[keys]]\nsubject = \"svc\"\n"),
        "keys.toml:1: keys[0]: missing field `sha256`"
    );
    assert_eq!(
        refused_keys(&entry(SHA_K1, "key = \"plaintext\"\n")),
        "keys.toml:4: keys[0].key: unknown field `key`, expected one of `sha256`, `subject`, \
         `roles`"
    );
    assert_eq!(
        refused_keys("[[keys]\n"),
        "keys.toml:1: unclosed array table, expected `]`"
    );
}

#[test]
fn route_auth_names_a_configured_method() {
    let route = |auth: &str| {
        format!("[[routes]]\npath = \"/a\"\nupstream = \"accounts\"\nauth = \"{auth}\"\n")
    };
    assert_eq!(
        refused(&with_upstream(&route("jwt"))),
        "gw.toml:6: routes[0].auth: auth = \"jwt\" needs an [auth.jwt] table"
    );
    assert_eq!(
        refused(&with_upstream(&route("api_key"))),
        "gw.toml:6: routes[0].auth: auth = \"api_key\" needs an [auth.api_keys] table"
    );
    assert_eq!(
        refused(&format!("{JWT}{}", with_upstream(&route("any")))),
        "gw.toml:9: routes[0].auth: auth = \"any\" needs both [auth.jwt] and [auth.api_keys]"
    );
    assert_eq!(
        refused(&with_upstream(&route("bearer"))),
        "gw.toml:6: routes[0].auth: unknown variant `bearer`, expected one of `none`, `jwt`, \
         `api_key`, `any`, `external`"
    );
    let config = load(&with_upstream(&route("none"))).unwrap();
    assert_eq!(config.routes[0].auth, RouteAuth::None);
}

#[test]
fn roles_need_an_auth_method_and_conceal_needs_roles() {
    let route = |rest: &str| {
        format!(
            "{JWT}{}",
            with_upstream(&format!(
                "[[routes]]\npath = \"/a\"\nupstream = \"accounts\"\n{rest}"
            ))
        )
    };
    assert_eq!(
        refused(&route("roles = [\"admin\"]\n")),
        "gw.toml:9: routes[0].roles: roles need an auth method: set `auth` to \"jwt\", \
         \"api_key\", \"any\" or \"external\""
    );
    assert_eq!(
        refused(&route("auth = \"jwt\"\nroles = []\n")),
        "gw.toml:10: routes[0].roles: lists no role; leave `roles` out to admit every \
         authenticated client"
    );
    assert_eq!(
        refused(&route(
            "auth = \"jwt\"\nroles = [\"admin\", \"ops team\"]\n"
        )),
        "gw.toml:10: routes[0].roles[1]: invalid role \"ops team\": use printable ASCII without \
         spaces or commas"
    );
    assert_eq!(
        refused(&route("auth = \"jwt\"\nconceal = true\n")),
        "gw.toml:10: routes[0].conceal: conceal hides the route from clients that lack its roles; \
         it needs `roles`"
    );
    let config = load(&route("auth = \"jwt\"\nconceal = false\n")).unwrap();
    assert!(!config.routes[0].conceal);
}

#[test]
fn retired_routes_take_no_auth() {
    let retired = |rest: &str| {
        refused(&format!(
            "{JWT}[[routes]]\npath = \"/old\"\nretired = {{}}\n{rest}"
        ))
    };
    assert_eq!(
        retired("auth = \"jwt\"\n"),
        "gw.toml:7: routes[0].auth: a retired route answers 410 to everyone"
    );
    assert_eq!(
        retired("conceal = false\nroles = [\"admin\"]\n"),
        "gw.toml:7: routes[0].conceal: a retired route answers 410 to everyone"
    );
}

// ---- environment ----

#[test]
fn env_references_expand_in_every_string() {
    let env = |name: &str| match name {
        "ACCOUNTS_HOST" => Some("127.0.0.1".to_owned()),
        "REALM" => Some("internal".to_owned()),
        "TIMEOUT" => Some("2s".to_owned()),
        _ => None,
    };
    let text = r#"
[gateway]
realm = "${REALM}"

[upstreams.accounts]
targets = ["${ACCOUNTS_HOST}:9001"]
connect_timeout = "${TIMEOUT}"

[[routes]]
path = "/tmpl/$${x}"
upstream = "accounts"
"#;
    let config = load_str(text, Path::new("gw.toml"), &env).unwrap();
    assert_eq!(config.gateway.realm, "internal");
    let accounts = &config.upstreams["accounts"];
    assert_eq!(accounts.targets, ["127.0.0.1:9001"]);
    assert_eq!(accounts.connect_timeout, Duration::from_secs(2));
    assert_eq!(config.routes[0].path, "/tmpl/${x}");
}

#[test]
fn an_unset_variable_is_named_with_its_key() {
    assert_eq!(
        refused("[upstreams.accounts]\ntargets = [\"127.0.0.1:9001\", \"${SECOND}:9002\"]\n"),
        "gw.toml:2: upstreams.accounts.targets[1]: environment variable SECOND is not set"
    );
    assert_eq!(
        refused("[gateway]\nrealm = \"${REALM\"\n"),
        "gw.toml:2: gateway.realm: unterminated \"${\" (write \"$${\" for a literal \"${\")"
    );
}

#[test]
fn an_expanded_value_is_still_validated_at_its_line() {
    let env = |_: &str| Some("soon".to_owned());
    let error = load_str(
        "[gateway]\n\nshutdown_grace = \"${GRACE}\"\n",
        Path::new("gw.toml"),
        &env,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "gw.toml:3: gateway.shutdown_grace: invalid duration \"soon\": expected a number followed \
         by ms, s, m or h"
    );
    let ConfigError::Invalid { line, column, .. } = error else {
        panic!("{error:?}");
    };
    assert_eq!((line, column), (3, 18));
}

// ---- file-level errors ----

#[test]
fn unreadable_files_are_file_level_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let error = load_file(&missing).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("{}: ", missing.display())),
        "{error}"
    );

    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, b"[gateway]\nrealm = \"\xff\"\n").unwrap();
    assert_eq!(
        load_file(&binary).unwrap_err().to_string(),
        format!("{}: not valid UTF-8 (line 2)", binary.display())
    );
}

#[test]
fn rate_limits_are_parsed_and_routes_must_name_one_that_exists() {
    use candor_gateway::config::{OnStoreError, RateKey, RateStore};
    let config = load(
        "[rate_limits.standard]\nrequests = 100\nper = \"60s\"\nkey = \"header:X-Tenant\"\n\
         store = \"redis+unix:///run/redis.sock\"\non_store_error = \"deny\"\n\
         [upstreams.a]\ntargets = [\"127.0.0.1:9001\"]\n\
         [[routes]]\npath = \"/x\"\nupstream = \"a\"\nrate_limit = \"standard\"\n",
    )
    .unwrap();
    let limit = &config.rate_limits["standard"];
    assert_eq!(limit.requests, 100);
    assert_eq!(limit.per, Duration::from_secs(60));
    assert_eq!(
        limit.key,
        RateKey::Header(http::HeaderName::from_static("x-tenant"))
    );
    assert_eq!(
        limit.store,
        RateStore::Redis("redis+unix:///run/redis.sock".into())
    );
    assert_eq!(limit.on_store_error, OnStoreError::Deny);
    assert_eq!(config.routes[0].rate_limit.as_deref(), Some("standard"));

    assert_eq!(
        refused(
            "[upstreams.a]\ntargets = [\"127.0.0.1:9001\"]\n[[routes]]\npath = \"/x\"\nupstream = \"a\"\nrate_limit = \"nope\"\n"
        ),
        "gw.toml:6: routes[0].rate_limit: no [rate_limits.nope] is defined"
    );
    assert_eq!(
        refused("[rate_limits.s]\nrequests = 0\nper = \"1s\"\n"),
        "gw.toml:2: rate_limits.s.requests: must be greater than 0, not 0"
    );
    assert_eq!(
        refused("[rate_limits.s]\nrequests = 1\nper = \"1s\"\nkey = \"cookie\"\n"),
        "gw.toml:4: rate_limits.s.key: unknown key \"cookie\": expected subject, ip, api_key or header:NAME"
    );
    assert_eq!(
        refused("[rate_limits.s]\nrequests = 1\nper = \"1s\"\nstore = \"memcached://x\"\n"),
        "gw.toml:4: rate_limits.s.store: \"memcached://x\": expected \"memory\", redis://HOST:PORT/DB or redis+unix:///PATH"
    );
}

const EXTERNAL: &str = "[auth.external]\nupstream = \"auth\"\n";
const AUTH_UPSTREAM: &str = "[upstreams.auth]\ntargets = [\"127.0.0.1:9100\"]\n";

#[test]
fn external_auth_defaults_and_every_key_reach_the_model() {
    let route = "[[routes]]\npath = \"/a\"\nupstream = \"accounts\"\nauth = \"external\"\nroles = [\"admin\"]\n";
    let config = load(&format!(
        "{EXTERNAL}{AUTH_UPSTREAM}{}",
        with_upstream(route)
    ))
    .unwrap();
    let e = config.auth.external.as_ref().unwrap();
    assert_eq!(e.upstream, "auth");
    assert_eq!(e.path, "/introspect");
    assert_eq!(e.send, [http::header::AUTHORIZATION]);
    assert_eq!((e.subject.as_str(), e.roles.as_str()), ("sub", "roles"));
    assert_eq!(e.timeout, Duration::from_secs(2));
    assert_eq!(e.cache, None);
    assert_eq!(config.routes[0].auth, RouteAuth::External);
    assert_eq!(config.routes[0].roles, ["admin"]);

    let every = "[auth.external]\nupstream = \"auth\"\npath = \"/oauth/introspect\"\n\
        send = [\"Authorization\", \"Cookie\"]\nsubject = \"username\"\nroles = \"scope\"\n\
        timeout = \"750ms\"\ncache = { ttl = \"30s\", negative_ttl = \"5s\", max_entries = 500 }\n";
    let config = load(&format!("{every}{AUTH_UPSTREAM}")).unwrap();
    let e = config.auth.external.unwrap();
    assert_eq!(e.path, "/oauth/introspect");
    assert_eq!(e.send, [http::header::AUTHORIZATION, http::header::COOKIE]);
    assert_eq!(
        (e.subject.as_str(), e.roles.as_str()),
        ("username", "scope")
    );
    assert_eq!(e.timeout, Duration::from_millis(750));
    let cache = e.cache.unwrap();
    assert_eq!(cache.ttl, Duration::from_secs(30));
    assert_eq!(cache.negative_ttl, Duration::from_secs(5));
    assert_eq!(cache.max_entries, 500);
    // negative_ttl defaults to ttl.
    let config = load(&format!(
        "{EXTERNAL}cache = {{ ttl = \"9s\" }}\n{AUTH_UPSTREAM}"
    ))
    .unwrap();
    let cache = config.auth.external.unwrap().cache.unwrap();
    assert_eq!(cache.negative_ttl, Duration::from_secs(9));
    assert_eq!(cache.max_entries, 10_000);
}

#[test]
fn external_auth_mistakes_are_named() {
    assert_eq!(
        refused(&with_upstream(
            "[[routes]]\npath = \"/a\"\nupstream = \"accounts\"\nauth = \"external\"\n"
        )),
        "gw.toml:6: routes[0].auth: auth = \"external\" needs an [auth.external] table"
    );
    assert_eq!(
        refused(EXTERNAL),
        "gw.toml:2: auth.external.upstream: no [upstreams.auth] is defined; the auth service \
         runs on an upstream"
    );
    let with = |line: &str| refused(&format!("{EXTERNAL}{line}\n{AUTH_UPSTREAM}"));
    assert_eq!(
        with("path = \"introspect\""),
        "gw.toml:3: auth.external.path: \"introspect\" is not an origin-form path like \
         \"/introspect\""
    );
    assert_eq!(
        with("send = []"),
        "gw.toml:3: auth.external.send: lists no field; the auth service needs the client's \
         credentials"
    );
    assert_eq!(
        with("send = [\"Authorization\", \"Host\"]"),
        "gw.toml:3: auth.external.send[1]: \"Host\" describes this hop, not the client; it is \
         never sent"
    );
    assert_eq!(
        with("send = [\"Cookie\", \"cookie\"]"),
        "gw.toml:3: auth.external.send[1]: duplicate field \"cookie\""
    );
    assert_eq!(
        with("timeout = \"0s\""),
        "gw.toml:3: auth.external.timeout: must be greater than 0"
    );
    assert_eq!(
        with("cache = { ttl = \"0s\" }"),
        "gw.toml:3: auth.external.cache.ttl: must be greater than 0"
    );
    assert_eq!(
        with("cache = { ttl = \"1s\", max_entries = 0 }"),
        "gw.toml:3: auth.external.cache.max_entries: must be greater than 0, not 0"
    );
    assert_eq!(
        with("subject = \"\""),
        "gw.toml:3: auth.external.subject: must name a member of the service's JSON answer"
    );
}

#[test]
fn traces_are_off_unless_configured_and_take_defaults() {
    assert_eq!(load("").unwrap().traces, None);
    let config = load("[traces]\nendpoint = \"http://127.0.0.1:4318/v1/traces\"\n").unwrap();
    let traces = config.traces.unwrap();
    assert_eq!(traces.endpoint, "http://127.0.0.1:4318/v1/traces");
    assert_eq!(traces.service_name, "candor");
    assert_eq!((traces.queue, traces.batch), (4096, 512));
    assert_eq!(traces.interval, Duration::from_secs(1));
    assert_eq!(traces.timeout, Duration::from_secs(10));
}

#[test]
fn bad_trace_settings_are_named_with_their_line() {
    let cases = [
        (
            "endpoint = \"https://collector:4318/v1/traces\"",
            "gw.toml:3: traces.endpoint: invalid endpoint \"https://collector:4318/v1/traces\": \
             https is not supported",
        ),
        (
            "endpoint = \"collector:4318\"",
            "gw.toml:3: traces.endpoint: invalid endpoint",
        ),
        (
            "endpoint = \"http://c/v1/traces\"\nqueue = 0",
            "gw.toml:4: traces.queue: must be greater than 0, not 0",
        ),
        (
            "endpoint = \"http://c/v1/traces\"\nqueue = 10\nbatch = 20",
            "gw.toml:5: traces.batch: 20 is more than traces.queue (10)",
        ),
        (
            "endpoint = \"http://c/v1/traces\"\ninterval = \"0s\"",
            "gw.toml:4: traces.interval: must be greater than 0",
        ),
        (
            "endpoint = \"http://c/v1/traces\"\nservice_name = \" \"",
            "gw.toml:4: traces.service_name: must not be empty",
        ),
        (
            "endpoint = \"http://c/v1/traces\"\nsample = 1",
            "gw.toml:4: traces.sample: unknown field `sample`",
        ),
    ];
    for (table, expected) in cases {
        let error = refused(&format!("\n[traces]\n{table}\n"));
        assert!(error.starts_with(expected), "{table}: {error}");
    }
}

#[test]
fn access_log_path_is_a_file_next_to_the_config_and_refused_with_the_log_off() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    let config = load_in(&dir, "[gateway]\naccess_log_path = \"logs/access.log\"\n").unwrap();
    assert!(config.gateway.access_log);
    assert_eq!(
        config.gateway.access_log_path,
        Some(dir.path().join("logs/access.log"))
    );
    let config = load_in(&dir, "[gateway]\naccess_log = true\n").unwrap();
    assert_eq!(config.gateway.access_log_path, None, "stdout by default");
    assert_eq!(
        refused_in(
            &dir,
            "[gateway]\naccess_log = false\naccess_log_path = \"logs/access.log\"\n"
        ),
        "gw.toml:3: gateway.access_log_path: names a file for an access log that `access_log = false` turns off: remove one of them"
    );
    assert_eq!(
        refused_in(
            &dir,
            "[gateway]\naccess_log_path = \"nowhere/access.log\"\n"
        ),
        "gw.toml:2: gateway.access_log_path: \"nowhere/access.log\" is in \"nowhere\", which is not a directory"
    );
    assert_eq!(
        refused_in(&dir, "[gateway]\naccess_log_path = \"logs\"\n"),
        "gw.toml:2: gateway.access_log_path: \"logs\" is a directory: name a file in it"
    );
    assert_eq!(
        refused_in(&dir, "[gateway]\naccess_log_path = \" \"\n"),
        "gw.toml:2: gateway.access_log_path: is empty: name a file, or remove the key to log to stdout"
    );
}
