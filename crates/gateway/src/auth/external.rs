//! External authorization: a route with `auth = "external"` asks the auth
//! service (`[auth.external]`) about the client's credentials, RFC 7662 style.
//!
//! Every answer is put in the contract's terms here, once for both data
//! paths: 2xx with `active: true` lets the request through with the subject
//! and roles it names; 401 and 403 are relayed (auth_service.denied); a
//! service that could not decide (refused, reset, invalid answer, 5xx,
//! timeout) is the gateway's 502, 504 or 503, never a 403 or a 500.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use candor_contract::{Challenge, FailureType, PROBLEM_JSON, RetryAfter, parse_challenges};
use http::header::{
    ACCEPT, CONTENT_TYPE, HOST, HeaderMap, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::attempts::{Attempt, attempts};
use crate::config::{AuthCache, ExternalAuth};
use crate::deadline::Progress;
use crate::error::{GatewayError, X_REQUEST_ID};
use crate::metrics::{AuthCheckLabels, Metrics, UpstreamFailureLabels};
use crate::trace::{RequestSpan, TRACEPARENT};
use crate::upstream::{Lease, Pool, SendError, Target, UpstreamRequestBody};

use super::identity::{Identity, Scheme};

/// The largest answer read from the auth service.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The auth service, ready to ask: its pool and its answers' cache.
pub struct ExternalCheck {
    pub config: ExternalAuth,
    pool: Arc<Pool>,
    realm: String,
    cache: Option<Cache>,
}

impl ExternalCheck {
    /// `previous` keeps its cache when nothing it depends on changed.
    pub fn build(
        config: &ExternalAuth,
        pools: &BTreeMap<String, Arc<Pool>>,
        realm: &str,
        previous: Option<&Arc<ExternalCheck>>,
    ) -> Result<Arc<Self>, String> {
        let pool = pools
            .get(&config.upstream)
            .cloned()
            .ok_or_else(|| format!("no upstream {} for [auth.external]", config.upstream))?;
        if let Some(previous) = previous
            && previous.config == *config
            && previous.realm == realm
            && Arc::ptr_eq(&previous.pool, &pool)
        {
            return Ok(previous.clone());
        }
        Ok(Arc::new(ExternalCheck {
            cache: config.cache.map(Cache::new),
            config: config.clone(),
            pool,
            realm: realm.to_owned(),
        }))
    }

    /// Whether the service is sent the request field `name`.
    pub fn reads(&self, name: &str) -> bool {
        self.config
            .send
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n.as_str()))
    }

    /// The auth service's decision on the credentials in `fields` (the
    /// request's fields the service is sent): who the client is, or the
    /// contract's answer.
    pub(crate) async fn check(
        &self,
        metrics: &Metrics,
        fields: &HeaderMap,
        request_id: &HeaderValue,
        span: Option<&RequestSpan>,
    ) -> Result<Identity, GatewayError> {
        let Some(key) = cache_key(&self.config, fields) else {
            // No credentials at all: nothing to ask about (auth.missing).
            return Err(GatewayError::Unauthenticated {
                challenges: Challenge::bearer(&self.realm).to_string(),
            });
        };
        if let Some(cache) = &self.cache
            && let Some(answer) = cache.get(&key, Instant::now())
        {
            self.count(metrics, &answer, "hit");
            return answer;
        }
        let asked = tokio::time::timeout(
            self.config.timeout,
            self.ask(metrics, fields, request_id, span),
        );
        let answer = match asked.await {
            Ok(answer) => answer,
            Err(_) => {
                metrics
                    .upstream_failures
                    .get_or_create(&UpstreamFailureLabels {
                        upstream: self.pool.name.clone(),
                        failure: FailureType::Timeout.as_str(),
                    })
                    .inc();
                Err(self.failed(FailureType::Timeout))
            }
        };
        if let Some(cache) = &self.cache {
            cache.put(key, &answer, Instant::now());
        }
        self.count(metrics, &answer, "miss");
        answer
    }

    fn count(&self, metrics: &Metrics, answer: &Answer, cache: &'static str) {
        let outcome = match answer {
            Ok(_) => "allowed",
            Err(e) if is_decision(e) => "denied",
            Err(_) => "failed",
        };
        metrics
            .auth_checks
            .get_or_create(&AuthCheckLabels {
                upstream: self.pool.name.clone(),
                outcome,
                cache,
            })
            .inc();
    }

    /// Sends the question through the pool (its timers, ejection and
    /// failure counts, as for any upstream) and reads the answer.
    async fn ask(
        &self,
        metrics: &Metrics,
        fields: &HeaderMap,
        request_id: &HeaderValue,
        span: Option<&RequestSpan>,
    ) -> Result<Identity, GatewayError> {
        let mut attempt = Ask {
            pool: &self.pool,
            path: &self.config.path,
            send: &self.config.send,
            fields,
            request_id,
            body: form_body(fields),
            traceparent: None,
        };
        let may_retry = self.pool.config.targets.len() > 1;
        let progress = Progress::new();
        let trace = span.map(|span| (span, &Method::POST));
        let asked = attempts(
            metrics,
            &self.pool,
            may_retry,
            &mut attempt,
            &progress,
            trace,
        );
        let (response, lease) = asked.await.map_err(|e| match e {
            GatewayError::Upstream { failure, .. } => self.failed(failure),
            GatewayError::NoHealthyUpstream { retry_after, .. } => {
                GatewayError::AuthServiceUnavailable {
                    service: self.pool.name.clone(),
                    retry_after: retry_after_value(None, retry_after),
                }
            }
            other => other,
        })?;
        let (parts, body) = response.into_parts();
        let body = match Limited::new(body, MAX_ANSWER_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return Err(self.failed(FailureType::InvalidResponse)),
        };
        lease.release();
        self.decide(parts.status, &parts.headers, &body)
    }

    /// The contract's reading of the service's answer.
    fn decide(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Identity, GatewayError> {
        match status.as_u16() {
            200..=299 => self.introspection(body),
            401 | 403 => {
                let challenges = relayed_challenges(headers);
                let challenges = match (status, challenges) {
                    // A 401 without a challenge is repaired, as for upstreams.
                    (StatusCode::UNAUTHORIZED, None) => {
                        Some(Challenge::bearer(&self.realm).to_string())
                    }
                    (_, challenges) => challenges,
                };
                let problem = is_problem(headers).then(|| body.clone());
                Err(GatewayError::AuthServiceDenied {
                    status,
                    challenges,
                    problem,
                })
            }
            503 => Err(GatewayError::AuthServiceUnavailable {
                service: self.pool.name.clone(),
                retry_after: retry_after_value(headers.get(RETRY_AFTER), Duration::from_secs(1)),
            }),
            _ => Err(self.failed(FailureType::ErrorStatus)),
        }
    }

    /// A 2xx answer: `{"active": true, "sub": .., "roles": [..]}`, or
    /// `active: false` (the credentials are not valid). Anything else is
    /// no answer the gateway can act on.
    fn introspection(&self, body: &[u8]) -> Result<Identity, GatewayError> {
        let invalid = || self.failed(FailureType::InvalidResponse);
        let Ok(serde_json::Value::Object(answer)) = serde_json::from_slice(body) else {
            return Err(invalid());
        };
        match answer.get("active") {
            Some(serde_json::Value::Bool(true)) => {}
            Some(serde_json::Value::Bool(false)) => {
                let why = "the auth service says the credentials are not active".to_owned();
                let challenges = Challenge::bearer(&self.realm)
                    .param("error", "invalid_token")
                    .param("error_description", &why)
                    .to_string();
                return Err(GatewayError::InvalidCredentials { challenges, why });
            }
            _ => return Err(invalid()),
        }
        let subject = match answer.get(&self.config.subject) {
            None => String::new(),
            Some(serde_json::Value::String(s)) if HeaderValue::from_str(s).is_ok() => s.clone(),
            Some(_) => return Err(invalid()),
        };
        let roles: Vec<String> = match answer.get(&self.config.roles) {
            None => Vec::new(),
            Some(serde_json::Value::String(s)) => {
                s.split_ascii_whitespace().map(Into::into).collect()
            }
            Some(serde_json::Value::Array(list)) => {
                let mut roles = Vec::with_capacity(list.len());
                for role in list {
                    match role {
                        serde_json::Value::String(s) => roles.push(s.clone()),
                        _ => return Err(invalid()),
                    }
                }
                roles
            }
            Some(_) => return Err(invalid()),
        };
        // Roles go upstream comma-separated: each must stay one item.
        if !roles
            .iter()
            .all(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_graphic() && b != b','))
        {
            return Err(invalid());
        }
        Ok(Identity {
            subject,
            roles,
            scheme: Scheme::Bearer,
        })
    }

    fn failed(&self, failure: FailureType) -> GatewayError {
        GatewayError::AuthService {
            service: self.pool.name.clone(),
            failure,
        }
    }
}

/// A denial the service (or the gateway on its answer) decided: kept as a
/// negative answer. A failure to decide is never kept.
fn is_decision(error: &GatewayError) -> bool {
    matches!(
        error,
        GatewayError::AuthServiceDenied { .. } | GatewayError::InvalidCredentials { .. }
    )
}

/// The fields the service is sent, as one key: `None` when the request
/// carries none of them.
fn cache_key(config: &ExternalAuth, fields: &HeaderMap) -> Option<Vec<u8>> {
    let mut key = Vec::new();
    for name in &config.send {
        for value in fields.get_all(name) {
            key.extend_from_slice(name.as_str().as_bytes());
            key.push(0);
            key.extend_from_slice(value.as_bytes());
            key.push(0);
        }
    }
    // Kept as a digest: a client's fields may be kilobytes each, and a
    // flood of distinct ones must not fill memory with them.
    (!key.is_empty()).then(|| {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &key)
            .as_ref()
            .to_vec()
    })
}

/// RFC 7662 section 2.1: the bearer token, form-encoded as `token`.
fn form_body(fields: &HeaderMap) -> Bytes {
    let token = fields
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = token else {
        return Bytes::new();
    };
    let mut out = String::with_capacity(6 + token.len());
    out.push_str("token=");
    for b in token.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Bytes::from(out)
}

/// The service's WWW-Authenticate, when it parses as challenges.
fn relayed_challenges(headers: &HeaderMap) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let joined = values.join(", ");
    parse_challenges(&joined)
        .ok()
        .filter(|c| !c.is_empty())
        .map(|_| joined)
}

fn is_problem(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(PROBLEM_JSON))
}

/// The service's Retry-After when it is valid, else `fallback`.
fn retry_after_value(value: Option<&HeaderValue>, fallback: Duration) -> HeaderValue {
    value
        .filter(|v| v.to_str().is_ok_and(|s| RetryAfter::parse(s).is_ok()))
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&RetryAfter::after(fallback).to_string())
                .unwrap_or(HeaderValue::from_static("1"))
        })
}

/// One question to the auth service, as [`attempts`] sends it.
struct Ask<'x> {
    pool: &'x Arc<Pool>,
    path: &'x str,
    send: &'x [http::HeaderName],
    fields: &'x HeaderMap,
    request_id: &'x HeaderValue,
    body: Bytes,
    /// The traceparent of this call's own span, when the request is traced.
    traceparent: Option<HeaderValue>,
}

impl Ask<'_> {
    fn request(&self, target: &Target) -> Request<UpstreamRequestBody> {
        let mut req = Request::new(Either::Right(Full::new(self.body.clone())));
        *req.method_mut() = Method::POST;
        *req.version_mut() = Version::HTTP_11;
        *req.uri_mut() =
            http::Uri::try_from(self.path).unwrap_or_else(|_| http::Uri::from_static("/"));
        let headers = req.headers_mut();
        // Admission gathered these fields and a rate limit's key header:
        // only the ones configured go.
        for name in self.send {
            for value in self.fields.get_all(name) {
                headers.append(name, value.clone());
            }
        }
        if let Ok(host) = HeaderValue::from_str(&target.authority) {
            headers.insert(HOST, host);
        }
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if !self.body.is_empty() {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        }
        headers.insert(&X_REQUEST_ID, self.request_id.clone());
        if let Some(traceparent) = &self.traceparent {
            headers.insert(&TRACEPARENT, traceparent.clone());
        }
        req
    }
}

impl Attempt for Ask<'_> {
    type Sent = (Response<Incoming>, Lease);
    const OWN_SPAN: bool = true;

    fn status(sent: &Self::Sent) -> u16 {
        sent.0.status().as_u16()
    }

    fn trace(&mut self, traceparent: HeaderValue) {
        self.traceparent = Some(traceparent);
    }

    fn send<'a>(
        &'a mut self,
        target: &'a Target,
        resent: &'a mut bool,
        progress: &'a Progress,
    ) -> impl Future<Output = Result<Self::Sent, SendError>> + Send + 'a {
        let request = self.request(target);
        let this = &*self;
        let again = move || this.request(target);
        self.pool
            .send(target, request, Some(again), resent, progress)
    }
}

/// The service's decision: who the client is, or the answer it gets.
type Answer = Result<Identity, GatewayError>;

/// Answers kept until their time is up, at most `max_entries` of them.
struct Cache {
    config: AuthCache,
    entries: Mutex<HashMap<Vec<u8>, (Instant, Answer)>>,
}

impl Cache {
    fn new(config: AuthCache) -> Self {
        Cache {
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &[u8], now: Instant) -> Option<Answer> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(key) {
            Some((until, answer)) if now < *until => Some(answer.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps a decision (allowed or denied) for its TTL; full, it first
    /// drops what has expired, and keeps nothing new if that frees no room.
    fn put(&self, key: Vec<u8>, answer: &Answer, now: Instant) {
        let ttl = match answer {
            Ok(_) => self.config.ttl,
            Err(e) if is_decision(e) => self.config.negative_ttl,
            Err(_) => return,
        };
        if ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.config.max_entries && !entries.contains_key(&key) {
            entries.retain(|_, (until, _)| now < *until);
            if entries.len() >= self.config.max_entries {
                return;
            }
        }
        entries.insert(key, (now + ttl, answer.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(subject: &str) -> Result<Identity, GatewayError> {
        Ok(Identity {
            subject: subject.into(),
            roles: vec!["reader".into()],
            scheme: Scheme::Bearer,
        })
    }

    fn cache(max_entries: usize) -> Cache {
        Cache::new(AuthCache {
            ttl: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(5),
            max_entries,
        })
    }

    #[test]
    fn answers_are_kept_for_their_ttl_and_failures_never() {
        let c = cache(10);
        let t0 = Instant::now();
        c.put(b"a".to_vec(), &identity("alice"), t0);
        let denied = Err(GatewayError::AuthServiceDenied {
            status: StatusCode::FORBIDDEN,
            challenges: None,
            problem: None,
        });
        c.put(b"d".to_vec(), &denied, t0);
        let failed = Err(GatewayError::AuthService {
            service: "auth".into(),
            failure: FailureType::Reset,
        });
        c.put(b"f".to_vec(), &failed, t0);
        let at = |secs| t0 + Duration::from_secs(secs);
        assert!(matches!(c.get(b"a", at(29)), Some(Ok(id)) if id.subject == "alice"));
        assert!(matches!(
            c.get(b"d", at(4)),
            Some(Err(GatewayError::AuthServiceDenied { .. }))
        ));
        assert!(c.get(b"f", t0).is_none());
        // Past their TTLs: gone.
        assert!(c.get(b"d", at(5)).is_none());
        assert!(c.get(b"a", at(30)).is_none());
    }

    #[test]
    fn a_full_cache_makes_room_only_from_expired_entries() {
        let c = cache(2);
        let t0 = Instant::now();
        c.put(b"a".to_vec(), &identity("a"), t0);
        c.put(b"b".to_vec(), &identity("b"), t0 + Duration::from_secs(20));
        c.put(b"c".to_vec(), &identity("c"), t0 + Duration::from_secs(10));
        assert!(c.get(b"c", t0 + Duration::from_secs(10)).is_none());
        // `a` has expired by 31 s: `c` takes its place.
        let later = t0 + Duration::from_secs(31);
        c.put(b"c".to_vec(), &identity("c"), later);
        assert!(c.get(b"c", later).is_some());
        assert!(c.get(b"b", later).is_some());
        assert_eq!(c.entries.lock().unwrap().len(), 2);
    }

    #[test]
    fn the_token_is_form_encoded() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer a+b/c=="),
        );
        assert_eq!(form_body(&h), "token=a%2Bb%2Fc%3D%3D");
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Basic eDp5"),
        );
        assert_eq!(form_body(&h), "");
    }
}
