//! The "bare parse" baseline of the `lint` benchmark: how fast one thread
//! can only split a JSON-lines file and parse each line into a
//! `serde_json::Value`, with no checks and no report.
//!
//! ```text
//! cargo run --release -p candor-audit --example bare_parse -- traffic.jsonl
//! ```
//!
//! Prints a sentence for people and a `key=value` line for scripts.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path] = args.as_slice() else {
        eprintln!("usage: bare_parse FILE|-");
        return ExitCode::from(2);
    };
    let input: Box<dyn Read> = if path == "-" {
        Box::new(io::stdin().lock())
    } else {
        match File::open(path) {
            Ok(file) => Box::new(file),
            Err(e) => {
                eprintln!("bare_parse: {path}: {e}");
                return ExitCode::from(2);
            }
        }
    };
    match parse_all(BufReader::with_capacity(256 * 1024, input)) {
        Ok(count) => {
            report(&count);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bare_parse: {path}: {e}");
            ExitCode::from(2)
        }
    }
}

struct Count {
    /// Non-blank lines, each one exchange.
    lines: u64,
    bytes: u64,
    /// Lines that are not valid JSON.
    invalid: u64,
    seconds: f64,
}

fn parse_all(mut reader: impl BufRead) -> io::Result<Count> {
    let started = Instant::now();
    let mut count = Count {
        lines: 0,
        bytes: 0,
        invalid: 0,
        seconds: 0.0,
    };
    let mut line = Vec::with_capacity(64 * 1024);
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        count.bytes += n as u64;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        count.lines += 1;
        match serde_json::from_slice::<serde_json::Value>(&line) {
            Ok(value) => drop(std::hint::black_box(value)),
            Err(_) => count.invalid += 1,
        }
    }
    count.seconds = started.elapsed().as_secs_f64();
    Ok(count)
}

fn report(count: &Count) {
    let seconds = count.seconds.max(1e-9);
    let lines_per_s = count.lines as f64 / seconds;
    let mb_per_s = count.bytes as f64 / 1e6 / seconds;
    println!(
        "bare_parse: {} lines, {:.1} MB in {:.2} s: {lines_per_s:.0} lines/s, {mb_per_s:.1} MB/s \
         ({} invalid)",
        count.lines,
        count.bytes as f64 / 1e6,
        count.seconds,
        count.invalid
    );
    println!(
        "lines={} bytes={} seconds={:.3} lines_per_s={lines_per_s:.0} mb_per_s={mb_per_s:.1} \
         invalid={}",
        count.lines, count.bytes, count.seconds, count.invalid
    );
}
