//! A configuration reload (SIGHUP, the admin endpoint, the file watcher):
//! load, validate and swap in atomically, or keep serving the old one.

use std::path::Path;
use std::sync::Arc;

use crate::config::{self, Config};
use crate::metrics::OutcomeLabels;
use crate::state::{Runtime, Shared};

/// Loads, validates and swaps in the configuration file; on any error the
/// old configuration keeps serving.
pub fn reload_file(shared: &Shared, path: &Path) -> Result<(), String> {
    let outcome = match config::load_file(path) {
        Ok(config) => reload(shared, config),
        Err(e) => {
            count_reload(shared, false);
            Err(e.to_string())
        }
    };
    if let Err(e) = &outcome {
        tracing::warn!(error = %e, "configuration reload rejected; the previous configuration keeps serving");
    }
    outcome
}

pub(crate) fn reload(shared: &Shared, config: Config) -> Result<(), String> {
    let current = shared.runtime.load_full();
    let outcome =
        Runtime::build(config, Some(&current), shared.workers, &shared.metrics).map(|runtime| {
            // Pools the new configuration replaced keep serving the responses
            // still streaming from them; their idle connections close now.
            for (name, old) in &current.pools {
                if !runtime
                    .pools
                    .get(name)
                    .is_some_and(|new| Arc::ptr_eq(new, old))
                {
                    old.close_idle();
                }
            }
            shared.runtime.store(Arc::new(runtime));
        });
    count_reload(shared, outcome.is_ok());
    if outcome.is_ok() {
        tracing::info!("configuration reloaded");
    }
    outcome
}

fn count_reload(shared: &Shared, ok: bool) {
    let outcome = if ok { "success" } else { "failure" };
    shared
        .metrics
        .reloads
        .get_or_create(&OutcomeLabels { outcome })
        .inc();
}
