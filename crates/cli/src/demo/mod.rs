//! `candor demo`: the guide's whole flow in one process.
//!
//! Client -> candor serve -> the reference auth service -> SQLite (its
//! sessions), and candor serve -> the reference accounts service -> SQLite,
//! plus a built-in faults upstream and a port that refuses connections, all on
//! loopback, configured by examples/demo.toml with the addresses and a
//! fresh JWT secret filled in. It prints the URLs, a token per role, a
//! guided tour (one curl line per row of the guide's mapping table) and
//! the `candor audit` commands that audit it, then serves until Ctrl-C.
//! `--tour` runs the tour itself and checks every status; `--audit` runs
//! those audit commands' work in-process and prints the reports.

mod tour;

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use candor_audit::http::{Client, ClientOptions};
use candor_audit::openapi::Document;
use candor_audit::probe::{self, Credentials, NoProgress, ProbeOptions};
use candor_audit::report::{self, Format};
use candor_audit::suite::{self, SuiteOptions};
use candor_contract::Severity;
use candor_gateway::{Gateway, StartOptions, config};
use candor_reference_api::{App, AuthService, Config as ApiConfig};
use clap::Args;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::Outcome;

/// The demo's gateway configuration; `${DEMO_*}` are filled in at start.
const DEMO_TOML: &str = include_str!("../../../../examples/demo.toml");

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the gateway listens.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "IP:PORT")]
    listen: SocketAddr,

    /// Run the tour, check every status, print the result and exit (1 when
    /// a status differs).
    #[arg(long, conflicts_with = "audit")]
    tour: bool,

    /// Run the audit commands the demo prints (the active probes, with the
    /// demo's tokens, and the gateway fault suite), print the reports and
    /// exit (1 when they find an error).
    #[arg(long)]
    audit: bool,
}

/// What the demo started, to print and to stop.
struct Running {
    gateway: Gateway,
    api: App,
    api_addr: SocketAddr,
    api_stop: tokio::sync::oneshot::Sender<()>,
    api_task: tokio::task::JoinHandle<io::Result<()>>,
    auth: AuthService,
    auth_addr: SocketAddr,
    auth_stop: tokio::sync::oneshot::Sender<()>,
    auth_task: tokio::task::JoinHandle<io::Result<()>>,
    faults: candor_faults::FaultsHandle,
    tokens: tour::Tokens,
}

pub fn run(args: DemoArgs) -> Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("candor-demo")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> Result<Outcome> {
    let interactive = !args.tour && !args.audit;
    // Signal handlers first, so a Ctrl-C during start-up is not lost.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let running = start(args.listen).await?;
    let base = format!("http://{}", running.gateway.addr());

    let outcome = if args.tour {
        run_tour(&base, &running.tokens).await?
    } else if args.audit {
        run_audit(&base, &running.tokens).await?
    } else {
        print_intro(&running, &base);
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("candor demo: stopping");
        Outcome::Clean
    };
    stop(running).await;
    if interactive {
        eprintln!("candor demo: stopped");
    }
    Ok(outcome)
}

async fn start(listen: SocketAddr) -> Result<Running> {
    // The accounts service, on an in-memory SQLite database: every demo
    // starts from the same state, so the tour's ids are known.
    let api = App::open(ApiConfig::in_memory())
        .await
        .context("cannot start the reference service")?;
    let api_listener = TcpListener::bind("127.0.0.1:0").await?;
    let api_addr = api_listener.local_addr()?;
    let (api_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = api.router();
    let api_task = tokio::spawn(async move {
        axum::serve(api_listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });

    // The auth service, on its own in-memory SQLite store of sessions.
    let auth = AuthService::open(candor_reference_api::AuthConfig::default())
        .await
        .context("cannot start the reference auth service")?;
    let auth_listener = TcpListener::bind("127.0.0.1:0").await?;
    let auth_addr = auth_listener.local_addr()?;
    let (auth_stop, auth_stopped) = tokio::sync::oneshot::channel::<()>();
    let router = auth.router();
    let auth_task = tokio::spawn(async move {
        axum::serve(auth_listener, router)
            .with_graceful_shutdown(async move {
                let _ = auth_stopped.await;
            })
            .await
    });

    let (faults_addr, faults) = candor_faults::spawn_local()
        .await
        .context("cannot start the faults upstream")?;
    // A port nothing listens on: bound, read, released.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;

    let secret = random_hex(32)?;
    let admin_listen = SocketAddr::new(listen.ip(), 0);
    let until = config::format_rfc3339(SystemTime::now() + Duration::from_secs(3600));
    let values = [
        ("DEMO_LISTEN", listen.to_string()),
        ("DEMO_ADMIN_LISTEN", admin_listen.to_string()),
        ("DEMO_ACCOUNTS", api_addr.to_string()),
        ("DEMO_AUTH", auth_addr.to_string()),
        ("DEMO_FAULTS", faults_addr.to_string()),
        ("DEMO_DEAD", dead.to_string()),
        ("DEMO_JWT_SECRET", secret.clone()),
        ("DEMO_MAINTENANCE_UNTIL", until),
    ];
    let lookup = |name: &str| {
        values
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };
    let config = config::load_str(DEMO_TOML, Path::new("examples/demo.toml"), &lookup)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let gateway = Gateway::start(
        config,
        StartOptions {
            access_log: None,
            config_path: None,
        },
    )
    .await
    // The error says what failed and why in one line (its source included).
    .map_err(|e| anyhow::anyhow!("{e} (--listen picks another address)"))?;

    // Ada, whom the OpenAPI document's login example names, is user 1 from
    // the start, so an audit of a fresh demo can log in as the document says.
    let client = Client::new(ClientOptions::default())?;
    tour::sign_up_ada(&format!("http://{api_addr}"), &client)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;

    let tokens = tour::Tokens {
        user: mint(&secret, "grace", &[], 24 * 3600)?,
        admin: mint(&secret, "root", &["admin"], 24 * 3600)?,
        expired: mint(&secret, "grace", &[], -3600)?,
    };
    // The auth service knows the same tokens as sessions: the user's and
    // the admin's active, the expired one ended an hour ago.
    let now = SystemTime::now();
    let day = Duration::from_secs(24 * 3600);
    let sessions = [
        (&tokens.user, "grace", &[][..], now + day),
        (&tokens.admin, "root", &["admin"][..], now + day),
        (
            &tokens.expired,
            "grace",
            &[][..],
            now - Duration::from_secs(3600),
        ),
    ];
    for (token, subject, roles, until) in sessions {
        auth.add_session(token, subject, roles, until)
            .await
            .map_err(|e| anyhow::anyhow!("cannot store a demo session: {e}"))?;
    }
    Ok(Running {
        gateway,
        api,
        api_addr,
        api_stop,
        api_task,
        auth,
        auth_addr,
        auth_stop,
        auth_task,
        faults,
        tokens,
    })
}

async fn stop(running: Running) {
    let Running {
        gateway,
        api,
        api_stop,
        api_task,
        auth,
        auth_stop,
        auth_task,
        faults,
        ..
    } = running;
    // Requests a hung auth database holds end with the switch.
    auth.switches().hang_db.set(false);
    gateway.shutdown();
    gateway.wait().await;
    let _ = auth_stop.send(());
    let _ = auth_task.await;
    let _ = api_stop.send(());
    let _ = api_task.await;
    api.shutdown().await;
    let _ = faults.shutdown().await;
}

fn print_intro(running: &Running, base: &str) {
    let admin = running
        .gateway
        .admin_addr()
        .map(|a| format!("http://{a}/metrics"))
        .unwrap_or_default();
    let text = format!(
        "\
candor demo: client -> candor serve -> auth service -> SQLite (sessions)
                    candor serve -> accounts service -> SQLite

  gateway   {base}
  metrics   {admin}
  service   http://{api} (direct, without the gateway)
  auth      http://{auth_addr}/introspect (RFC 7662; the tokens below are its sessions)

Tokens (HS256, signed with a secret made for this run):

  export GW={base}
  export USER_TOKEN={user}
  export ADMIN_TOKEN={admin_token}
  export EXPIRED_TOKEN={expired}

Ada (ada@example.com, user 1) is signed up: the OpenAPI document's login
example logs in as her. The guide's table, one curl line per row (run them
in order; the status each one answers is on the left):

{tour}
The audit of the demo (its OpenAPI document, served at $GW{spec}, and a
token per role), then the gateway fault suite; both expect no error:

  {audit}
  {suite}

Ctrl-C stops everything.
",
        api = running.api_addr,
        auth_addr = running.auth_addr,
        user = running.tokens.user,
        admin_token = running.tokens.admin,
        expired = running.tokens.expired,
        tour = tour::render(&tour::steps()),
        spec = tour::SPEC_PATH,
        audit = tour::audit_command(),
        suite = tour::suite_command(),
    );
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

async fn run_tour(base: &str, tokens: &tour::Tokens) -> Result<Outcome> {
    let client = Client::new(ClientOptions::default())?;
    let mut outcomes = tour::run(base, tokens, &client).await;
    outcomes.extend(tour::run_client_steps(base, tokens).await);
    let mut failed = 0;
    let mut out = io::stdout().lock();
    for o in &outcomes {
        let got = match &o.got {
            Ok(status) => status.to_string(),
            Err(e) => e.clone(),
        };
        let mark = if o.ok() { "ok  " } else { "FAIL" };
        if !o.ok() {
            failed += 1;
        }
        writeln!(
            out,
            "{mark} expected {}  got {got}  {}",
            o.step.status, o.step.what
        )?;
        if o.missing_header
            && let Some(header) = o.step.header
        {
            writeln!(out, "       the answer has no {header} header")?;
        }
        // The fields that say what failed, as the answer carried them.
        for (name, got, ok) in &o.fields {
            let value = got.as_deref().unwrap_or("(none)");
            let note = if *ok { "" } else { "  (not as expected)" };
            writeln!(out, "       {name}: {value}{note}")?;
        }
        for f in &o.findings {
            writeln!(out, "       {}: {}", f.rule.id, f.message)?;
        }
    }
    writeln!(
        out,
        "{} of {} steps as expected",
        outcomes.len() - failed,
        outcomes.len()
    )?;
    Ok(if failed == 0 {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}

async fn run_audit(base: &str, tokens: &tour::Tokens) -> Result<Outcome> {
    // What the printed command does: the document from the service, a
    // token per role on the gateway's `bearer` scheme.
    let spec = format!("{base}{}", tour::SPEC_PATH);
    let options = ClientOptions::default();
    let text = candor_audit::http::fetch_document(
        &spec,
        options.timeout,
        candor_audit::http::MAX_DOCUMENT,
        false,
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot fetch the document: {e}"))?;
    let doc = Document::parse(&spec, &text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let auth: Vec<String> = tour::AUDIT_ROLES
        .iter()
        .map(|(role, var)| format!("{role}@bearer=Bearer {}", tokens.get(var)))
        .collect();
    let options = ProbeOptions {
        base_url: base.to_owned(),
        credentials: Credentials::parse(auth.iter().map(String::as_str))?,
        // The demo's data is its own: deletes only touch what the run made.
        allow_destructive: true,
        burst: None,
        reveal_credentials: false,
    };
    let client = Client::new(ClientOptions::default())?;
    let mut out = io::stdout();
    writeln!(out, "export GW={base}\n{}\n", tour::audit_command())?;
    let mut sink = report::sink(Format::Table, Box::new(io::stdout()));
    let probes = probe::run(&doc, &options, &client, &NoProgress, sink.as_mut())
        .await
        .context("audit failed")?;
    drop(sink);

    writeln!(out, "\n{}\n", tour::suite_command())?;
    let suite_options = SuiteOptions {
        faults_prefix: "/dependencies".to_owned(),
        dead_prefix: "/payments".to_owned(),
        ..SuiteOptions::new(base)
    };
    let mut sink = report::sink(Format::Table, Box::new(io::stdout()));
    let suite = suite::run(&client, &suite_options, sink.as_mut())
        .await
        .map_err(|e| anyhow::anyhow!("audit gateway: {e}"))?;
    sink.finish(&suite.summary)?;
    drop(sink);
    out.flush()?;
    let clean = !probes.summary.reaches(Severity::Error) && !suite.summary.reaches(Severity::Error);
    Ok(if clean {
        Outcome::Clean
    } else {
        Outcome::Findings
    })
}

/// A signed HS256 token for the demo's issuer and audience, valid for
/// `ttl` seconds from now (negative: already expired).
fn mint(secret: &str, subject: &str, roles: &[&str], ttl: i64) -> Result<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let claims = serde_json::json!({
        "iss": "candor-demo",
        "aud": "accounts",
        "sub": subject,
        "roles": roles,
        "iat": now.min(now + ttl),
        "exp": now + ttl,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .context("cannot sign a demo token")
}

/// `n` random bytes, hex-encoded.
fn random_hex(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
