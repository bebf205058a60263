//! Bearer JWTs: algorithms pinned by configuration, keys from a shared
//! secret (HS*) or a JWKS file, issuer, audience and time checks.

use std::collections::HashMap;
use std::str::FromStr;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

use super::identity::{AuthError, Identity, Scheme};
use crate::config::{Jwt, JwtKey};

pub struct JwtVerifier {
    /// Distinguishes verifiers (configurations) in the token cache.
    id: u64,
    validation: Validation,
    keys: Keys,
    roles_claim: String,
}

enum Keys {
    Secret(DecodingKey),
    /// By `kid`; a token without `kid` is accepted only with a single key.
    Set(HashMap<String, DecodingKey>, Option<DecodingKey>),
}

impl JwtVerifier {
    pub fn build(config: &Jwt) -> Result<Self, String> {
        // One crypto provider for jsonwebtoken in the process (aws-lc-rs).
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let algorithms = config
            .algorithms
            .iter()
            .map(|a| Algorithm::from_str(a).map_err(|_| format!("unknown JWT algorithm {a}")))
            .collect::<Result<Vec<_>, _>>()?;
        let first = *algorithms.first().ok_or("no JWT algorithm configured")?;
        let mut validation = Validation::new(first);
        validation.algorithms = algorithms;
        validation.leeway = config.leeway.as_secs();
        validation.validate_nbf = true;
        // jsonwebtoken checks `iss` and `aud` only when a token carries them;
        // a configured issuer or audience must also make the claim required.
        let mut required = vec!["exp"];
        required.extend(config.issuer.as_ref().map(|_| "iss"));
        required.extend(config.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        match &config.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &config.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let keys = match &config.key {
            JwtKey::Secret(secret) => Keys::Secret(DecodingKey::from_secret(secret.as_bytes())),
            JwtKey::Jwks { path, json } => {
                let set: JwkSet =
                    serde_json::from_str(json).map_err(|e| format!("{}: {e}", path.display()))?;
                let mut by_kid = HashMap::new();
                let mut only = None;
                for jwk in &set.keys {
                    let key = DecodingKey::from_jwk(jwk)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    if let Some(kid) = &jwk.common.key_id {
                        by_kid.insert(kid.clone(), key.clone());
                    }
                    only = Some(key);
                }
                let single = if set.keys.len() == 1 { only } else { None };
                Keys::Set(by_kid, single)
            }
        };
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(JwtVerifier {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            validation,
            keys,
            roles_claim: config.roles_claim.clone(),
        })
    }

    /// Verifies a token, answering from a small per-thread cache of tokens
    /// already verified: a hit costs a hash and a comparison instead of a
    /// signature check and two JSON parses. An entry is used only while the
    /// token's own `exp` (and `nbf`) allow it, and only by the verifier that
    /// made it (a reload builds a new verifier, which starts empty).
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let now = now_secs();
        if let Some(identity) = cache::lookup(self.id, token, now) {
            return Ok(identity);
        }
        let (identity, window) = self.verify_uncached(token)?;
        cache::store(self.id, token, &identity, window);
        Ok(identity)
    }

    fn verify_uncached(&self, token: &str) -> Result<(Identity, cache::Window), AuthError> {
        let invalid = |why: &str| AuthError::Invalid {
            scheme: Scheme::Bearer,
            why: why.to_owned(),
        };
        let key = match &self.keys {
            Keys::Secret(key) => key,
            Keys::Set(by_kid, single) => {
                let header = decode_header(token).map_err(|_| invalid("malformed token"))?;
                match header.kid.as_deref() {
                    Some(kid) => by_kid.get(kid).ok_or_else(|| invalid("unknown key id"))?,
                    None => single
                        .as_ref()
                        .ok_or_else(|| invalid("token has no key id"))?,
                }
            }
        };
        let data = decode::<Value>(token, key, &self.validation)
            .map_err(|e| invalid(describe(e.kind())))?;
        // RFC 7515 section 4.1.11: the gateway implements no header
        // extension, so any `crit` (even an empty list) makes the token invalid.
        if data.header.crit.is_some() {
            return Err(invalid("unsupported critical header extension"));
        }
        let claims = data.claims;
        let leeway = self.validation.leeway;
        let window = cache::Window {
            not_before: claims
                .get("nbf")
                .and_then(Value::as_u64)
                .map_or(0, |n| n.saturating_sub(leeway)),
            expires: claims
                .get("exp")
                .and_then(Value::as_u64)
                .map_or(0, |e| e.saturating_add(leeway)),
        };
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut roles: Vec<String> = match claims.get(&self.roles_claim) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        if let Some(Value::String(scope)) = claims.get("scope") {
            roles.extend(scope.split_whitespace().map(str::to_owned));
        }
        Ok((
            Identity {
                subject,
                roles,
                scheme: Scheme::Bearer,
            },
            window,
        ))
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Verified tokens, per worker thread (so no lock), bounded.
mod cache {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::Identity;

    /// Most tokens remembered per thread; the cache is emptied when full.
    const CAPACITY: usize = 4096;

    /// When a verified token may be used, in Unix seconds, leeway applied.
    #[derive(Clone, Copy)]
    pub struct Window {
        pub not_before: u64,
        pub expires: u64,
    }

    struct Entry {
        verifier: u64,
        identity: Identity,
        window: Window,
    }

    /// Keyed by the token itself, hashed with a per-process seed: SipHash
    /// over a token of a few hundred bytes cost ~500 instructions a request.
    type Tokens = HashMap<Box<str>, Entry, foldhash::fast::RandomState>;

    thread_local! {
        static TOKENS: RefCell<Tokens> = RefCell::new(Tokens::default());
    }

    pub fn lookup(verifier: u64, token: &str, now: u64) -> Option<Identity> {
        TOKENS.with(|t| {
            let t = t.borrow();
            let e = t.get(token)?;
            let usable =
                e.verifier == verifier && e.window.not_before <= now && now < e.window.expires;
            usable.then(|| e.identity.clone())
        })
    }

    pub fn store(verifier: u64, token: &str, identity: &Identity, window: Window) {
        TOKENS.with(|t| {
            let mut t = t.borrow_mut();
            if t.len() >= CAPACITY {
                t.clear();
            }
            t.insert(
                token.into(),
                Entry {
                    verifier,
                    identity: identity.clone(),
                    window,
                },
            );
        });
    }
}

/// Why a token was refused, for `error_description`.
fn describe(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "token expired",
        ErrorKind::ImmatureSignature => "token not yet valid",
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => "algorithm not allowed",
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => "token has no exp claim",
            "iss" => "token has no iss claim",
            "aud" => "token has no aud claim",
            _ => "a required claim is missing",
        },
        ErrorKind::InvalidSubject => "wrong subject",
        _ => "malformed token",
    }
}
