//! Who a client is once its credentials pass, how it proved it, and why
//! they did not pass: what the checks (`api_key`, `jwt`) hand back.

/// Who the client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub roles: Vec<String>,
    /// How the client proved it, for the scheme of later challenges.
    pub scheme: Scheme,
}

/// An authentication scheme the gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    ApiKey,
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// auth.missing: no credentials the route accepts.
    #[error("credentials are required")]
    Missing,
    /// auth.invalid: credentials were sent and are not valid.
    #[error("invalid credentials: {why}")]
    Invalid { scheme: Scheme, why: String },
    /// auth.bad_request: credentials were sent in a malformed way.
    #[error("malformed credentials: {why}")]
    BadRequest { scheme: Scheme, why: String },
}
