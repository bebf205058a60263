//! The route table: a matchit router from path patterns to the routes that
//! serve them, one route per method set.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use http::Method;
use http::header::{HeaderName, HeaderValue, LINK};

use crate::config::{Action, Config, Route};
use crate::pipeline::cors::CorsPolicy;
use crate::upstream::Pool;

/// A route, ready to serve.
pub struct RouteState {
    pub config: Route,
    /// The path pattern, for metrics and logs.
    pub label: Arc<str>,
    /// The upstream pool, for proxy routes.
    pub pool: Option<Arc<Pool>>,
    /// Deprecation / Sunset / Link headers, precomputed.
    pub deprecation_headers: Vec<(HeaderName, HeaderValue)>,
    /// The compiled request schema, on routes that validate bodies.
    pub schema: Option<Arc<crate::validate::Schema>>,
    /// The CORS policy's field values, made once.
    pub cors: Option<CorsPolicy>,
    /// `strip_prefix` as the `X-Forwarded-Prefix` value.
    pub prefix: Option<HeaderValue>,
}

impl RouteState {
    /// The path that goes upstream for the normalised `path` this route
    /// matched, when the route changes it: `strip_prefix` taken off (at a
    /// segment's end only; an empty rest is `/`), then `add_prefix` put
    /// before it. Both are checked normal paths of whole segments, so the
    /// result is normal too.
    #[inline]
    pub fn rewrite(&self, path: &str) -> Option<String> {
        let (strip, add) = (&self.config.strip_prefix, &self.config.add_prefix);
        if strip.is_none() && add.is_none() {
            return None;
        }
        self.rewritten(path)
    }

    fn rewritten(&self, path: &str) -> Option<String> {
        let (strip, add) = (&self.config.strip_prefix, &self.config.add_prefix);
        let rest = match strip {
            Some(prefix) => match path.strip_prefix(prefix.as_str()) {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
                // The route's pattern starts with the prefix, so a path it
                // matched does too; anything else goes as it is.
                _ => path,
            },
            None => path,
        };
        let add = add.as_deref().unwrap_or_default();
        Some(match (add, rest) {
            ("", "") => "/".to_owned(),
            _ => format!("{add}{rest}"),
        })
    }
}

/// The routes sharing one path pattern.
pub struct PathEntry {
    pub routes: Vec<Arc<RouteState>>,
    /// The `Allow` value for this path: every method some route serves.
    pub allow: String,
    /// Some route here has a CORS policy: the gateway answers preflights.
    pub cors: bool,
}

impl PathEntry {
    /// The route serving `method`; HEAD is served wherever GET is.
    pub fn route_for(&self, method: &Method) -> Option<&Arc<RouteState>> {
        let serves = |r: &&Arc<RouteState>, m: &Method| match &r.config.methods {
            None => true,
            Some(ms) => ms.contains(m),
        };
        self.routes.iter().find(|r| serves(r, method)).or_else(|| {
            (method == Method::HEAD)
                .then(|| self.routes.iter().find(|r| serves(r, &Method::GET)))
                .flatten()
        })
    }

    /// Whether a route here is retired (retirement applies to every method).
    pub fn retired(&self) -> Option<&Arc<RouteState>> {
        self.routes
            .iter()
            .find(|r| matches!(r.config.action, Action::Retired { .. }))
    }
}

/// Every route of a configuration.
pub struct RouteTable {
    router: matchit::Router<usize>,
    entries: Vec<PathEntry>,
}

impl RouteTable {
    /// Builds the table; the configuration was validated, so paths insert.
    pub fn build(config: &Config, pools: &BTreeMap<String, Arc<Pool>>) -> Result<Self, String> {
        let mut by_path: BTreeMap<&str, Vec<Arc<RouteState>>> = BTreeMap::new();
        let mut order = Vec::new();
        for route in &config.routes {
            let pool = match &route.action {
                Action::Proxy { upstream } => {
                    Some(pools.get(upstream).cloned().ok_or_else(|| {
                        format!("route {} names unknown upstream {upstream}", route.path)
                    })?)
                }
                Action::Retired { .. } => None,
            };
            let schema = match &route.request_schema {
                Some(doc) => Some(Arc::new(crate::validate::Schema::compile(
                    &doc.path, &doc.json,
                )?)),
                None => None,
            };
            let state = Arc::new(RouteState {
                schema,
                cors: route.cors.as_ref().map(CorsPolicy::new),
                prefix: route
                    .strip_prefix
                    .as_deref()
                    .and_then(|p| HeaderValue::from_str(p).ok()),
                label: Arc::from(route.path.as_str()),
                pool,
                deprecation_headers: deprecation_headers(route),
                config: route.clone(),
            });
            if !by_path.contains_key(route.path.as_str()) {
                order.push(route.path.as_str());
            }
            by_path.entry(route.path.as_str()).or_default().push(state);
        }
        let mut router = matchit::Router::new();
        let mut entries = Vec::new();
        for path in &order {
            let routes = by_path.remove(path).unwrap_or_default();
            router
                .insert(*path, entries.len())
                .map_err(|e| format!("route {path}: {e}"))?;
            entries.push(PathEntry {
                allow: allow_header(&routes),
                cors: routes.iter().any(|r| r.cors.is_some()),
                routes,
            });
        }
        // `/p/{*rest}` owns `/p/` and `/p` too (and `/{*rest}` owns `/`):
        // a prefix's policy covers the prefix itself, ahead of any wider
        // pattern. Only a route of that very path keeps it (the insert
        // then conflicts, and is skipped).
        for (index, path) in order.iter().enumerate() {
            for bare in catch_all_prefixes(path) {
                let _ = router.insert(bare, index);
            }
        }
        Ok(RouteTable { router, entries })
    }

    pub fn find(&self, path: &str) -> Option<&PathEntry> {
        self.router.at(path).ok().map(|m| &self.entries[*m.value])
    }
}

/// For a pattern ending in a catch-all, `/p/{*rest}`: `/p/` and `/p`.
fn catch_all_prefixes(pattern: &str) -> impl Iterator<Item = &str> {
    let prefix = pattern
        .rfind("/{*")
        .filter(|_| pattern.ends_with('}'))
        .map(|at| &pattern[..=at]);
    let bare = prefix
        .and_then(|p| p.strip_suffix('/'))
        .filter(|p| !p.is_empty());
    prefix.into_iter().chain(bare)
}

fn allow_header(routes: &[Arc<RouteState>]) -> String {
    let mut methods: Vec<String> = Vec::new();
    let mut push = |m: &str| {
        if !methods.iter().any(|known| known == m) {
            methods.push(m.to_owned());
        }
    };
    for r in routes {
        match &r.config.methods {
            Some(ms) => {
                for m in ms {
                    push(m.as_str());
                    if *m == Method::GET {
                        push("HEAD");
                    }
                }
            }
            None => {
                for m in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
                    push(m);
                }
            }
        }
    }
    methods.join(", ")
}

fn deprecation_headers(route: &Route) -> Vec<(HeaderName, HeaderValue)> {
    let Some(dep) = &route.deprecated else {
        return Vec::new();
    };
    let mut headers = Vec::new();
    let since = dep
        .since
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    if let Ok(v) = HeaderValue::from_str(&format!("@{since}")) {
        headers.push((HeaderName::from_static("deprecation"), v));
    }
    if let Some(sunset) = dep.sunset
        && let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(sunset))
    {
        headers.push((HeaderName::from_static("sunset"), v));
    }
    if let Some(link) = &dep.link
        && let Ok(v) = HeaderValue::from_str(&format!("<{link}>; rel=\"deprecation\""))
    {
        headers.push((LINK, v));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(paths: &[&str]) -> RouteTable {
        let routes: String = paths
            .iter()
            .map(|p| format!("[[routes]]\npath = \"{p}\"\nretired = {{}}\n"))
            .collect();
        let config =
            crate::config::load_str(&routes, std::path::Path::new("t.toml"), &|_| None).unwrap();
        RouteTable::build(&config, &BTreeMap::new()).unwrap()
    }

    fn owner(t: &RouteTable, path: &str) -> Option<String> {
        t.find(path).map(|e| e.routes[0].label.to_string())
    }

    #[test]
    fn a_catch_all_owns_its_prefix_with_and_without_the_slash() {
        let t = table(&["/admin/{*rest}", "/{*rest}"]);
        for path in ["/admin/x", "/admin/", "/admin"] {
            assert_eq!(owner(&t, path).as_deref(), Some("/admin/{*rest}"), "{path}");
        }
        assert_eq!(owner(&t, "/").as_deref(), Some("/{*rest}"));
        assert_eq!(owner(&t, "/adminx").as_deref(), Some("/{*rest}"));
    }

    #[test]
    fn a_route_of_its_own_keeps_the_prefix() {
        let t = table(&[
            "/docs",
            "/docs/{*rest}",
            "/a/{id}",
            "/a/{id}/{*rest}",
            "/{page}",
        ]);
        assert_eq!(owner(&t, "/docs").as_deref(), Some("/docs"));
        assert_eq!(owner(&t, "/other").as_deref(), Some("/{page}"));
        assert_eq!(owner(&t, "/docs/").as_deref(), Some("/docs/{*rest}"));
        assert_eq!(owner(&t, "/a/7").as_deref(), Some("/a/{id}"));
        assert_eq!(owner(&t, "/a/7/").as_deref(), Some("/a/{id}/{*rest}"));
        assert!(t.find("/").is_none());
        // A wider pattern does not take a catch-all's own prefix.
        let t = table(&["/{page}", "/admin/{*rest}"]);
        assert_eq!(owner(&t, "/admin").as_deref(), Some("/admin/{*rest}"));
    }
}
