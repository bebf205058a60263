//! Proactive pacing from the IETF RateLimit fields: when the quota a server
//! reported is spent, wait for its reset before sending instead of collecting a 429.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use candor_contract::fields::{RATELIMIT, RATELIMIT_POLICY};
use candor_contract::{RateLimit, RateLimitPolicy};
use http::HeaderMap;

/// What one server said is left of its tightest quota.
#[derive(Debug, Clone, Copy)]
struct Quota {
    remaining: u64,
    reset_at: Instant,
    /// From RateLimit-Policy: a fresh window's quota and length, when given.
    fresh: Option<(u64, Duration)>,
}

/// Remaining quota per server (scheme, host and port).
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    quotas: Mutex<HashMap<String, Quota>>,
}

fn joined(headers: &HeaderMap, name: &http::HeaderName) -> Option<String> {
    let mut out = String::new();
    for v in headers.get_all(name) {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(v.to_str().ok()?);
    }
    (!out.is_empty()).then_some(out)
}

impl Pacer {
    /// Reads an answer's RateLimit fields; malformed ones are ignored.
    pub(crate) fn observe(&self, target: &str, headers: &HeaderMap, now: Instant) {
        let Some(limits) = joined(headers, &RATELIMIT).and_then(|v| RateLimit::parse_list(&v).ok())
        else {
            return;
        };
        let Some(tightest) = limits
            .iter()
            .filter(|l| l.reset.is_some())
            .min_by_key(|l| l.remaining)
        else {
            return;
        };
        let policies = joined(headers, &RATELIMIT_POLICY)
            .and_then(|v| RateLimitPolicy::parse_list(&v).ok())
            .unwrap_or_default();
        let fresh = policies
            .iter()
            .find(|p| p.name == tightest.name)
            .and_then(|p| Some((p.quota, Duration::from_secs(p.window?))));
        let reset_at = now + Duration::from_secs(tightest.reset.unwrap_or(0));
        let mut quotas = self.quotas.lock().unwrap_or_else(|p| p.into_inner());
        let entry = quotas.entry(target.to_owned()).or_insert(Quota {
            remaining: tightest.remaining,
            reset_at,
            fresh,
        });
        // Answers to concurrent requests arrive in any order: keep the lowest count.
        if entry.reset_at <= now {
            entry.remaining = tightest.remaining;
        } else {
            entry.remaining = entry.remaining.min(tightest.remaining);
        }
        entry.reset_at = entry.reset_at.max(reset_at);
        entry.fresh = fresh.or(entry.fresh);
    }

    /// Takes one request from the quota, or says how long to wait first.
    pub(crate) fn reserve(&self, target: &str, now: Instant) -> Option<Duration> {
        let mut quotas = self.quotas.lock().unwrap_or_else(|p| p.into_inner());
        let quota = quotas.get_mut(target)?;
        if quota.reset_at <= now {
            match quota.fresh {
                // A new window: pace its quota too, until the server says more.
                Some((q, w)) if q > 0 => {
                    quota.remaining = q - 1;
                    quota.reset_at = now + w;
                }
                _ => {
                    quotas.remove(target);
                }
            }
            return None;
        }
        if quota.remaining == 0 {
            return Some(quota.reset_at - now);
        }
        quota.remaining -= 1;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn fields(r: u64, t: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            RATELIMIT.clone(),
            HeaderValue::from_str(&format!("\"pace\";r={r};t={t}")).unwrap(),
        );
        h.insert(
            RATELIMIT_POLICY.clone(),
            HeaderValue::from_static("\"pace\";q=2;w=1"),
        );
        h
    }

    #[test]
    fn a_spent_quota_waits_for_its_reset_then_paces_the_next_window() {
        let p = Pacer::default();
        let t0 = Instant::now();
        assert_eq!(p.reserve("a", t0), None, "nothing known: send");
        p.observe("a", &fields(1, 1), t0);
        assert_eq!(p.reserve("a", t0), None, "one left");
        assert_eq!(p.reserve("a", t0), Some(Duration::from_secs(1)));
        assert_eq!(p.reserve("b", t0), None, "another server");
        let later = t0 + Duration::from_secs(1);
        assert_eq!(p.reserve("a", later), None, "a new window");
        assert_eq!(p.reserve("a", later), None);
        assert_eq!(p.reserve("a", later), Some(Duration::from_secs(1)));
    }

    #[test]
    fn malformed_fields_are_ignored() {
        let p = Pacer::default();
        let mut h = HeaderMap::new();
        h.insert(RATELIMIT.clone(), HeaderValue::from_static("r=;;"));
        p.observe("a", &h, Instant::now());
        assert_eq!(p.reserve("a", Instant::now()), None);
    }
}
