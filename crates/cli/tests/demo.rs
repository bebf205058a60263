//! `candor demo` as a process: the guided tour through the gateway (every
//! row of the guide's mapping table, checked), the self-audit, the audit
//! command it prints run as printed, and a clean stop on Ctrl-C.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

fn candor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_candor"))
}

#[test]
fn the_tour_answers_every_row_of_the_guides_table() {
    let out = candor()
        .args(["demo", "--listen", "127.0.0.1:0", "--tour"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for status in [
        201, 400, 415, 422, 401, 403, 404, 202, 204, 410, 500, 502, 503, 504, 429,
    ] {
        assert!(
            stdout.contains(&format!("ok   expected {status}  got {status}")),
            "{status} missing:\n{stdout}"
        );
    }
    // The client steps: candor-client retries after Retry-After, refreshes a token.
    for what in [
        "candor-client: 429, waits Retry-After",
        "candor-client: 401 expired token",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ok   expected 200  got 200  ") && l.contains(what)),
            "{what} missing:\n{stdout}"
        );
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("27 of 27 steps as expected"), "{stdout}");
    // The guide's four 5xx on its Client -> Gateway -> Auth Service ->
    // Database flow, with the fields that say which hop failed and how.
    for (status, what, fields) in [
        (
            502,
            "the auth service's database crashes",
            "       x-upstream-service: auth\n       x-failure-type: error_status\n",
        ),
        (
            502,
            "the auth service answers something invalid",
            "       x-upstream-service: auth\n       x-failure-type: invalid_response\n",
        ),
        (
            504,
            "the auth service's database hangs",
            "       x-upstream-service: auth\n       x-failure-type: timeout\n",
        ),
        (503, "the gateway is overloaded", "       retry-after: 1\n"),
    ] {
        let line = format!("ok   expected {status}  got {status}  {what}");
        let at = stdout
            .find(&line)
            .unwrap_or_else(|| panic!("{line:?} missing:\n{stdout}"));
        let after = &stdout[at..];
        let next = after.find('\n').unwrap() + 1;
        assert!(after[next..].starts_with(fields), "{what}:\n{stdout}");
    }
}

#[test]
fn the_demo_audits_itself_clean() {
    let out = candor()
        .args(["demo", "--listen", "127.0.0.1:0", "--audit"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The probes and the fault suite both ran, and found no error.
    assert!(stdout.contains("candor audit --spec"), "{stdout}");
    assert!(stdout.contains("candor audit gateway"), "{stdout}");
    assert_eq!(stdout.matches(", 0 errors,").count(), 2, "{stdout}");
    assert!(stdout.contains("9 checks: 9 passed"), "{stdout}");
    let probes = stdout
        .lines()
        .find(|l| l.contains(" checks: ") && !l.starts_with("9 checks"))
        .expect("the probes' check line");
    assert!(probes.contains(" 0 failed"), "{probes}");
}

#[test]
fn the_demo_prints_its_tour_serves_and_stops_on_ctrl_c() {
    let mut demo = candor()
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
    let mut intro = String::new();
    let mut gateway = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(url) = line.trim().strip_prefix("export GW=http://") {
            gateway = Some(url.to_owned());
        }
        intro.push_str(&line);
        intro.push('\n');
        if line.starts_with("Ctrl-C stops everything") {
            break;
        }
    }
    for needle in [
        "export USER_TOKEN=ey",
        "export ADMIN_TOKEN=ey",
        "export EXPIRED_TOKEN=ey",
        "  201  created",
        "  429  over the quota",
        "curl -si \"$GW/docs/v1/guide\"",
    ] {
        assert!(intro.contains(needle), "{needle:?} missing:\n{intro}");
    }
    // The gateway answers while the demo runs.
    let gateway = gateway.expect("the gateway's address");
    let mut stream = TcpStream::connect(&gateway).unwrap();
    stream
        .write_all(b"GET /docs/v1/guide HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 410 "), "{answer}");

    let status = Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = demo.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    demo.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("candor demo: stopped"), "{stderr}");
}

/// Starts `candor demo` and reads what it prints up to "Ctrl-C stops
/// everything": the intro text.
fn start_demo() -> (std::process::Child, String) {
    let mut demo = candor()
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
    let mut intro = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        intro.push_str(&line);
        intro.push('\n');
        if line.starts_with("Ctrl-C stops everything") {
            break;
        }
    }
    (demo, intro)
}

/// The value of every `export NAME=VALUE` line the demo printed.
fn exports(intro: &str) -> Vec<(String, String)> {
    intro
        .lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// The printed command that starts with `start`, continuation lines
/// (ending in a backslash) included, exactly as printed.
fn printed_command(intro: &str, start: &str) -> String {
    let mut lines = intro
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(start));
    let mut command = String::new();
    for line in lines.by_ref() {
        command.push_str(line);
        command.push('\n');
        if !line.ends_with('\\') {
            break;
        }
    }
    assert!(!command.is_empty(), "no {start:?} command in:\n{intro}");
    command
}

#[test]
fn the_printed_audit_command_passes_as_printed_from_any_directory() {
    let (mut demo, intro) = start_demo();
    let exports = exports(&intro);
    let names: Vec<&str> = exports.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["GW", "USER_TOKEN", "ADMIN_TOKEN", "EXPIRED_TOKEN"],
        "{intro}"
    );
    let command = printed_command(&intro, "candor audit --spec");
    // The tokens come from the exported variables, the document from the
    // demo itself: no repository path.
    assert!(command.contains("\"Bearer $USER_TOKEN\""), "{command}");
    assert!(command.contains("--spec \"$GW/"), "{command}");

    // A shell in an empty directory, the variables exported, `candor` on
    // the PATH: the command as a user pastes it.
    let dir = tempfile::tempdir().unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_candor"))
        .parent()
        .unwrap()
        .to_owned();
    let path = std::env::join_paths(
        std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(&command)
        .current_dir(dir.path())
        .env("PATH", path)
        .envs(exports.iter().map(|(n, v)| (n, v)))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);

    let _ = Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status();
    let _ = demo.wait();

    assert_eq!(out.status.code(), Some(0), "{command}\n{stdout}\n{stderr}");
    assert!(stdout.contains(", 0 errors,"), "{stdout}");
    let checks = stdout
        .lines()
        .find(|l| l.contains(" checks: "))
        .expect("the check line");
    assert!(checks.contains(" 0 failed"), "{checks}");
}
