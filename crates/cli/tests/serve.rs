//! `candor serve`, `candor check-config` and `candor faults` as processes:
//! signals, exit codes, and the shipped example configurations.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

fn candor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_candor"))
}

/// Reads stderr lines until one says where the process listens.
fn listening_addr(child: &mut Child, marker: &str) -> SocketAddr {
    listening_addr_and_log(child, marker).0
}

/// As `listening_addr`, and hands every later stderr line to the test.
fn listening_addr_and_log(child: &mut Child, marker: &str) -> (SocketAddr, mpsc::Receiver<String>) {
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines.next().expect("process printed its address").unwrap();
        if let Some(rest) = line.split(marker).nth(1) {
            let addr = rest
                .split_whitespace()
                .next()
                .unwrap()
                .trim_start_matches("http://")
                .trim_end_matches(')');
            // Keep draining stderr so the child never blocks on a full pipe.
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
            return (addr.parse().unwrap(), rx);
        }
    }
}

/// Waits for the log line that says a reload happened (or was rejected).
fn await_log(log: &mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        let line = log
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no log line containing {needle:?}"));
        if line.contains(needle) {
            return line;
        }
    }
}

/// `candor faults` on a free port, and where it listens.
fn spawn_faults() -> (Child, SocketAddr) {
    let mut faults = candor()
        .args(["faults", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = listening_addr(&mut faults, "listening on ");
    (faults, addr)
}

/// A child process killed when the test ends, also when it fails (an
/// orphan would hold the test's output pipes open).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn serve_proxies_and_exits_0_on_sigterm() {
    let (mut faults, upstream) = spawn_faults();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nlisten = \"127.0.0.1:0\"\naccess_log = false\n[upstreams.f]\ntargets = [\"{upstream}\"]\n\
             [[routes]]\npath = \"/f/{{*rest}}\"\nupstream = \"f\"\n"
        ),
    )
    .unwrap();
    let mut gateway = candor()
        .args(["serve", "--config", config.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = listening_addr(&mut gateway, "listening on ");

    assert!(http_get(addr, "/f/ok").starts_with("HTTP/1.1 200"));
    let unknown = http_get(addr, "/nope");
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    assert!(unknown.contains("application/problem+json"));

    signal(&gateway, "-TERM");
    assert_eq!(
        gateway.wait().unwrap().code(),
        Some(0),
        "a drained gateway exits 0"
    );
    signal(&faults, "-TERM");
    assert_eq!(faults.wait().unwrap().code(), Some(0));
}

#[test]
fn check_config_accepts_every_shipped_example() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut files: Vec<_> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let out = candor().arg("check-config").args(&files).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_config_names_file_line_and_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[gateway]\nlisten = \"127.0.0.1:0\"\nlisten_typo = 1\n",
    )
    .unwrap();
    let out = candor().arg("check-config").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:3"), "{stderr}");
    assert!(stderr.contains("listen_typo"), "{stderr}");
}

#[test]
fn serve_with_a_bad_config_exits_2() {
    let out = candor()
        .args(["serve", "--config", "/no/such/gateway.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/gateway.toml"));
}

#[test]
fn serve_reloads_on_sighup_and_on_file_change_and_keeps_serving_on_a_bad_file() {
    let (mut faults, upstream) = spawn_faults();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    let write = |prefix: &str| {
        std::fs::write(
            &config,
            format!(
                "[gateway]\nlisten = \"127.0.0.1:0\"\naccess_log = false\n[upstreams.f]\ntargets = [\"{upstream}\"]\n\
                 [[routes]]\npath = \"/{prefix}/{{*rest}}\"\nupstream = \"f\"\n"
            ),
        )
        .unwrap();
    };
    write("one");
    let mut gateway = candor()
        .args(["serve", "--config", config.to_str().unwrap(), "--no-watch"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, log) = listening_addr_and_log(&mut gateway, "listening on ");
    assert!(http_get(addr, "/one/ok").starts_with("HTTP/1.1 200"));

    write("two");
    signal(&gateway, "-HUP");
    await_log(&log, "configuration reloaded");
    assert!(http_get(addr, "/two/ok").starts_with("HTTP/1.1 200"));
    assert!(http_get(addr, "/one/ok").starts_with("HTTP/1.1 404"));

    std::fs::write(&config, "[gateway]\nlisten = 5\n").unwrap();
    signal(&gateway, "-HUP");
    let rejected = await_log(&log, "reload rejected");
    assert!(rejected.contains("gateway.toml:2"), "{rejected}");
    assert!(
        http_get(addr, "/two/ok").starts_with("HTTP/1.1 200"),
        "old config still serving"
    );

    signal(&gateway, "-TERM");
    assert_eq!(gateway.wait().unwrap().code(), Some(0));

    // Without --no-watch, writing the file is enough.
    write("three");
    let mut watched = candor()
        .args(["serve", "--config", config.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, log) = listening_addr_and_log(&mut watched, "listening on ");
    write("four");
    await_log(&log, "configuration reloaded");
    assert!(http_get(addr, "/four/ok").starts_with("HTTP/1.1 200"));
    signal(&watched, "-TERM");
    assert_eq!(watched.wait().unwrap().code(), Some(0));
    signal(&faults, "-TERM");
    faults.wait().unwrap();
}

/// `candor_config_reloads_total` with `outcome` of the gateway whose admin
/// listener is `admin` (0 before the first).
fn reloads(admin: SocketAddr, outcome: &str) -> u64 {
    let metrics = http_get(admin, "/metrics");
    let series = format!("candor_config_reloads_total{{outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[test]
fn a_watched_file_is_reloaded_once_per_change() {
    let (faults, upstream) = spawn_faults();
    let _faults = Reaped(faults);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    let write = |prefix: &str| {
        std::fs::write(
            &config,
            format!(
                "[gateway]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\naccess_log = false\n\
                 [upstreams.f]\ntargets = [\"{upstream}\"]\n[[routes]]\npath = \"/{prefix}/{{*rest}}\"\nupstream = \"f\"\n"
            ),
        )
        .unwrap();
    };
    write("one");
    let mut gateway = Reaped(
        candor()
            .args(["serve", "--config", config.to_str().unwrap()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (admin, log) = listening_addr_and_log(&mut gateway.0, "admin on ");
    assert_eq!(reloads(admin, "success"), 0);

    write("two");
    await_log(&log, "configuration reloaded");
    assert_eq!(reloads(admin, "success"), 1);
    write("three");
    await_log(&log, "configuration reloaded");
    assert_eq!(reloads(admin, "success"), 2);
    assert_eq!(reloads(admin, "failure"), 0);

    // A reload the gateway's own read of the file had started would be
    // logged before the process ends.
    signal(&gateway.0, "-TERM");
    assert_eq!(gateway.0.wait().unwrap().code(), Some(0));
    let rest: Vec<String> = log.iter().collect();
    assert!(
        !rest.iter().any(|l| l.contains("configuration reloaded")),
        "a reload without a change: {rest:?}"
    );
}

#[test]
fn a_second_serve_on_a_served_address_exits_2_naming_it() {
    let (faults, upstream) = spawn_faults();
    let _faults = Reaped(faults);
    let dir = tempfile::tempdir().unwrap();
    let write = |file: &str, listen: &str| {
        let path = dir.path().join(file);
        std::fs::write(
            &path,
            format!(
                "[gateway]\nlisten = \"{listen}\"\naccess_log = false\n[upstreams.f]\ntargets = [\"{upstream}\"]\n\
                 [[routes]]\npath = \"/{{*rest}}\"\nupstream = \"f\"\n"
            ),
        )
        .unwrap();
        path
    };
    let first = write("first.toml", "127.0.0.1:0");
    let mut first = Reaped(
        candor()
            .args(["serve", "--config", first.to_str().unwrap()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let addr = listening_addr(&mut first.0, "listening on ");

    let second = write("second.toml", &addr.to_string());
    let mut second = Reaped(
        candor()
            .args(["serve", "--config", second.to_str().unwrap()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = String::new();
    for line in BufReader::new(second.0.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        assert!(
            !line.contains("listening on"),
            "a second gateway started: {line}"
        );
        stderr.push_str(&line);
        stderr.push('\n');
    }
    assert_eq!(second.0.wait().unwrap().code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot listen on {addr}: the address is already in use by another process"
        )),
        "{stderr}"
    );
    assert!(http_get(addr, "/ok").starts_with("HTTP/1.1 200"));
    signal(&first.0, "-TERM");
    assert_eq!(first.0.wait().unwrap().code(), Some(0));
}

/// A TLS ClientHello that names `sni` as its server (which RFC 6066 allows
/// only for DNS names): enough for the gateway to parse it and refuse the
/// handshake (it offers no key share).
fn client_hello(sni: &str) -> Vec<u8> {
    let u16be = |n: usize| u16::try_from(n).unwrap().to_be_bytes();
    let name = sni.as_bytes();
    let mut server_name = vec![0x00, 0x00];
    server_name.extend(u16be(name.len() + 5));
    server_name.extend(u16be(name.len() + 3));
    server_name.push(0x00);
    server_name.extend(u16be(name.len()));
    server_name.extend(name);
    let mut hello = vec![0x03, 0x03];
    hello.extend([7u8; 32]);
    hello.push(0);
    hello.extend([0x00, 0x04, 0x13, 0x01, 0xc0, 0x2f]);
    hello.extend([0x01, 0x00]);
    hello.extend(u16be(server_name.len()));
    hello.extend(server_name);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend(u16be(hello.len()));
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(u16be(handshake.len()));
    record.extend(handshake);
    record
}

/// Runs a TLS gateway with `RUST_LOG` set to `rust_log` (or unset), sends
/// it a ClientHello naming an IP address as server, and returns what it
/// logged until it stopped.
fn log_of_an_ip_address_sni(rust_log: Option<&str>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        "[gateway]\nlisten = \"127.0.0.1:0\"\naccess_log = false\ntls = { cert = \"cert.pem\", key = \"key.pem\" }\n\
         [upstreams.f]\ntargets = [\"127.0.0.1:9\"]\n[[routes]]\npath = \"/{*rest}\"\nupstream = \"f\"\n",
    )
    .unwrap();
    let mut command = candor();
    command
        .args(["serve", "--no-watch", "--config", config.to_str().unwrap()])
        .stderr(Stdio::piped());
    match rust_log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    let mut gateway = Reaped(command.spawn().unwrap());
    let (addr, log) = listening_addr_and_log(&mut gateway.0, "listening on ");

    let mut tls = TcpStream::connect(addr).unwrap();
    tls.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    tls.write_all(&client_hello("127.0.0.1")).unwrap();
    // The gateway refuses the handshake and closes: the hello was read.
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).unwrap();
    assert_eq!(answer.first(), Some(&0x15), "a TLS alert: {answer:?}");

    signal(&gateway.0, "-TERM");
    assert_eq!(gateway.0.wait().unwrap().code(), Some(0));
    log.iter().collect()
}

#[test]
fn a_client_cannot_fill_the_log_with_tls_library_warnings() {
    let quiet = log_of_an_ip_address_sni(None);
    assert!(
        !quiet.iter().any(|l| l.contains("Illegal SNI")),
        "{quiet:?}"
    );
    // The warning is there to be seen when asked for.
    let asked = log_of_an_ip_address_sni(Some("info"));
    assert!(asked.iter().any(|l| l.contains("Illegal SNI")), "{asked:?}");
}

fn http_get_with(addr: SocketAddr, path: &str, header: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: test\r\n{header}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn mint(config: &Path, args: &[&str]) -> String {
    let out = candor()
        .args(["token", "-c", config.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    text.trim_end().to_owned()
}

#[test]
fn a_token_from_candor_token_is_taken_by_a_gateway_with_the_same_config() {
    let (faults, upstream) = spawn_faults();
    let _faults = Reaped(faults);
    let dir = tempfile::tempdir().unwrap();
    for direct in [true, false] {
        let config = dir.path().join(format!("gw-{direct}.toml"));
        std::fs::write(
            &config,
            format!(
                "[gateway]\nlisten = \"127.0.0.1:0\"\naccess_log = false\ndirect_path = {direct}\n\
                 [auth.jwt]\nalgorithms = [\"HS384\"]\nsecret = \"a-test-secret-of-enough-bytes-0123456789abcdef0123456789\"\n\
                 issuer = \"https://id.test\"\naudience = \"api\"\nleeway = \"5m\"\nroles_claim = \"groups\"\n\
                 [upstreams.f]\ntargets = [\"{upstream}\"]\n\
                 [[routes]]\npath = \"/admin/{{*rest}}\"\nupstream = \"f\"\nauth = \"jwt\"\nroles = [\"admin\"]\n\
                 [[routes]]\npath = \"/f/{{*rest}}\"\nupstream = \"f\"\nauth = \"jwt\"\n"
            ),
        )
        .unwrap();
        let mut child = candor()
            .args(["serve", "--no-watch", "--config", config.to_str().unwrap()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let addr = listening_addr(&mut child, "listening on ");
        let gateway = Reaped(child);

        let admin = mint(&config, &["--roles", "admin,ops", "--sub", "ada"]);
        let user = mint(&config, &["--roles", "user", "--ttl", "10m"]);
        let expired = mint(&config, &["--roles", "admin", "--expired"]);
        let bearer = |t: &str| format!("authorization: Bearer {t}");

        let ok = http_get_with(addr, "/admin/ok", &bearer(&admin));
        assert!(ok.starts_with("HTTP/1.1 200"), "direct={direct}: {ok}");
        let ok = http_get_with(addr, "/f/ok", &bearer(&user));
        assert!(ok.starts_with("HTTP/1.1 200"), "direct={direct}: {ok}");
        let denied = http_get_with(addr, "/admin/ok", &bearer(&user));
        assert!(
            denied.starts_with("HTTP/1.1 403"),
            "direct={direct}: {denied}"
        );
        let old = http_get_with(addr, "/f/ok", &bearer(&expired));
        assert!(old.starts_with("HTTP/1.1 401"), "direct={direct}: {old}");
        assert!(
            old.to_ascii_lowercase()
                .contains("www-authenticate: bearer realm=")
                && old.contains("error=\"invalid_token\""),
            "direct={direct}: {old}"
        );
        drop(gateway);
    }
}

fn get_with_id(addr: SocketAddr, path: &str, id: &str) {
    let answer = http_get_with(addr, path, &format!("x-request-id: {id}"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// The request ids in an access log file, each line checked to be whole JSON.
fn logged_ids(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a split or broken line ({e}): {line}"));
            assert_eq!(v["status"], 200, "{line}");
            v["request_id"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn the_access_log_file_is_reopened_on_usr1_without_losing_a_line_and_logs_are_plain_text() {
    let (faults, upstream) = spawn_faults();
    let _faults = Reaped(faults);
    let dir = tempfile::tempdir().unwrap();
    for direct in [true, false] {
        let config = dir.path().join(format!("gw-{direct}.toml"));
        let log = dir.path().join(format!("access-{direct}.log"));
        let rotated = dir.path().join(format!("access-{direct}.log.1"));
        std::fs::write(
            &config,
            format!(
                "[gateway]\nlisten = \"127.0.0.1:0\"\ndirect_path = {direct}\n\
                 access_log_path = \"access-{direct}.log\"\n\
                 [upstreams.f]\ntargets = [\"{upstream}\"]\n\
                 [[routes]]\npath = \"/f/{{*rest}}\"\nupstream = \"f\"\n"
            ),
        )
        .unwrap();
        let mut child = candor()
            .args(["serve", "--no-watch", "--config", config.to_str().unwrap()])
            .env_remove("NO_COLOR")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Everything on stderr up to the address: the start's log lines.
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut before = Vec::new();
        let addr: SocketAddr = loop {
            let line = lines.next().expect("serve printed its address").unwrap();
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
            before.push(line);
        };
        assert!(
            before.iter().any(|l| l.contains("INFO")),
            "a log line at start: {before:?}"
        );
        assert!(
            !before.iter().any(|l| l.contains('\u{1b}')),
            "no colour codes when stderr is not a terminal: {before:?}"
        );
        let (tx, stderr_log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let gateway = Reaped(child);

        for i in 0..40 {
            get_with_id(addr, "/f/ok", &format!("before-{i}"));
        }
        std::fs::rename(&log, &rotated).unwrap();
        signal(&gateway.0, "-USR1");
        await_log(&stderr_log, "access log reopened");
        for i in 0..40 {
            get_with_id(addr, "/f/ok", &format!("after-{i}"));
        }
        let mut gateway = gateway;
        signal(&gateway.0, "-TERM");
        assert_eq!(gateway.0.wait().unwrap().code(), Some(0));
        let mut stdout = String::new();
        gateway
            .0
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        assert!(stdout.is_empty(), "the log went to its file only: {stdout}");

        // Each worker writes its own lines in order; workers interleave.
        let want = |prefix: &str| {
            let mut ids: Vec<_> = (0..40).map(|i| format!("{prefix}-{i}")).collect();
            ids.sort();
            ids
        };
        let sorted = |mut ids: Vec<String>| {
            ids.sort();
            ids
        };
        assert_eq!(
            sorted(logged_ids(&rotated)),
            want("before"),
            "direct={direct}"
        );
        assert_eq!(sorted(logged_ids(&log)), want("after"), "direct={direct}");
    }
}

#[test]
fn a_token_signed_with_a_private_key_file_is_taken_through_the_jwks_file() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (faults, upstream) = spawn_faults();
    let _faults = Reaped(faults);
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = key.public_key_raw();
    let jwks = format!(
        r#"{{"keys":[{{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig","x":"{}","y":"{}"}}]}}"#,
        URL_SAFE_NO_PAD.encode(&raw[1..33]),
        URL_SAFE_NO_PAD.encode(&raw[33..65])
    );
    std::fs::write(dir.path().join("jwks.json"), jwks).unwrap();
    let pem = dir.path().join("signing.pem");
    std::fs::write(&pem, key.serialize_pem()).unwrap();
    for direct in [true, false] {
        let config = dir.path().join(format!("gw-{direct}.toml"));
        std::fs::write(
            &config,
            format!(
                "[gateway]\nlisten = \"127.0.0.1:0\"\naccess_log = false\ndirect_path = {direct}\n\
                 [auth.jwt]\nalgorithms = [\"ES256\"]\njwks_file = \"jwks.json\"\n\
                 [upstreams.f]\ntargets = [\"{upstream}\"]\n\
                 [[routes]]\npath = \"/f/{{*rest}}\"\nupstream = \"f\"\nauth = \"jwt\"\n"
            ),
        )
        .unwrap();
        let mut child = candor()
            .args(["serve", "--no-watch", "--config", config.to_str().unwrap()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let addr = listening_addr(&mut child, "listening on ");
        let _gateway = Reaped(child);
        // The kid comes from the JWKS file's only key.
        let token = mint(&config, &["--key", pem.to_str().unwrap()]);
        let ok = http_get_with(addr, "/f/ok", &format!("authorization: Bearer {token}"));
        assert!(ok.starts_with("HTTP/1.1 200"), "direct={direct}: {ok}");
        let expired = mint(&config, &["--key", pem.to_str().unwrap(), "--expired"]);
        let old = http_get_with(addr, "/f/ok", &format!("authorization: Bearer {expired}"));
        assert!(
            old.starts_with("HTTP/1.1 401") && old.contains("error=\"invalid_token\""),
            "direct={direct}: {old}"
        );
    }
}
