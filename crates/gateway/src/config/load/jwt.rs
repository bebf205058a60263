//! `[auth.jwt]`: algorithms, the shared secret or the JWKS file, and the
//! claims checked.

use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use toml::Spanned;

use crate::config::file::FileJwt;
use crate::config::model::{Jwt, JwtKey};

use super::error::ConfigError;
use super::source::Source;
use super::values::{Zero, duration, not_empty, read_text};

const DEFAULT_JWT_LEEWAY: Duration = Duration::from_secs(30);
const DEFAULT_ROLES_CLAIM: &str = "roles";

/// The JWT algorithms `[auth.jwt] algorithms` accepts.
const JWT_ALGORITHMS: [&str; 12] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "EdDSA",
];

/// `[auth.jwt]`
pub(super) fn build_jwt(jwt: Spanned<FileJwt>, src: &Source<'_>) -> Result<Jwt, ConfigError> {
    let span = jwt.span();
    let j = jwt.into_inner();
    let algorithms = jwt_algorithms(&j.algorithms, src)?;
    // One kind only (checked above): either every algorithm is HS* or none is.
    let first = algorithms[0];
    let shared_secret = first.family() == AlgorithmFamily::Hmac;
    let key = match (&j.secret, &j.jwks_file) {
        (Some(_), Some(file)) => {
            return Err(src.error(
                file.span(),
                "auth.jwt.jwks_file",
                "give either `secret` or `jwks_file`, not both",
            ));
        }
        (None, None) => {
            let needed = if shared_secret {
                "`secret`, the shared key"
            } else {
                "`jwks_file`, the issuer's public keys"
            };
            return Err(src.error(span, "auth.jwt", format!("{first:?} needs {needed}")));
        }
        (Some(secret), None) => JwtKey::Secret(jwt_secret(secret, &algorithms, src)?),
        (None, Some(file)) => {
            if shared_secret {
                return Err(src.error(
                    file.span(),
                    "auth.jwt.jwks_file",
                    format!("{first:?} verifies with a shared `secret`, not with public keys"),
                ));
            }
            jwks(file, &algorithms, src)?
        }
    };
    let issuer = j
        .issuer
        .map(|v| not_empty(v, "auth.jwt.issuer", src))
        .transpose()?;
    let audience = j
        .audience
        .map(|v| not_empty(v, "auth.jwt.audience", src))
        .transpose()?;
    let roles_claim = match j.roles_claim {
        Some(claim) => not_empty(claim, "auth.jwt.roles_claim", src)?,
        None => DEFAULT_ROLES_CLAIM.to_owned(),
    };
    Ok(Jwt {
        algorithms: algorithms.iter().map(|a| format!("{a:?}")).collect(),
        key,
        issuer,
        audience,
        leeway: duration(
            j.leeway,
            "auth.jwt.leeway",
            DEFAULT_JWT_LEEWAY,
            Zero::Allowed,
            src,
        )?,
        roles_claim,
    })
}

/// `algorithms`: known names, no duplicates, and never `none`; HS* and
/// public-key algorithms are not mixed.
fn jwt_algorithms(
    list: &Spanned<Vec<Spanned<String>>>,
    src: &Source<'_>,
) -> Result<Vec<Algorithm>, ConfigError> {
    if list.get_ref().is_empty() {
        return Err(src.error(
            list.span(),
            "auth.jwt.algorithms",
            "lists no algorithm; name the ones your tokens are signed with, e.g. [\"RS256\"]",
        ));
    }
    let mut out: Vec<Algorithm> = Vec::with_capacity(list.get_ref().len());
    for (i, name) in list.get_ref().iter().enumerate() {
        let key = format!("auth.jwt.algorithms[{i}]");
        let text = name.get_ref().as_str();
        if text.eq_ignore_ascii_case("none") {
            return Err(src.error(
                name.span(),
                &key,
                format!("{text:?} would accept unsigned tokens; it is never allowed"),
            ));
        }
        let parsed = JWT_ALGORITHMS
            .contains(&text)
            .then(|| text.parse::<Algorithm>().ok())
            .flatten();
        let Some(algorithm) = parsed else {
            return Err(src.error(
                name.span(),
                &key,
                format!(
                    "unknown algorithm {text:?}; expected one of {}",
                    JWT_ALGORITHMS.join(", ")
                ),
            ));
        };
        if out.contains(&algorithm) {
            return Err(src.error(name.span(), &key, format!("duplicate algorithm {text}")));
        }
        if let Some(&first) = out.first()
            && (first.family() == AlgorithmFamily::Hmac)
                != (algorithm.family() == AlgorithmFamily::Hmac)
        {
            return Err(src.error(
                name.span(),
                &key,
                format!(
                    "{text} cannot be listed with {first:?}: mixing shared-secret (HS*) and \
                     public-key algorithms invites algorithm confusion"
                ),
            ));
        }
        out.push(algorithm);
    }
    Ok(out)
}

/// An HMAC secret at least as long as the longest hash it is used with
/// (RFC 7518 section 3.2).
fn jwt_secret(
    secret: &Spanned<String>,
    algorithms: &[Algorithm],
    src: &Source<'_>,
) -> Result<String, ConfigError> {
    let key = "auth.jwt.secret";
    let first = algorithms[0];
    if first.family() != AlgorithmFamily::Hmac {
        return Err(src.error(
            secret.span(),
            key,
            format!(
                "a shared secret is for HS256, HS384 and HS512; {first:?} verifies with the \
                 public keys of `jwks_file`"
            ),
        ));
    }
    let hash_bytes = |algorithm: Algorithm| match algorithm {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    };
    let longest = algorithms
        .iter()
        .copied()
        .max_by_key(|&a| hash_bytes(a))
        .unwrap_or(first);
    let needed = hash_bytes(longest);
    let len = secret.get_ref().len();
    if len < needed {
        return Err(src.error(
            secret.span(),
            key,
            format!(
                "is {len} bytes; {longest:?} needs a secret of at least {needed} bytes, the size \
                 of its hash (RFC 7518 section 3.2)"
            ),
        ));
    }
    Ok(secret.get_ref().clone())
}

/// `jwks_file`: read and checked now, so that a broken key set is refused
/// with the configuration instead of failing every request.
fn jwks(
    value: &Spanned<String>,
    algorithms: &[Algorithm],
    src: &Source<'_>,
) -> Result<JwtKey, ConfigError> {
    let key = "auth.jwt.jwks_file";
    let (path, json) = read_text(value, key, src)?;
    let shown = format!("{:?}", path.display().to_string());
    let invalid = |why: String| src.error(value.span(), key, format!("{shown} {why}"));
    let set: JwkSet = serde_json::from_str(&json)
        .map_err(|e| invalid(format!("is not a JWKS ({{\"keys\": [..]}}): {e}")))?;
    if set.keys.is_empty() {
        return Err(invalid("holds no keys".to_owned()));
    }
    for (i, jwk) in set.keys.iter().enumerate() {
        match &jwk.algorithm {
            AlgorithmParameters::OctetKey(_) => {
                return Err(invalid(format!(
                    "holds a shared secret at keys[{i}] (\"kty\": \"oct\"); a JWKS here holds \
                     public keys only"
                )));
            }
            AlgorithmParameters::RSA(_)
            | AlgorithmParameters::EllipticCurve(_)
            | AlgorithmParameters::OctetKeyPair(_) => {}
            _ => {
                return Err(invalid(format!(
                    "keys[{i}] is not a public key: expected \"kty\" \"RSA\" (with n, e), \"EC\" \
                     (crv, x, y) or \"OKP\" (crv, x)"
                )));
            }
        }
        if let Err(e) = DecodingKey::from_jwk(jwk) {
            return Err(invalid(format!("keys[{i}] is not a valid key: {e}")));
        }
    }
    if !set
        .keys
        .iter()
        .any(|jwk| algorithms.iter().any(|&a| jwk_verifies(jwk, a)))
    {
        let names: Vec<String> = algorithms.iter().map(|a| format!("{a:?}")).collect();
        return Err(invalid(format!(
            "has no signing key for {}",
            names.join(", ")
        )));
    }
    Ok(JwtKey::Jwks { path, json })
}

/// Whether `jwk` can verify signatures made with `algorithm`.
fn jwk_verifies(jwk: &Jwk, algorithm: Algorithm) -> bool {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return false;
    }
    if let Some(declared) = jwk.common.key_algorithm
        && declared.to_string().parse::<Algorithm>().ok() != Some(algorithm)
    {
        return false;
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => algorithm.family() == AlgorithmFamily::Rsa,
        AlgorithmParameters::EllipticCurve(ec) => matches!(
            (&ec.curve, algorithm),
            (EllipticCurve::P256, Algorithm::ES256) | (EllipticCurve::P384, Algorithm::ES384)
        ),
        AlgorithmParameters::OctetKeyPair(okp) => {
            okp.curve == EllipticCurve::Ed25519 && algorithm == Algorithm::EdDSA
        }
        _ => false,
    }
}
