//! `[traces]`: where spans are exported (OTLP/HTTP, protobuf) and how the
//! export queue is bounded.

use std::time::Duration;

use toml::Spanned;

use crate::config::file::FileTraces;
use crate::config::model::Traces;

use super::error::ConfigError;
use super::source::Source;
use super::values::{Zero, count, duration};

/// Room for a few seconds of spans at a few thousand requests per second,
/// about 2 MB at most: a collector that stalls costs dropped spans, not
/// memory.
const DEFAULT_QUEUE: usize = 4096;
/// The OpenTelemetry SDKs' default batch size.
const DEFAULT_BATCH: usize = 512;
/// A span shows up within a second, and a busy gateway sends full batches.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The OpenTelemetry SDKs' default export timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn build_traces(
    t: Spanned<FileTraces>,
    src: &Source<'_>,
) -> Result<Traces, ConfigError> {
    let t = t.into_inner();
    let endpoint = endpoint(&t.endpoint, src)?;
    let service_name = match t.service_name {
        Some(name) if name.get_ref().trim().is_empty() => {
            return Err(src.error(name.span(), "traces.service_name", "must not be empty"));
        }
        Some(name) => name.into_inner(),
        None => "candor".to_owned(),
    };
    let queue = count(t.queue, "traces.queue", DEFAULT_QUEUE, src)?;
    let batch_span = t.batch.as_ref().map(Spanned::span);
    let batch = count(t.batch, "traces.batch", DEFAULT_BATCH, src)?;
    if let Some(span) = batch_span
        && batch > queue
    {
        return Err(src.error(
            span,
            "traces.batch",
            format!("{batch} is more than traces.queue ({queue}): a batch comes from the queue"),
        ));
    }
    Ok(Traces {
        endpoint,
        service_name,
        queue,
        batch: batch.min(queue),
        interval: duration(
            t.interval,
            "traces.interval",
            DEFAULT_INTERVAL,
            Zero::Refused,
            src,
        )?,
        timeout: duration(
            t.timeout,
            "traces.timeout",
            DEFAULT_TIMEOUT,
            Zero::Refused,
            src,
        )?,
    })
}

/// An `http://` URL with a host: the exporter speaks cleartext HTTP/1.1
/// (a collector beside the gateway, or an agent in front of a remote one).
fn endpoint(value: &Spanned<String>, src: &Source<'_>) -> Result<http::Uri, ConfigError> {
    let bad = |why: &str| {
        src.error(
            value.span(),
            "traces.endpoint",
            format!(
                "invalid endpoint {:?}: {why}; expected e.g. http://127.0.0.1:4318/v1/traces",
                value.get_ref()
            ),
        )
    };
    let uri: http::Uri = value.get_ref().parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err(bad("https is not supported (export to a local collector)")),
        _ => return Err(bad("the scheme must be http")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    Ok(uri)
}
