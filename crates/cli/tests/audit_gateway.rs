//! `candor audit gateway` as a process: the fault suite against `candor
//! serve` in front of `candor faults` (the contract holds), and against
//! `candor faults` alone (resets and garbage reach the client).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

fn candor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_candor"))
}

/// A child process that is killed and reaped when the test ends, however
/// it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` with stderr piped and reads stderr until the line that
/// says where it listens; later lines are drained on a thread so the child
/// never blocks on a full pipe.
fn start(mut command: Command, marker: &str) -> (Running, SocketAddr) {
    let mut child = Running(
        command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the candor binary starts"),
    );
    let stderr = child.0.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    loop {
        let line = match lines.next() {
            Some(Ok(line)) => line,
            _ => panic!(
                "the process ended before {marker:?}; stderr:\n{}",
                seen.join("\n")
            ),
        };
        if let Some(rest) = line.split(marker).nth(1) {
            let addr = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_start_matches("http://")
                .parse()
                .unwrap_or_else(|e| panic!("no address in {line:?}: {e}"));
            std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
            return (child, addr);
        }
        seen.push(line);
    }
}

fn start_faults() -> (Running, SocketAddr) {
    let mut command = candor();
    command.args(["faults", "--listen", "127.0.0.1:0"]);
    start(command, "listening on ")
}

/// A loopback port with nothing listening on it (bound, then released).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn audit(url: &str, extra: &[&str]) -> (Output, Value) {
    let out = candor()
        .args(["audit", "gateway", "--url", url, "--format", "json"])
        .args(extra)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, report)
}

fn rules_found(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn candor_serve_passes_the_fault_suite() {
    let (_faults, upstream) = start_faults();
    let dead = closed_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    // The upstream wait is bounded by connect + response timeout, well under
    // the suite's slow delay.
    std::fs::write(
        &config,
        format!(
            "[gateway]\nlisten = \"127.0.0.1:0\"\naccess_log = false\nshutdown_grace = \"1s\"\n\
             [upstreams.faults]\ntargets = [\"{upstream}\"]\nconnect_timeout = \"500ms\"\nresponse_timeout = \"300ms\"\n\
             [upstreams.dead]\ntargets = [\"127.0.0.1:{dead}\"]\n\
             [[routes]]\npath = \"/f/{{*rest}}\"\nupstream = \"faults\"\n\
             [[routes]]\npath = \"/dead/{{*rest}}\"\nupstream = \"dead\"\n"
        ),
    )
    .unwrap();
    let mut command = candor();
    command.args(["serve", "--no-watch", "--config", config.to_str().unwrap()]);
    let (_gateway, addr) = start(command, "listening on ");

    let url = format!("http://{addr}");
    let (out, report) = audit(&url, &["--slow-ms", "4000"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "findings: {:#}\nstderr:\n{stderr}",
        report["findings"]
    );
    assert_eq!(report["summary"]["errors"], 0, "{report:#}");
    assert_eq!(report["summary"]["exchanges"], 8, "{report:#}");
    // candor names the upstream and the failure and answers problem+json.
    assert_eq!(report["summary"]["warnings"], 0, "{report:#}");
    assert!(stderr.contains("candor: score 9/9"), "{stderr}");
    assert!(
        stderr.contains("candor: scenario refused: pass: 502:"),
        "{stderr}"
    );

    // A prefix the gateway does not route is a usage error, not findings.
    let out = candor()
        .args([
            "audit",
            "gateway",
            "--url",
            &url,
            "--faults-prefix",
            "/nope",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does the gateway route /nope"), "{stderr}");
}

#[test]
fn faults_without_a_gateway_fail_the_suite() {
    let (_faults, upstream) = start_faults();
    let url = format!("http://{upstream}");
    // No gateway: nothing times out, so the slow scenario only needs to be
    // shorter than the client's limit.
    let (out, report) = audit(&url, &["--slow-ms", "200", "--timeout", "10s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{report:#}\nstderr:\n{stderr}");
    let found = rules_found(&report);
    for rule in [
        "fault.refused",
        "fault.reset",
        "fault.garbage",
        "fault.slow",
        "fault.upstream_identity",
    ] {
        assert!(found.iter().any(|r| r == rule), "{rule} not in {found:?}");
    }
    // The upstream's own statuses and its broken bodies reach the client as
    // they are, which is what those scenarios want.
    for rule in ["fault.status_passthrough", "fault.truncated"] {
        assert!(!found.iter().any(|r| r == rule), "{rule} in {found:?}");
    }
    assert!(
        stderr.contains("candor: scenario reset: FAIL: no reply:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("candor: scenario truncate: pass: 200 aborted:"),
        "{stderr}"
    );
    assert!(stderr.contains("candor: score 4/9"), "{stderr}");
}

#[test]
fn an_unreachable_gateway_is_a_usage_error() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let out = candor()
        .args(["audit", "gateway", "--url", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach the gateway"), "{stderr}");
}

#[test]
fn a_timeout_not_longer_than_the_slow_delay_is_a_usage_error() {
    let out = candor()
        .args([
            "audit",
            "gateway",
            "--url",
            "http://127.0.0.1:9",
            "--slow-ms",
            "5000",
            "--timeout",
            "5s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--slow-ms"));
}
