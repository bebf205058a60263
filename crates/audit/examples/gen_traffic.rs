//! Generates realistic recorded traffic, as JSON lines, for the `lint`
//! benchmark (bench/lint.sh).
//!
//! ```text
//! cargo run --release -p candor-audit --example gen_traffic -- --bytes 1G --out traffic.jsonl
//! ```
//!
//! Mostly `200` GETs with JSON bodies of 200 B to 2 KB, plus creates (201,
//! some without Location), deletes (204, a few 200 `{}`), 401 with and
//! without a challenge, 404 problem+json, 429 with and without Retry-After,
//! 400 and 500, and a few 200 `{"success":false}`: about one exchange in
//! twenty breaks a rule. The output depends only on `--seed` and `--bytes`.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use candor_contract::fields::{RATELIMIT, RATELIMIT_POLICY, X_REQUEST_ID};

const USAGE: &str = "usage: gen_traffic [--bytes N[k|M|G]] [--out FILE|-] [--seed N]
  --bytes  stop after the line that reaches this size (default 100M; k/M/G are powers of 1000)
  --out    where to write the JSON lines (default -, standard output)
  --seed   seed of the generator (default 1)";

struct Args {
    bytes: u64,
    out: String,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        bytes: 100_000_000,
        out: "-".to_owned(),
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--bytes" => args.bytes = parse_size(&value)?,
            "--out" => args.out = value,
            "--seed" => {
                args.seed = value
                    .parse()
                    .map_err(|_| format!("--seed: not a number: {value:?}"))?;
            }
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    Ok(args)
}

/// `1000000`, `500k`, `100M` or `1G` (powers of 1000, like the MB/s the
/// benchmark reports).
fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let scale = match unit {
        "" => 1,
        "k" | "K" | "kB" | "KB" => 1_000,
        "M" | "MB" => 1_000_000,
        "G" | "GB" => 1_000_000_000,
        _ => return Err(format!("--bytes: unknown unit in {text:?}")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("--bytes: not a size: {text:?}"))?;
    n.checked_mul(scale)
        .ok_or_else(|| format!("--bytes: too large: {text:?}"))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("gen_traffic: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match generate(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_traffic: {}: {e}", args.out);
            ExitCode::FAILURE
        }
    }
}

fn generate(args: &Args) -> io::Result<()> {
    let sink: Box<dyn Write> = if args.out == "-" {
        Box::new(io::stdout().lock())
    } else {
        Box::new(File::create(&args.out)?)
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    let started = Instant::now();
    let mut generator = Generator::new(args.seed);
    let (mut written, mut lines) = (0u64, 0u64);
    while written < args.bytes {
        let line = generator.exchange();
        out.write_all(line)?;
        written += line.len() as u64;
        lines += 1;
    }
    out.flush()?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "gen_traffic: {lines} exchanges, {written} bytes in {seconds:.2} s ({:.0} MB/s) to {}",
        written as f64 / 1e6 / seconds.max(1e-9),
        args.out
    );
    Ok(())
}

/// SplitMix64: tiny, fast and good enough to vary test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

const HOST: &str = "https://api.example.com";
const RESOURCES: &[&str] = &["users", "orders", "products", "invoices", "teams"];
const FIRST: &[&str] = &[
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim",
];
const LAST: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman",
];
const WORDS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa",
];
const STATES: &[&str] = &["pending", "paid", "shipped", "delivered", "cancelled"];
const AGENTS: &[&str] = &[
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    "curl/8.9.1",
    "Go-http-client/2.0",
];

/// Builds one exchange at a time into a reused buffer.
struct Generator {
    rng: Rng,
    line: Vec<u8>,
    body: String,
    next_id: u64,
}

impl Generator {
    fn new(seed: u64) -> Self {
        Generator {
            rng: Rng(seed),
            line: Vec::with_capacity(8192),
            body: String::with_capacity(4096),
            next_id: 1000,
        }
    }

    /// The next exchange, as one JSON line ending in `\n`.
    fn exchange(&mut self) -> &[u8] {
        self.line.clear();
        let resource = self.rng.pick(RESOURCES);
        let id = self.rng.range(1, 99_999);
        let roll = self.rng.next() % 1000;
        match roll {
            0..760 => self.get_ok(resource, id),
            760..810 => self.create(resource, roll >= 800),
            810..845 => self.delete(resource, id, roll >= 840),
            845..870 => self.unauthorized(resource, id, roll >= 860),
            870..910 => self.not_found(resource, id),
            910..935 => self.too_many(resource, id, roll >= 925),
            935..955 => self.server_error(resource, id, roll >= 950),
            955..970 => self.fake_success(resource),
            970..985 => self.bad_request(resource),
            _ => self.update(resource, id),
        }
        self.line.push(b'\n');
        &self.line
    }

    fn get_ok(&mut self, resource: &str, id: u64) {
        let target = self.rng.range(200, 2048) as usize;
        let url = if self.rng.chance(300) {
            self.item_body(resource, id, target);
            format!("{HOST}/v1/{resource}/{id}")
        } else {
            let page = self.rng.range(1, 40);
            self.list_body(resource, page, target);
            format!("{HOST}/v1/{resource}?page={page}&per_page=20")
        };
        self.request("GET", &url, &[], "");
        self.response(200, &[("content-type", "application/json")], true);
    }

    fn create(&mut self, resource: &str, without_location: bool) {
        let id = self.next_id;
        self.next_id += 1;
        let target = self.rng.range(200, 600) as usize;
        self.item_body(resource, id, target);
        let request_body = self.body.clone();
        self.request(
            "POST",
            &format!("{HOST}/v1/{resource}"),
            &[("content-type", "application/json")],
            &request_body,
        );
        let location = format!("/v1/{resource}/{id}");
        let mut headers = vec![("content-type", "application/json")];
        if !without_location {
            headers.push(("location", &location));
        }
        self.response(201, &headers, true);
    }

    fn delete(&mut self, resource: &str, id: u64, answered_200_empty: bool) {
        self.request("DELETE", &format!("{HOST}/v1/{resource}/{id}"), &[], "");
        self.body.clear();
        if answered_200_empty {
            self.body.push_str("{}");
            self.response(200, &[("content-type", "application/json")], true);
        } else {
            self.response(204, &[], false);
        }
    }

    fn unauthorized(&mut self, resource: &str, id: u64, without_challenge: bool) {
        self.request("GET", &format!("{HOST}/v1/{resource}/{id}"), &[], "");
        self.problem(401, "Unauthorized", "The access token expired.");
        let mut headers = vec![("content-type", "application/problem+json")];
        if !without_challenge {
            headers.push((
                "www-authenticate",
                "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"expired\"",
            ));
        }
        self.response(401, &headers, true);
    }

    fn not_found(&mut self, resource: &str, id: u64) {
        self.request("GET", &format!("{HOST}/v1/{resource}/{id}"), &[], "");
        self.problem(404, "Not Found", &format!("No {resource} with id {id}."));
        self.response(404, &[("content-type", "application/problem+json")], true);
    }

    fn too_many(&mut self, resource: &str, id: u64, without_retry_after: bool) {
        self.request("GET", &format!("{HOST}/v1/{resource}/{id}"), &[], "");
        self.problem(
            429,
            "Too Many Requests",
            "Quota of 100 requests per minute used up.",
        );
        let retry = self.rng.range(1, 60).to_string();
        let limit = format!("\"default\";r=0;t={retry}");
        let mut headers = vec![
            ("content-type", "application/problem+json"),
            (RATELIMIT_POLICY.as_str(), "\"default\";q=100;w=60"),
            (RATELIMIT.as_str(), limit.as_str()),
        ];
        if !without_retry_after {
            headers.push(("retry-after", &retry));
        }
        self.response(429, &headers, true);
    }

    fn server_error(&mut self, resource: &str, id: u64, as_html: bool) {
        self.request("GET", &format!("{HOST}/v1/{resource}/{id}"), &[], "");
        if as_html {
            self.body.clear();
            self.body
                .push_str("<html><body><h1>500 Internal Server Error</h1></body></html>");
            self.response(500, &[("content-type", "text/html")], true);
        } else {
            self.problem(
                500,
                "Internal Server Error",
                "An unexpected error occurred.",
            );
            self.response(500, &[("content-type", "application/problem+json")], true);
        }
    }

    fn fake_success(&mut self, resource: &str) {
        self.request("GET", &format!("{HOST}/v1/{resource}/search?q=x"), &[], "");
        self.body.clear();
        self.body.push_str(
            "{\"success\":false,\"error\":{\"code\":\"E_LOOKUP\",\"message\":\"lookup failed\"}}",
        );
        self.response(200, &[("content-type", "application/json")], true);
    }

    fn bad_request(&mut self, resource: &str) {
        self.request(
            "POST",
            &format!("{HOST}/v1/{resource}"),
            &[("content-type", "application/json")],
            "{\"name\":42}",
        );
        self.problem(400, "Bad Request", "The request body is invalid.");
        self.body.pop();
        self.body.push_str(
            ",\"errors\":[{\"pointer\":\"/name\",\"message\":\"must be a string\"},\
             {\"pointer\":\"/email\",\"message\":\"is required\"}]}",
        );
        self.response(400, &[("content-type", "application/problem+json")], true);
    }

    fn update(&mut self, resource: &str, id: u64) {
        let target = self.rng.range(200, 800) as usize;
        self.item_body(resource, id, target);
        let request_body = self.body.clone();
        let method = if self.rng.chance(500) { "PUT" } else { "PATCH" };
        self.request(
            method,
            &format!("{HOST}/v1/{resource}/{id}"),
            &[("content-type", "application/json")],
            &request_body,
        );
        self.response(200, &[("content-type", "application/json")], true);
    }

    /// Writes `{"request":{…}` with the usual client headers plus `extra`.
    fn request(&mut self, method: &str, url: &str, extra: &[(&str, &str)], body: &str) {
        let agent = self.rng.pick(AGENTS);
        let token = format!(
            "eyJhbGciOiJSUzI1NiJ9.{:016x}.{:016x}",
            self.rng.next(),
            self.rng.next()
        );
        let request_id = format!("{:016x}", self.rng.next());
        self.line.extend_from_slice(b"{\"request\":{\"method\":");
        push_json_str(&mut self.line, method);
        self.line.extend_from_slice(b",\"url\":");
        push_json_str(&mut self.line, url);
        self.line.extend_from_slice(b",\"headers\":{");
        let mut headers = vec![
            ("accept", "application/json"),
            ("user-agent", agent),
            (X_REQUEST_ID.as_str(), request_id.as_str()),
        ];
        let bearer = format!("Bearer {token}");
        if self.rng.chance(900) {
            headers.push(("authorization", &bearer));
        }
        headers.extend_from_slice(extra);
        push_headers(&mut self.line, &headers);
        self.line.extend_from_slice(b"}");
        if !body.is_empty() {
            self.line.extend_from_slice(b",\"body\":");
            push_json_str(&mut self.line, body);
        }
        self.line.extend_from_slice(b"},");
    }

    /// Writes `"response":{…}}` with the current body (when `with_body`).
    fn response(&mut self, status: u16, headers: &[(&str, &str)], with_body: bool) {
        let length = if with_body { self.body.len() } else { 0 };
        let length = length.to_string();
        let mut all = headers.to_vec();
        all.push(("content-length", &length));
        all.push(("cache-control", "no-store"));
        let _ = write!(
            self.line,
            "\"response\":{{\"status\":{status},\"headers\":{{"
        );
        push_headers(&mut self.line, &all);
        self.line.push(b'}');
        if with_body {
            self.line.extend_from_slice(b",\"body\":");
            push_json_str(&mut self.line, &self.body);
        }
        self.line.extend_from_slice(b"}}");
    }

    /// An RFC 9457 problem as the body.
    fn problem(&mut self, status: u16, title: &str, detail: &str) {
        self.body.clear();
        let trace = self.rng.next();
        let _ = write!(
            self.body,
            "{{\"type\":\"about:blank\",\"title\":\"{title}\",\"status\":{status},\
             \"detail\":\"{detail}\",\"instance\":\"/errors/{trace:016x}\"}}"
        );
    }

    /// One resource as the body, padded with a description to about `target`
    /// bytes.
    fn item_body(&mut self, resource: &str, id: u64, target: usize) {
        self.body.clear();
        self.item(resource, id);
        self.body.pop();
        self.body.push_str(",\"description\":\"");
        while self.body.len() + 3 < target {
            let word = self.rng.pick(WORDS);
            self.body.push_str(word);
            self.body.push(' ');
        }
        self.body.pop();
        self.body.push_str("\"}");
    }

    /// A page of resources as the body, about `target` bytes.
    fn list_body(&mut self, resource: &str, page: u64, target: usize) {
        self.body.clear();
        self.body.push_str("{\"data\":[");
        loop {
            let id = self.rng.range(1, 99_999);
            self.item(resource, id);
            if self.body.len() + 60 >= target {
                break;
            }
            self.body.push(',');
        }
        let total = self.rng.range(page * 20, 2000);
        let _ = write!(
            self.body,
            "],\"page\":{page},\"per_page\":20,\"total\":{total}}}"
        );
    }

    /// Appends one resource object to the body.
    fn item(&mut self, resource: &str, id: u64) {
        let (first, last) = (self.rng.pick(FIRST), self.rng.pick(LAST));
        let (month, day) = (self.rng.range(1, 12), self.rng.range(1, 28));
        let (hour, minute) = (self.rng.range(0, 23), self.rng.range(0, 59));
        let created = format!("2025-{month:02}-{day:02}T{hour:02}:{minute:02}:00Z");
        let _ = match resource {
            "users" => write!(
                self.body,
                "{{\"id\":{id},\"name\":\"{first} {last}\",\"email\":\"{}.{}@example.com\",\
                 \"active\":{},\"roles\":[\"reader\",\"{}\"],\"created_at\":\"{created}\"}}",
                first.to_lowercase(),
                last.to_lowercase(),
                self.rng.chance(900),
                self.rng.pick(WORDS),
            ),
            "orders" => write!(
                self.body,
                "{{\"id\":{id},\"customer\":{{\"id\":{},\"name\":\"{first} {last}\"}},\
                 \"state\":\"{}\",\"total\":{{\"amount\":\"{}.{:02}\",\"currency\":\"EUR\"}},\
                 \"created_at\":\"{created}\"}}",
                self.rng.range(1, 99_999),
                self.rng.pick(STATES),
                self.rng.range(1, 999),
                self.rng.range(0, 99),
            ),
            _ => write!(
                self.body,
                "{{\"id\":{id},\"name\":\"{} {}\",\"owner\":\"{first} {last}\",\
                 \"tags\":[\"{}\",\"{}\"],\"version\":{},\"created_at\":\"{created}\"}}",
                self.rng.pick(WORDS),
                self.rng.pick(WORDS),
                self.rng.pick(WORDS),
                self.rng.pick(WORDS),
                self.rng.range(1, 30),
            ),
        };
    }
}

fn push_headers(line: &mut Vec<u8>, headers: &[(&str, &str)]) {
    for (i, (name, value)) in headers.iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        push_json_str(line, name);
        line.push(b':');
        push_json_str(line, value);
    }
}

/// Appends `s` as a JSON string.
fn push_json_str(line: &mut Vec<u8>, s: &str) {
    line.push(b'"');
    for &byte in s.as_bytes() {
        match byte {
            b'"' => line.extend_from_slice(b"\\\""),
            b'\\' => line.extend_from_slice(b"\\\\"),
            b'\n' => line.extend_from_slice(b"\\n"),
            0..0x20 => {
                let _ = write!(line, "\\u{byte:04x}");
            }
            _ => line.push(byte),
        }
    }
    line.push(b'"');
}
