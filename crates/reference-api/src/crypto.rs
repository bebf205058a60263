//! Password hashes (PBKDF2-HMAC-SHA256 with a random salt) and session
//! tokens (random, stored only as their SHA-256), on aws-lc-rs.
//!
//! A stored hash reads `pbkdf2-sha256$<iterations>$<salt>$<hash>` (base64
//! without padding), so the iteration count can change without locking
//! anyone out. Hashing is slow on purpose: call it off the executor.

use std::num::NonZeroU32;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{digest, pbkdf2};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

use crate::Error;

const SCHEME: &str = "pbkdf2-sha256";
const ALGORITHM: pbkdf2::Algorithm = pbkdf2::PBKDF2_HMAC_SHA256;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
const TOKEN_LEN: usize = 32;

fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Crypto("the system random generator failed"))?;
    Ok(bytes)
}

/// A new salted hash of `password`.
pub fn hash_password(password: &str, iterations: NonZeroU32) -> Result<String, Error> {
    let salt = random::<SALT_LEN>()?;
    let mut hash = [0u8; HASH_LEN];
    pbkdf2::derive(ALGORITHM, iterations, &salt, password.as_bytes(), &mut hash);
    Ok(format!(
        "{SCHEME}${iterations}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(hash)
    ))
}

/// Whether `password` matches `stored` (in constant time). A stored value
/// that does not parse matches nothing.
pub fn verify_password(stored: &str, password: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(iterations), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(iterations), Ok(salt), Ok(hash)) = (
        iterations.parse::<NonZeroU32>(),
        STANDARD_NO_PAD.decode(salt),
        STANDARD_NO_PAD.decode(hash),
    ) else {
        return false;
    };
    hash.len() == HASH_LEN
        && pbkdf2::verify(ALGORITHM, iterations, &salt, password.as_bytes(), &hash).is_ok()
}

/// A new session token: 256 random bits, base64url.
pub fn new_token() -> Result<String, Error> {
    Ok(URL_SAFE_NO_PAD.encode(random::<TOKEN_LEN>()?))
}

/// What the database keeps of a token.
pub fn token_digest(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> NonZeroU32 {
        NonZeroU32::new(10).unwrap()
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let stored = hash_password("correct horse", cheap()).unwrap();
        assert!(stored.starts_with("pbkdf2-sha256$10$"));
        assert!(verify_password(&stored, "correct horse"));
        assert!(!verify_password(&stored, "correct horsE"));
    }

    #[test]
    fn salts_differ() {
        assert_ne!(
            hash_password("x", cheap()).unwrap(),
            hash_password("x", cheap()).unwrap()
        );
    }

    #[test]
    fn garbage_hashes_match_nothing() {
        for stored in [
            "",
            "pbkdf2-sha256$0$AA$AA",
            "pbkdf2-sha256$10$!!$AA",
            "pbkdf2-sha256$10$AAAA$AAAA",
            "md5$10$AAAA$AAAA",
            "pbkdf2-sha256$10$AAAA$AAAA$extra",
        ] {
            assert!(!verify_password(stored, "x"), "{stored}");
        }
    }

    #[test]
    fn tokens_are_random_and_digested() {
        let a = new_token().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, new_token().unwrap());
        assert_eq!(token_digest(&a).len(), 32);
    }
}
