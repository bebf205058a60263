//! `candor token`: a JWT the configured `[auth.jwt]` accepts, to try a
//! gateway's routes with curl. Prints the token alone; never the key.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use candor_gateway::config::{self, Jwt, JwtKey};
use clap::Args;
use jsonwebtoken::{Algorithm, AlgorithmFamily, EncodingKey, Header};

use crate::Outcome;

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The gateway configuration (TOML) whose `[auth.jwt]` the token is for.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,

    /// The subject (`sub` claim).
    #[arg(long, default_value = "candor-token")]
    sub: String,

    /// Roles, in the configured roles claim (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "ROLE")]
    roles: Vec<String>,

    /// How long the token is valid (`15m`, `1h`, `90s`).
    #[arg(long, default_value = "1h", value_parser = ttl)]
    ttl: Duration,

    /// Mint a token that expired before now (beyond the configured leeway),
    /// to see the gateway's 401 with error="invalid_token".
    #[arg(long, conflicts_with = "ttl")]
    expired: bool,

    /// The private key (PEM) for RS*, PS*, ES* and EdDSA: the configuration
    /// holds only the public keys (`jwks_file`). HS* sign with its `secret`.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,

    /// The `kid` header; by default the JWKS file's key id when it holds
    /// one key.
    #[arg(long)]
    kid: Option<String>,

    /// The algorithm; by default the first one configured.
    #[arg(long)]
    alg: Option<String>,
}

fn ttl(text: &str) -> Result<Duration, String> {
    let ttl = candor_contract::parse_duration(text).map_err(|e| e.to_string())?;
    if ttl.is_zero() {
        return Err("the ttl must be longer than zero (--expired mints an expired token)".into());
    }
    Ok(ttl)
}

pub fn run(args: TokenArgs) -> Result<Outcome> {
    let file = &args.config;
    let config = config::load_file(file).map_err(|e| anyhow!("{e}"))?;
    let Some(jwt) = &config.auth.jwt else {
        bail!(
            "{}: no [auth.jwt] section: there is no key to sign a token with",
            file.display()
        );
    };
    let token = mint(&args, jwt, file)?;
    crate::shell::print(format!("{token}\n").as_bytes())
}

fn mint(args: &TokenArgs, jwt: &Jwt, file: &Path) -> Result<String> {
    let alg = match &args.alg {
        Some(name) => {
            let alg =
                Algorithm::from_str(name).map_err(|_| anyhow!("unknown JWT algorithm {name}"))?;
            if !jwt.algorithms.iter().any(|a| a == name) {
                bail!(
                    "{}: auth.jwt.algorithms does not accept {name} (it has {})",
                    file.display(),
                    jwt.algorithms.join(", ")
                );
            }
            alg
        }
        None => Algorithm::from_str(&jwt.algorithms[0])
            .map_err(|_| anyhow!("unknown JWT algorithm {}", jwt.algorithms[0]))?,
    };
    let mut header = Header::new(alg);
    let key = match (&jwt.key, &args.key) {
        (JwtKey::Secret(secret), None) => EncodingKey::from_secret(secret.as_bytes()),
        (JwtKey::Secret(_), Some(_)) => bail!(
            "{}: {alg:?} signs with auth.jwt.secret; --key is for the private key of RS*, PS*, ES* and EdDSA",
            file.display()
        ),
        (JwtKey::Jwks { path, .. }, None) => bail!(
            "{}: auth.jwt.jwks_file ({}) holds public keys only: pass --key FILE, the private key (PEM) that signs for it",
            file.display(),
            path.display()
        ),
        (JwtKey::Jwks { json, .. }, Some(pem_file)) => {
            header.kid = args.kid.clone().or_else(|| single_kid(json));
            private_key(alg, pem_file)?
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Expired by more than the leeway the gateway grants, so it refuses it.
    let (iat, exp) = if args.expired {
        let exp = now.saturating_sub(jwt.leeway.as_secs() + 60);
        (exp.saturating_sub(3600), exp)
    } else {
        (now, now.saturating_add(args.ttl.as_secs().max(1)))
    };
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), args.sub.clone().into());
    claims.insert(jwt.roles_claim.clone(), args.roles.clone().into());
    claims.insert("iat".into(), iat.into());
    claims.insert("exp".into(), exp.into());
    if let Some(iss) = &jwt.issuer {
        claims.insert("iss".into(), iss.clone().into());
    }
    if let Some(aud) = &jwt.audience {
        claims.insert("aud".into(), aud.clone().into());
    }
    jsonwebtoken::encode(&header, &claims, &key).context("cannot sign the token")
}

/// The key id of a JWKS document with exactly one key.
fn single_kid(json: &str) -> Option<String> {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(json).ok()?;
    match set.keys.as_slice() {
        [only] => only.common.key_id.clone(),
        _ => None,
    }
}

/// The signing key in `path`, read as the algorithm's family needs. The
/// errors name the file, never its content.
fn private_key(alg: Algorithm, path: &Path) -> Result<EncodingKey> {
    let pem =
        std::fs::read(path).with_context(|| format!("cannot read --key {}", path.display()))?;
    let key = match alg.family() {
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(&pem),
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(&pem),
        AlgorithmFamily::Ed => EncodingKey::from_ed_pem(&pem),
        AlgorithmFamily::Hmac => unreachable_hmac(),
    };
    key.map_err(|e| {
        anyhow!(
            "--key {}: not a {alg:?} private key in PEM ({e})",
            path.display()
        )
    })
}

/// HS* never reaches `private_key` (the configuration holds a secret).
fn unreachable_hmac() -> jsonwebtoken::errors::Result<EncodingKey> {
    Err(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into())
}
