//! Reads a configuration file into the validated model.
//!
//! Parse with spans, expand `${VAR}` in every string, deserialize the surface
//! (`file.rs`), then check and convert each value. Every error names the file,
//! the line and the dotted key it is about; an error inside the API keys file
//! names that file.

mod api_keys;
mod auth;
mod date;
mod env;
mod error;
mod external;
mod gateway;
mod jwt;
mod keys;
mod notices;
mod rate_limit;
mod route_edits;
mod routes;
mod source;
mod traces;
mod upstream;
mod values;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::config::file::FileConfig;
use crate::config::model::Config;

use self::auth::build_auth;
use self::gateway::build_gateway;
use self::rate_limit::build_rate_limit;
use self::routes::{build_route, check_routing};
use self::source::Source;
use self::traces::build_traces;
use self::upstream::build_upstream;

pub use date::format_rfc3339;
pub use error::ConfigError;

/// Reads, checks and converts the configuration file at `path`; `${NAME}`
/// is looked up in the process environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let bytes = std::fs::read(path).map_err(|error| ConfigError::Read {
        file: path.to_path_buf(),
        error,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        ConfigError::NotUtf8 {
            file: path.to_path_buf(),
            line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
        }
    })?;
    load_str(&text, path, &|name| std::env::var(name).ok())
}

/// Checks and converts a configuration held in memory.
///
/// `origin` names the file in messages, and relative paths (TLS files, the
/// JWKS and API keys files) are resolved against its directory. `env` resolves `${NAME}` references.
pub fn load_str(
    text: &str,
    origin: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let src = Source { text, origin };
    let file: FileConfig = src.parse(Some(env))?;
    build(file, &src)
}

fn build(file: FileConfig, src: &Source<'_>) -> Result<Config, ConfigError> {
    let gateway = build_gateway(file.gateway, src)?;
    let auth_service = file
        .auth
        .external
        .as_ref()
        .map(|e| e.get_ref().upstream.clone());
    let auth = build_auth(file.auth, src)?;
    let mut upstreams = BTreeMap::new();
    for (name, upstream) in file.upstreams {
        let upstream = build_upstream(&name, upstream, src)?;
        upstreams.insert(name, Arc::new(upstream));
    }
    if let Some(name) = auth_service
        && !upstreams.contains_key(name.get_ref())
    {
        return Err(src.error(
            name.span(),
            "auth.external.upstream",
            format!(
                "no [upstreams.{}] is defined; the auth service runs on an upstream",
                name.get_ref()
            ),
        ));
    }
    let routes = file
        .routes
        .into_iter()
        .enumerate()
        .map(|(i, route)| build_route(i, route, &upstreams, &auth, src))
        .collect::<Result<Vec<_>, _>>()?;
    check_routing(&routes, src)?;
    let mut rate_limits = BTreeMap::new();
    for (name, limit) in file.rate_limits {
        let limit = build_rate_limit(&name, limit, src)?;
        rate_limits.insert(name, Arc::new(limit));
    }
    for checked in &routes {
        if let Some(name) = &checked.rate_limit
            && !rate_limits.contains_key(name.get_ref())
        {
            return Err(src.error(
                name.span(),
                &format!("{}.rate_limit", checked.key),
                format!("no [rate_limits.{}] is defined", name.get_ref()),
            ));
        }
    }
    let traces = file
        .traces
        .map(|t| build_traces(t, src))
        .transpose()?
        .map(Arc::new);
    Ok(Config {
        traces,
        gateway,
        auth,
        upstreams,
        routes: routes.into_iter().map(|checked| checked.route).collect(),
        rate_limits,
    })
}
