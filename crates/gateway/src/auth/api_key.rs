//! API keys: a header carrying the key, looked up by its SHA-256 against
//! the keys file. Every entry is compared, in constant time.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use http::HeaderName;

use super::identity::{AuthError, Identity, Scheme};
use crate::config::{ApiKey, ApiKeys};

pub struct KeyTable {
    header: HeaderName,
    /// The header name as configured (for the challenge).
    display: String,
    keys: Vec<ApiKey>,
}

impl KeyTable {
    pub fn build(config: &ApiKeys) -> Self {
        KeyTable {
            display: config.header_text.clone(),
            header: config.header.clone(),
            keys: config.keys.clone(),
        }
    }

    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    pub fn header_display(&self) -> &str {
        &self.display
    }

    pub fn verify(&self, key: &str) -> Result<Identity, AuthError> {
        let hash = digest(&SHA256, key.as_bytes());
        let mut found = None;
        for entry in &self.keys {
            // No early exit: every entry is compared.
            if verify_slices_are_equal(hash.as_ref(), &entry.sha256).is_ok() {
                found = Some(entry);
            }
        }
        let entry = found.ok_or_else(|| AuthError::Invalid {
            scheme: Scheme::ApiKey,
            why: "unknown API key".into(),
        })?;
        Ok(Identity {
            subject: entry.subject.clone(),
            roles: entry.roles.clone(),
            scheme: Scheme::ApiKey,
        })
    }
}
