//! Reading a JSON request body member by member. Every violation is
//! collected, so a `body.schema` answer lists them all at once rather than
//! one per round trip.

use candor_contract::{FieldError, ServiceError};
use serde_json::{Map, Value};

pub struct Members<'a> {
    object: Option<&'a Map<String, Value>>,
    errors: Vec<FieldError>,
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Members<'a> {
    pub fn of(body: &'a Value) -> Self {
        match body {
            Value::Object(object) => Members {
                object: Some(object),
                errors: Vec::new(),
            },
            other => Members {
                object: None,
                errors: vec![FieldError::new(
                    "",
                    format!("must be a JSON object, not {}", kind(other)),
                )],
            },
        }
    }

    /// A required string member.
    pub fn string(&mut self, name: &str) -> Option<&'a str> {
        let object = self.object?;
        match object.get(name) {
            Some(Value::String(s)) => Some(s),
            None => {
                self.errors.push(FieldError::member(name, "is required"));
                None
            }
            Some(other) => {
                self.wrong_type(name, "a string", other);
                None
            }
        }
    }

    /// An optional string member; absent and `null` are both "not given".
    pub fn optional_string(&mut self, name: &str) -> Option<&'a str> {
        let object = self.object?;
        match object.get(name) {
            Some(Value::String(s)) => Some(s),
            None | Some(Value::Null) => None,
            Some(other) => {
                self.wrong_type(name, "a string", other);
                None
            }
        }
    }

    /// A required boolean member.
    pub fn boolean(&mut self, name: &str) -> Option<bool> {
        let object = self.object?;
        match object.get(name) {
            Some(Value::Bool(b)) => Some(*b),
            None => {
                self.errors.push(FieldError::member(name, "is required"));
                None
            }
            Some(other) => {
                self.wrong_type(name, "a boolean", other);
                None
            }
        }
    }

    fn wrong_type(&mut self, name: &str, expected: &str, found: &Value) {
        self.errors.push(FieldError::member(
            name,
            format!("must be {expected}, not {}", kind(found)),
        ));
    }

    /// Records a violation of `name` unless `ok`.
    pub fn check(&mut self, name: &str, ok: bool, message: &str) {
        if !ok {
            self.errors.push(FieldError::member(name, message));
        }
    }

    /// `Invalid` with every violation, if there was any.
    pub fn finish(self) -> Result<(), ServiceError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Invalid {
                errors: self.errors,
            })
        }
    }
}

/// A plausible email address: `local@domain`, the domain dotted, no
/// whitespace or control characters, within RFC 5321's lengths. Whether it
/// receives mail is not a syntax question.
pub fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    text.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_violation_is_listed() {
        let body = json!({"password": 5, "name": []});
        let mut m = Members::of(&body);
        assert_eq!(m.string("email"), None);
        assert_eq!(m.string("password"), None);
        assert_eq!(m.optional_string("name"), None);
        let Err(ServiceError::Invalid { errors }) = m.finish() else {
            panic!("expected Invalid");
        };
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/email", "/password", "/name"]);
        assert_eq!(errors[1].message, "must be a string, not a number");
    }

    #[test]
    fn a_non_object_is_one_violation_at_the_root() {
        let body = json!([1]);
        let mut m = Members::of(&body);
        assert_eq!(m.string("email"), None);
        let Err(ServiceError::Invalid { errors }) = m.finish() else {
            panic!("expected Invalid");
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].pointer, "");
    }

    #[test]
    fn optional_members_may_be_absent_or_null() {
        let body = json!({"name": null, "on": true});
        let mut m = Members::of(&body);
        assert_eq!(m.optional_string("name"), None);
        assert_eq!(m.optional_string("nick"), None);
        assert_eq!(m.boolean("on"), Some(true));
        assert!(m.finish().is_ok());
    }

    #[test]
    fn email_syntax() {
        for good in ["ada@example.com", "a.b+c@x-y.example.org", "Zoë@exämple.de"] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@localhost",
            "ada@@example.com",
            "a da@example.com",
            "ada@example..com",
            "ada@exa_mple.com",
            "ada@example.com\n",
        ] {
            assert!(!is_email(bad), "{bad:?}");
        }
    }
}
