//! Rate limits: GCRA per key, in memory (governor) or in Redis (one Lua
//! script on Redis's clock, so gateways sharing a Redis share one quota).
//!
//! Every decision carries the draft-11 `RateLimit-Policy` and `RateLimit`
//! fields; a denial carries the Retry-After the quota implies.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use candor_contract::fields::{RATELIMIT, RATELIMIT_POLICY};
use candor_contract::{RateLimit as RateLimitField, RateLimitPolicy};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::OnceCell;

use crate::auth::{Identity, Scheme};
use crate::config::{OnStoreError, RateKey, RateLimit, RateStore};

/// The outcome of one check.
pub enum Decision {
    Allowed {
        fields: Vec<(HeaderName, HeaderValue)>,
    },
    Limited {
        retry_after: Duration,
        fields: Vec<(HeaderName, HeaderValue)>,
    },
    /// The store failed; `on_store_error` says what follows.
    StoreFailed(OnStoreError),
}

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// One policy, ready to check requests.
pub struct Limiter {
    pub config: Arc<RateLimit>,
    backend: Backend,
    policy_value: HeaderValue,
    /// The policy's name as a Structured Fields item, the start of every
    /// `RateLimit` value.
    name_item: String,
    /// Store reachable at the last attempt (for /readyz and metrics).
    pub store_healthy: AtomicBool,
    checks: AtomicU64,
}

enum Backend {
    Memory(Keyed),
    Redis {
        client: redis::Client,
        conn: OnceCell<redis::aio::ConnectionManager>,
        script: redis::Script,
    },
}

impl Limiter {
    pub fn build(config: Arc<RateLimit>) -> Result<Self, String> {
        let burst = NonZeroU32::new(config.requests).ok_or("requests must be > 0")?;
        let interval = config.per / config.requests;
        let backend = match &config.store {
            RateStore::Memory => {
                let quota = Quota::with_period(interval)
                    .ok_or("the rate is too high to represent")?
                    .allow_burst(burst);
                Backend::Memory(
                    RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
                )
            }
            RateStore::Redis(url) => Backend::Redis {
                client: redis::Client::open(url.as_str())
                    .map_err(|e| format!("rate limit {}: {e}", config.name))?,
                conn: OnceCell::new(),
                script: redis::Script::new(include_str!("gcra.lua")),
            },
        };
        let policy = RateLimitPolicy {
            name: config.name.clone(),
            quota: u64::from(config.requests),
            quota_unit: None,
            window: Some(config.per.as_secs().max(1)),
            partition_key: None,
        };
        let policy_value = HeaderValue::from_str(&RateLimitPolicy::to_header_value(&[policy]))
            .map_err(|e| format!("rate limit {}: {e}", config.name))?;
        // The contract's serializer, once, for the part that never changes.
        let sample =
            RateLimitField::to_header_value(&[RateLimitField::new(config.name.clone(), 0)]);
        let name_item = sample
            .strip_suffix(";r=0")
            .ok_or_else(|| format!("rate limit {}: cannot serialize its name", config.name))?
            .to_owned();
        Ok(Limiter {
            config,
            backend,
            policy_value,
            name_item,
            store_healthy: AtomicBool::new(true),
            checks: AtomicU64::new(0),
        })
    }

    /// The key this request counts under.
    /// The request field this limit counts by, when it counts by one.
    pub fn key_header(&self) -> Option<&HeaderName> {
        match &self.config.key {
            RateKey::Header(name) => Some(name),
            _ => None,
        }
    }

    pub fn key(&self, identity: Option<&Identity>, peer: IpAddr, headers: &HeaderMap) -> String {
        // `prefix + subject` without the formatting machinery: this runs
        // for every request of a limited route.
        let prefixed = |prefix: &str, subject: &str| {
            let mut key = String::with_capacity(prefix.len() + subject.len());
            key.push_str(prefix);
            key.push_str(subject);
            key
        };
        match &self.config.key {
            RateKey::Subject => {
                identity.map_or_else(|| format!("ip:{peer}"), |id| prefixed("sub:", &id.subject))
            }
            RateKey::Ip => format!("ip:{peer}"),
            RateKey::ApiKey => match identity {
                Some(id) if id.scheme == Scheme::ApiKey => prefixed("key:", &id.subject),
                _ => format!("ip:{peer}"),
            },
            RateKey::Header(name) => format!(
                "hdr:{}",
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
            ),
        }
    }

    /// Counts one request against `key`.
    pub async fn check(&self, key: String) -> Decision {
        match &self.backend {
            Backend::Memory(limiter) => {
                self.prune(limiter);
                let interval = self.config.per / self.config.requests;
                match limiter.check_key(&key) {
                    Ok(snapshot) => {
                        let remaining = snapshot.remaining_burst_capacity();
                        let used = self.config.requests.saturating_sub(remaining);
                        let reset = interval * used;
                        Decision::Allowed {
                            fields: self.fields(u64::from(remaining), reset),
                        }
                    }
                    Err(not_until) => {
                        let wait = not_until.wait_time_from(limiter.clock().now());
                        Decision::Limited {
                            retry_after: wait,
                            fields: self.fields(0, wait),
                        }
                    }
                }
            }
            Backend::Redis {
                client,
                conn,
                script,
            } => {
                let outcome = self.redis_check(client, conn, script, &key).await;
                self.store_healthy.store(outcome.is_ok(), Ordering::Relaxed);
                match outcome {
                    Ok((true, remaining, _, reset)) => Decision::Allowed {
                        fields: self.fields(remaining, reset),
                    },
                    Ok((false, _, retry, reset)) => Decision::Limited {
                        retry_after: retry,
                        fields: self.fields(0, reset.max(retry)),
                    },
                    Err(e) => {
                        tracing::warn!(limit = %self.config.name, error = %e, "rate-limit store failed");
                        Decision::StoreFailed(self.config.on_store_error)
                    }
                }
            }
        }
    }

    async fn redis_check(
        &self,
        client: &redis::Client,
        conn: &OnceCell<redis::aio::ConnectionManager>,
        script: &redis::Script,
        key: &str,
    ) -> Result<(bool, u64, Duration, Duration), redis::RedisError> {
        let manager = conn
            .get_or_try_init(|| async { redis::aio::ConnectionManager::new(client.clone()).await })
            .await?;
        let mut manager = manager.clone();
        let interval_us =
            u64::try_from((self.config.per / self.config.requests).as_micros()).unwrap_or(u64::MAX);
        let tau_us = interval_us.saturating_mul(u64::from(self.config.requests));
        // A hash tag keeps the key on one slot should Redis be a cluster.
        let bucket = format!("candor:rl:{{{}}}:{key}", self.config.name);
        let reply: Vec<i64> = script
            .key(bucket)
            .arg(interval_us)
            .arg(tau_us)
            .invoke_async(&mut manager)
            .await?;
        let at = |i: usize| u64::try_from(reply.get(i).copied().unwrap_or(0)).unwrap_or(0);
        Ok((
            at(0) == 1,
            at(1),
            Duration::from_micros(at(2)),
            Duration::from_micros(at(3)),
        ))
    }

    /// `RateLimit-Policy` and `RateLimit` for a decision.
    ///
    /// On every request of a limited route: the `RateLimit` value is the
    /// name item serialized once, then the two integers, written directly
    /// (what `RateLimit::to_header_value` gives, without its general
    /// serializer; a test holds them equal).
    fn fields(&self, remaining: u64, reset: Duration) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::with_capacity(2);
        out.push((RATELIMIT_POLICY.clone(), self.policy_value.clone()));
        if let Some(v) = self.ratelimit_value(remaining, ceil_secs(reset)) {
            out.push((RATELIMIT.clone(), v));
        }
        out
    }

    /// `RateLimit`: the name item, then `;r=REMAINING;t=RESET`, written on
    /// the stack and stored in one allocation (this runs for every request
    /// of a limited route).
    fn ratelimit_value(&self, remaining: u64, reset_secs: u64) -> Option<HeaderValue> {
        use std::io::Write as _;
        // Structured Fields integers stop at 15 digits.
        const SF_INTEGER_MAX: u64 = 999_999_999_999_999;
        let mut params = [0u8; 40];
        let len = {
            let mut rest = &mut params[..];
            write!(
                rest,
                ";r={};t={}",
                remaining.min(SF_INTEGER_MAX),
                reset_secs.min(SF_INTEGER_MAX)
            )
            .ok()?;
            40 - rest.len()
        };
        crate::field_value::shared_value(&[self.name_item.as_bytes(), &params[..len]])
    }

    /// Keeps keyed memory bounded: every 4096 checks, forget idle keys.
    fn prune(&self, limiter: &Keyed) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(name: &str) -> Limiter {
        Limiter::build(Arc::new(RateLimit {
            name: name.to_owned(),
            requests: 10,
            per: Duration::from_secs(1),
            key: RateKey::Ip,
            store: RateStore::Memory,
            on_store_error: OnStoreError::Allow,
        }))
        .unwrap()
    }

    #[test]
    fn the_direct_ratelimit_value_is_the_contract_serializers() {
        for name in ["bench", "with \"quotes\" and \\", "nön-ascii", ""] {
            let l = limiter(name);
            for (remaining, reset) in [(0, 0), (7, 1), (u64::MAX, u64::MAX), (10, 60)] {
                let expected = RateLimitField::to_header_value(&[RateLimitField {
                    name: name.to_owned(),
                    remaining,
                    reset: Some(reset),
                    partition_key: None,
                }]);
                let value = l.ratelimit_value(remaining, reset).unwrap();
                assert_eq!(value.to_str().unwrap(), expected, "{name:?}");
            }
        }
    }
}
