//! `--auth ROLE=VALUE`: the credentials a probe run may send, and which of
//! them plays which part (none, invalid, expired, low, high) on an
//! operation.
//!
//! A credential is one header. `VALUE` is the whole header value, sent as
//! `Authorization`, unless it reads `Header-Name: value`. Two role names are
//! special: `expired` (a token that was valid once) and `invalid` (garbage;
//! generated when not given). `ROLE@SCHEME=VALUE` binds a credential to one
//! security scheme of the document: it is then sent only to operations that
//! accept that scheme (an API with gateway tokens and its own session
//! tokens, say); without `@SCHEME` it is sent to every secured operation.

use std::fmt;
use std::str::FromStr;

use crate::openapi::{Operation, Security};

/// The role name of an expired token.
pub const EXPIRED: &str = "expired";
/// The role name of a token no issuer ever made.
pub const INVALID: &str = "invalid";
/// The token sent as the invalid credential when none is given.
pub const GENERATED_INVALID_TOKEN: &str = "candor.invalid.token";

/// One credential: a role name and the header that carries it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub role: String,
    /// The security scheme the credential belongs to (`ROLE@SCHEME`); none:
    /// every scheme.
    pub scheme: Option<String>,
    /// Header name, e.g. `Authorization` or `X-API-Key`.
    pub header: String,
    pub value: String,
}

// Credentials are secrets: never print a value in full.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("role", &self.role)
            .field("scheme", &self.scheme)
            .field("header", &self.header)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// Why an `--auth` argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("--auth {0:?}: expected ROLE=VALUE, e.g. admin=\"Bearer eyJ...\"")]
    Syntax(String),
    #[error("--auth {role:?}: the role name is empty or holds whitespace")]
    Role { role: String },
    #[error("--auth {role}@: the scheme name is empty or holds whitespace")]
    Scheme { role: String },
    #[error(
        "--auth {role}@{scheme}: the document declares no security scheme {scheme:?} (it declares {declared})"
    )]
    UnknownScheme {
        role: String,
        scheme: String,
        declared: String,
    },
    #[error("--auth {role}: the value is empty")]
    Empty { role: String },
    #[error("--auth {role}: {what} holds characters a header cannot carry")]
    Header { role: String, what: &'static str },
    #[error("--auth {0}: given twice")]
    Duplicate(String),
}

impl Credential {
    pub fn new(
        role: impl Into<String>,
        header: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        Credential {
            role: role.into(),
            scheme: None,
            header: header.into(),
            value: value.into(),
        }
    }

    /// The same credential, for one security scheme only.
    pub fn for_scheme(mut self, scheme: impl Into<String>) -> Self {
        self.scheme = Some(scheme.into());
        self
    }

    /// Whether the credential may be sent to `op`: it names no scheme, or
    /// one the operation accepts.
    pub fn fits(&self, op: &Operation) -> bool {
        match (&self.scheme, &op.security) {
            (None, _) => true,
            (Some(scheme), Security::Required { schemes, .. }) => schemes.contains(scheme),
            (Some(_), Security::Public) => false,
        }
    }

    /// True for the `expired` and `invalid` roles.
    pub fn is_special(&self) -> bool {
        self.role == EXPIRED || self.role == INVALID
    }

    /// The credential as a request header.
    pub fn pair(&self) -> (String, String) {
        (self.header.clone(), self.value.clone())
    }

    /// The value as a report shows it: the scheme, then a placeholder
    /// naming the role (`Bearer <admin credential>`).
    pub fn placeholder(&self) -> String {
        match self.value.split_once(' ') {
            Some((scheme, _)) => format!("{scheme} <{} credential>", self.role),
            None => format!("<{} credential>", self.role),
        }
    }

    /// The value with its secret part hidden, for messages.
    pub fn redacted(&self) -> String {
        match self.value.split_once(' ') {
            Some((scheme, _)) => format!("{}: {scheme} ...", self.header),
            None => format!("{}: ...", self.header),
        }
    }
}

impl FromStr for Credential {
    type Err = CredentialError;

    /// Parses `ROLE=VALUE` or `ROLE=Header-Name: value`.
    fn from_str(arg: &str) -> Result<Self, Self::Err> {
        let Some((role, value)) = arg.split_once('=') else {
            return Err(CredentialError::Syntax(redact_arg(arg)));
        };
        let (role, scheme) = match role.trim().split_once('@') {
            Some((role, scheme)) => (role, Some(scheme)),
            None => (role.trim(), None),
        };
        // A role with whitespace is most likely a value given without
        // `ROLE=`: never echo it.
        if role.is_empty() || role.chars().any(char::is_whitespace) {
            return Err(CredentialError::Role {
                role: redact_arg(role),
            });
        }
        if scheme.is_some_and(|s| s.is_empty() || s.chars().any(char::is_whitespace)) {
            return Err(CredentialError::Scheme {
                role: role.to_owned(),
            });
        }
        let (header, value) = match value.split_once(':') {
            Some((name, rest)) if is_token(name) => (name.to_owned(), rest.trim()),
            _ => ("Authorization".to_owned(), value.trim()),
        };
        if value.is_empty() {
            return Err(CredentialError::Empty {
                role: role.to_owned(),
            });
        }
        if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
            return Err(CredentialError::Header {
                role: role.to_owned(),
                what: "the header name",
            });
        }
        if http::HeaderValue::from_str(value).is_err() {
            return Err(CredentialError::Header {
                role: role.to_owned(),
                what: "the value",
            });
        }
        let credential = Credential::new(role, header, value);
        Ok(match scheme {
            Some(scheme) => credential.for_scheme(scheme),
            None => credential,
        })
    }
}

/// An `--auth` argument for an error message: the role, never the secret.
fn redact_arg(arg: &str) -> String {
    match arg.split_once(['=', ' ']) {
        Some((head, _)) => format!("{head}..."),
        None if arg.len() > 12 => "<value>".to_owned(),
        None => arg.to_owned(),
    }
}

/// An RFC 9110 token, as a header name must be.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Every credential of a run, in `--auth` order.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    list: Vec<Credential>,
    invalid: Option<Credential>,
}

impl Credentials {
    /// Checks that no role is given twice.
    pub fn new(list: Vec<Credential>) -> Result<Self, CredentialError> {
        for (i, c) in list.iter().enumerate() {
            if list[..i]
                .iter()
                .any(|d| d.role == c.role && d.scheme == c.scheme)
            {
                return Err(CredentialError::Duplicate(c.role.clone()));
            }
        }
        let invalid = list.iter().find(|c| c.role == INVALID).cloned();
        Ok(Credentials { list, invalid })
    }

    /// Parses `--auth` arguments.
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Self, CredentialError> {
        let list = args
            .into_iter()
            .map(str::parse)
            .collect::<Result<Vec<Credential>, _>>()?;
        Credentials::new(list)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Credentials for real roles (not `expired` or `invalid`).
    pub fn named(&self) -> impl Iterator<Item = &Credential> {
        self.list.iter().filter(|c| !c.is_special())
    }

    /// A credential that may call `op`: its role is one the operation
    /// names, or, when it names none, any real role.
    pub fn high(&self, op: &Operation) -> Option<&Credential> {
        let roles = op.roles();
        self.named()
            .filter(|c| c.fits(op))
            .find(|c| roles.is_empty() || roles.contains(&c.role))
    }

    /// A valid credential whose role `op` does not accept (only when the
    /// operation names roles).
    pub fn low(&self, op: &Operation) -> Option<&Credential> {
        let roles = op.roles();
        if roles.is_empty() {
            return None;
        }
        self.named()
            .filter(|c| c.fits(op))
            .find(|c| !roles.contains(&c.role))
    }

    /// The `expired` credential that fits `op`, when given.
    pub fn expired(&self, op: &Operation) -> Option<&Credential> {
        self.list.iter().find(|c| c.role == EXPIRED && c.fits(op))
    }

    /// The `invalid` credential, or a generated one carried like the first
    /// real credential (same header, same scheme), `Authorization: Bearer`
    /// by default.
    pub fn invalid(&self) -> Credential {
        if let Some(given) = &self.invalid {
            return given.clone();
        }
        let model = self.named().next();
        let header = model.map_or("Authorization", |c| c.header.as_str());
        let value = match model.and_then(|c| c.value.split_once(' ')) {
            Some((scheme, _)) => format!("{scheme} {GENERATED_INVALID_TOKEN}"),
            None if model.is_some() => GENERATED_INVALID_TOKEN.to_owned(),
            None => format!("Bearer {GENERATED_INVALID_TOKEN}"),
        };
        Credential::new(INVALID, header, value)
    }

    /// `headers` with the value of every secret credential replaced by its
    /// placeholder (the `invalid` one is not a secret).
    pub fn redact(&self, headers: &[(String, String)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(name, value)| {
                let secret = self.list.iter().find(|c| {
                    c.role != INVALID && c.header.eq_ignore_ascii_case(name) && c.value == *value
                });
                match secret {
                    Some(c) => (name.clone(), c.placeholder()),
                    None => (name.clone(), value.clone()),
                }
            })
            .collect()
    }

    /// Checks that every `ROLE@SCHEME` names a scheme the document
    /// declares (`components.securitySchemes`).
    pub fn check_schemes(&self, declared: &[String]) -> Result<(), CredentialError> {
        for c in &self.list {
            if let Some(scheme) = &c.scheme
                && !declared.contains(scheme)
            {
                return Err(CredentialError::UnknownScheme {
                    role: c.role.clone(),
                    scheme: scheme.clone(),
                    declared: if declared.is_empty() {
                        "none".to_owned()
                    } else {
                        declared.join(", ")
                    },
                });
            }
        }
        Ok(())
    }

    /// Whether the invalid credential was generated rather than given.
    pub fn invalid_is_generated(&self) -> bool {
        self.invalid.is_none()
    }

    /// Why no high credential exists for `op`, for a skipped case.
    pub fn missing_high(&self, op: &Operation) -> String {
        if let Security::Required { schemes, .. } = &op.security
            && self.named().next().is_some()
            && !self.named().any(|c| c.fits(op))
        {
            return format!(
                "no --auth credential for the scheme{} {} (bind one with ROLE@SCHEME=VALUE)",
                if schemes.len() == 1 { "" } else { "s" },
                schemes.join(", ")
            );
        }
        match op.roles() {
            [] => "no --auth credentials for an authenticated caller".to_owned(),
            [one] => format!("no --auth for role {one}"),
            many => format!("no --auth for any of the roles {}", many.join(", ")),
        }
    }

    /// Why no low credential exists for `op`, for a skipped case.
    pub fn missing_low(&self, op: &Operation) -> String {
        format!(
            "no --auth for a role below {} (a real role the operation does not accept)",
            op.roles().join("/")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::{Document, operations};

    #[test]
    fn values_go_to_authorization_unless_a_header_is_named() {
        let c: Credential = "admin=Bearer abc.def".parse().unwrap();
        assert_eq!(c.pair(), ("Authorization".into(), "Bearer abc.def".into()));
        let c: Credential = "svc=X-API-Key: k:1".parse().unwrap();
        assert_eq!(c.pair(), ("X-API-Key".into(), "k:1".into()));
        let c: Credential = "read:users=Basic dXNlcjpwYXNz".parse().unwrap();
        assert_eq!(c.role, "read:users");
        assert_eq!(c.header, "Authorization");
    }

    #[test]
    fn a_credential_bound_to_a_scheme_goes_only_where_that_scheme_is_accepted() {
        let doc = Document::parse(
            "t.yaml",
            "openapi: 3.1.0
paths:
  /me:
    get:
      security: [{bearer: []}]
      responses: {'200': {description: ok}}
  /sessions/{id}:
    get:
      security: [{session: []}]
      responses: {'200': {description: ok}}
",
        )
        .unwrap();
        let ops = operations(&doc);
        let creds = Credentials::parse([
            "user@bearer=Bearer jwt",
            "expired@bearer=Bearer old",
            "user@session=Bearer sess",
        ])
        .unwrap();
        assert_eq!(creds.high(&ops[0]).unwrap().value, "Bearer jwt");
        assert_eq!(creds.high(&ops[1]).unwrap().value, "Bearer sess");
        assert!(creds.expired(&ops[1]).is_none());
        assert_eq!(
            creds.expired(&ops[0]).unwrap().scheme.as_deref(),
            Some("bearer")
        );
        let only_bearer = Credentials::parse(["user@bearer=Bearer jwt"]).unwrap();
        assert!(only_bearer.high(&ops[1]).is_none());
        assert!(
            only_bearer.missing_high(&ops[1]).contains("scheme session"),
            "{}",
            only_bearer.missing_high(&ops[1])
        );
        assert!(matches!(
            "user@=Bearer x".parse::<Credential>(),
            Err(CredentialError::Scheme { .. })
        ));
    }

    #[test]
    fn bad_arguments_are_refused_without_echoing_secrets() {
        let err = "Bearer-secret-token-value"
            .parse::<Credential>()
            .unwrap_err();
        assert!(matches!(err, CredentialError::Syntax(_)));
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(matches!(
            "=Bearer x".parse::<Credential>(),
            Err(CredentialError::Role { .. })
        ));
        assert!(matches!(
            "admin=".parse::<Credential>(),
            Err(CredentialError::Empty { .. })
        ));
        assert!(matches!(
            "admin=Bearer a\u{1}b".parse::<Credential>(),
            Err(CredentialError::Header { .. })
        ));
        assert!(matches!(
            Credentials::parse(["a=Bearer x", "a=Bearer y"]),
            Err(CredentialError::Duplicate(_))
        ));
        for forgotten_role in [
            "Bearer sk_live_SECRET==",
            "X-API-Key: SECRET=1",
            "Bearer SECRET@x=y",
        ] {
            let err = forgotten_role.parse::<Credential>().unwrap_err();
            assert!(!err.to_string().contains("SECRET"), "{err}");
        }
        let c: Credential = "admin=Bearer hunter2".parse().unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.redacted(), "Authorization: Bearer ...");
        let creds = Credentials::parse(["admin=Bearer hunter2", "invalid=Bearer junk"]).unwrap();
        let headers = vec![
            ("authorization".to_owned(), "Bearer hunter2".to_owned()),
            ("Accept".to_owned(), "Bearer hunter2".to_owned()),
        ];
        assert_eq!(creds.redact(&headers)[0].1, "Bearer <admin credential>");
        assert_eq!(
            creds.redact(&headers)[1].1,
            "Bearer hunter2",
            "other headers kept"
        );
        let junk = vec![("Authorization".to_owned(), "Bearer junk".to_owned())];
        assert_eq!(creds.redact(&junk), junk, "the invalid token is no secret");
    }

    #[test]
    fn roles_split_into_low_and_high_per_operation() {
        let doc = Document::parse(
            "t.yaml",
            r#"
openapi: 3.0.3
info: {title: t, version: '1'}
paths:
  /a:
    get:
      security: [{bearer: []}]
      x-roles: [admin]
      responses: {'200': {description: ok}}
    post:
      security: [{bearer: []}]
      responses: {'200': {description: ok}}
"#,
        )
        .unwrap();
        let ops = operations(&doc);
        let creds =
            Credentials::parse(["expired=Bearer old", "user=Bearer u", "admin=Bearer a"]).unwrap();
        assert_eq!(creds.high(&ops[0]).unwrap().role, "admin");
        assert_eq!(creds.low(&ops[0]).unwrap().role, "user");
        assert_eq!(creds.high(&ops[1]).unwrap().role, "user");
        assert!(creds.low(&ops[1]).is_none());
        assert_eq!(creds.expired(&ops[0]).unwrap().value, "Bearer old");
        let invalid = creds.invalid();
        assert_eq!(invalid.value, "Bearer candor.invalid.token");
        assert!(creds.invalid_is_generated());

        let keys = Credentials::parse(["svc=X-API-Key: k"]).unwrap();
        assert_eq!(
            keys.invalid().pair(),
            ("X-API-Key".into(), GENERATED_INVALID_TOKEN.into())
        );
        let none = Credentials::default();
        assert!(none.high(&ops[0]).is_none());
        assert_eq!(none.missing_high(&ops[0]), "no --auth for role admin");
        assert!(none.missing_low(&ops[0]).contains("below admin"));
    }
}
