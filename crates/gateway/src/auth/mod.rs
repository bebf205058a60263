//! Authentication and authorization at the edge: bearer JWTs and API keys,
//! and the route's required roles.
//!
//! `Authenticator::authenticate` returns who the client is or a typed
//! `AuthError`; `rescue` turns that into auth.missing (401), auth.invalid
//! (401) or auth.bad_request (400) with the right challenge.

mod api_key;
mod external;
mod identity;
mod jwt;

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};

use candor_contract::{Challenge, render_challenges};

use crate::config::{Auth, RouteAuth};

pub use api_key::KeyTable;
pub use external::ExternalCheck;
pub use identity::{AuthError, Identity, Scheme};
pub use jwt::JwtVerifier;

/// The configured credential checks, built once per configuration.
pub struct Authenticator {
    jwt: Option<JwtVerifier>,
    keys: Option<KeyTable>,
    realm: String,
    pub subject_header: HeaderName,
    pub roles_header: HeaderName,
}

impl Authenticator {
    pub fn build(auth: &Auth, realm: &str) -> Result<Self, String> {
        Ok(Authenticator {
            jwt: auth.jwt.as_ref().map(JwtVerifier::build).transpose()?,
            keys: auth.api_keys.as_ref().map(KeyTable::build),
            realm: realm.to_owned(),
            subject_header: auth.subject_header.clone(),
            roles_header: auth.roles_header.clone(),
        })
    }

    /// Whether `authenticate` reads the field `name` (`Authorization`, or
    /// the API key's header).
    pub fn reads(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("authorization")
            || self
                .keys
                .as_ref()
                .is_some_and(|k| name.eq_ignore_ascii_case(k.header().as_str()))
    }

    /// Checks the credentials a route accepts. `Ok(None)` on open routes.
    pub fn authenticate(
        &self,
        accepts: RouteAuth,
        headers: &HeaderMap,
    ) -> Result<Option<Identity>, AuthError> {
        if accepts == RouteAuth::None {
            return Ok(None);
        }
        let wants_bearer = matches!(accepts, RouteAuth::Jwt | RouteAuth::Any);
        let wants_key = matches!(accepts, RouteAuth::ApiKey | RouteAuth::Any);
        let bearer = if wants_bearer {
            bearer_token(headers)?
        } else {
            None
        };
        let key = match (&self.keys, wants_key) {
            (Some(keys), true) => api_key(headers, keys.header())?,
            _ => None,
        };
        match (bearer, key) {
            (Some(_), Some(_)) => Err(AuthError::BadRequest {
                scheme: Scheme::Bearer,
                why: "both a bearer token and an API key were sent".into(),
            }),
            (Some(token), None) => match &self.jwt {
                Some(jwt) => jwt.verify(token).map(Some),
                None => Err(AuthError::Missing),
            },
            (None, Some(key)) => match &self.keys {
                Some(keys) => keys.verify(key).map(Some),
                None => Err(AuthError::Missing),
            },
            (None, None) => Err(AuthError::Missing),
        }
    }

    /// The challenges for a route that accepts `accepts`, with `params`
    /// added to each (e.g. `error="invalid_token"`).
    pub fn challenges(&self, accepts: RouteAuth, params: &[(&str, &str)]) -> String {
        let mut list = Vec::new();
        if matches!(accepts, RouteAuth::Jwt | RouteAuth::Any) {
            list.push(self.challenge(Scheme::Bearer, params));
        }
        if matches!(accepts, RouteAuth::ApiKey | RouteAuth::Any) {
            list.push(self.challenge(Scheme::ApiKey, params));
        }
        render_challenges(&list)
    }

    /// One challenge of `scheme` with `params`.
    pub fn challenge(&self, scheme: Scheme, params: &[(&str, &str)]) -> Challenge {
        let mut c = match scheme {
            Scheme::Bearer => Challenge::bearer(&self.realm),
            Scheme::ApiKey => {
                let header = self
                    .keys
                    .as_ref()
                    .map_or("X-API-Key", |k| k.header_display());
                Challenge::new("ApiKey")
                    .param("realm", &self.realm)
                    .param("header", header)
            }
        };
        for (name, value) in params {
            c = c.param(*name, *value);
        }
        c
    }
}

/// The bearer token of the `Authorization` header, if one was sent.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = |why: &str| AuthError::BadRequest {
        scheme: Scheme::Bearer,
        why: why.to_owned(),
    };
    if values.next().is_some() {
        return Err(bad("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| bad("the Authorization header is not visible ASCII"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme (Basic, ...) is not a credential this route takes.
        return Ok(None);
    }
    let token = rest.trim();
    if token.is_empty() {
        return Err(bad("empty bearer token"));
    }
    if token.contains(' ') {
        return Err(bad("more than one bearer token"));
    }
    Ok(Some(token))
}

/// The API key header's value, if one was sent.
fn api_key<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<Option<&'h str>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = |why: String| AuthError::BadRequest {
        scheme: Scheme::ApiKey,
        why,
    };
    if values.next().is_some() {
        return Err(bad(format!("more than one {name} header")));
    }
    let key = value
        .to_str()
        .map_err(|_| bad(format!("the {name} header is not visible ASCII")))?
        .trim();
    if key.is_empty() {
        return Err(bad(format!("empty {name} header")));
    }
    Ok(Some(key))
}

/// Whether the identity holds any of `needed`.
pub fn has_any_role(identity: &Identity, needed: &[String]) -> bool {
    needed.iter().any(|n| identity.roles.iter().any(|r| r == n))
}
