//! WWW-Authenticate challenges (RFC 9110 §11.6.1, RFC 6750 §3): the gateway renders them for
//! `auth.*` responses and the auditor parses what servers send to check `auth.challenge_syntax`.

use std::fmt;

/// One `name=value` pair of a challenge. The name is compared case-insensitively;
/// the value is kept unescaped (no surrounding quotes, no quoted-pair backslashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParam {
    pub name: String,
    pub value: String,
}

/// One authentication challenge: a scheme followed either by a token68 or by auth-params.
///
/// The grammar allows one or the other, never both; when `token68` is set, [`Display`]
/// renders it and ignores `params`. Scheme and param names are expected to be
/// RFC 9110 tokens; values may hold any text and are always rendered as quoted-strings.
///
/// [`Display`]: fmt::Display
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub token68: Option<String>,
    pub params: Vec<AuthParam>,
}

/// A syntax error in a WWW-Authenticate field value, at a byte offset into it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {position}: {message}")]
pub struct ChallengeError {
    /// Byte offset into the field value where the problem was found.
    pub position: usize,
    pub message: String,
}

impl Challenge {
    /// A challenge with only a scheme (`Basic`), to be extended with [`Challenge::param`].
    pub fn new(scheme: impl Into<String>) -> Self {
        Self {
            scheme: scheme.into(),
            token68: None,
            params: Vec::new(),
        }
    }

    /// `Bearer realm="<realm>"`, the RFC 6750 §3 challenge without an error code.
    pub fn bearer(realm: impl Into<String>) -> Self {
        Self::new("Bearer").param("realm", realm)
    }

    /// Adds an auth-param; a param of the same name (any case) is replaced, since
    /// RFC 9110 allows each name only once per challenge.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        let value = value.into();
        match self
            .params
            .iter_mut()
            .find(|p| p.name.eq_ignore_ascii_case(&name))
        {
            Some(existing) => existing.value = value,
            None => self.params.push(AuthParam { name, value }),
        }
        self
    }

    /// Sets the token68 (`Negotiate YIIB...==`).
    pub fn token68(mut self, token68: impl Into<String>) -> Self {
        self.token68 = Some(token68.into());
        self
    }

    /// The value of the auth-param `name`, compared case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_str())
    }

    /// Whether this challenge uses `scheme` (auth-schemes are case-insensitive).
    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        if let Some(token68) = &self.token68 {
            return write!(f, " {token68}");
        }
        for (i, param) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            f.write_str(&param.name)?;
            f.write_str("=")?;
            write_quoted(f, &param.value)?;
        }
        Ok(())
    }
}

/// Writes `value` as an RFC 9110 quoted-string. `"` and `\` are escaped; control
/// characters other than HTAB cannot appear in a quoted-string at all, so they
/// become `?` rather than producing an invalid field.
fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str("\"")?;
    for ch in value.chars() {
        match ch {
            '"' | '\\' => {
                f.write_str("\\")?;
                fmt::Write::write_char(f, ch)?;
            }
            '\t' => f.write_str("\t")?,
            c if c.is_ascii_control() => f.write_str("?")?,
            c => fmt::Write::write_char(f, c)?,
        }
    }
    f.write_str("\"")
}

/// Renders several challenges as one WWW-Authenticate field value, joined by `", "`.
pub fn render_challenges(challenges: &[Challenge]) -> String {
    challenges
        .iter()
        .map(Challenge::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses a WWW-Authenticate field value into its challenges (RFC 9110 §11.6.1).
///
/// Accepts several comma-separated challenges, scheme-only challenges, token68 (with
/// `=` padding), auth-params with token or quoted-string values, quoted-pairs, OWS/BWS
/// around `=` and commas, and empty list elements (RFC 9110 §5.6.1). Errors on an
/// empty value, a repeated param name within one challenge, or anything else outside
/// the grammar. One leniency: an auth-param that follows a scheme-only challenge after
/// a comma (`Basic, realm="x"`) is attached to that challenge.
pub fn parse_challenges(value: &str) -> Result<Vec<Challenge>, ChallengeError> {
    let mut p = Cursor {
        input: value.as_bytes(),
        pos: 0,
    };
    let mut challenges: Vec<Challenge> = Vec::new();
    // Whether a `name=value` list element may still extend the last challenge.
    let mut accepts_params = false;

    loop {
        p.skip_ows();
        if p.eat(b',') {
            continue;
        }
        if p.at_end() {
            break;
        }
        let start = p.pos;
        let Some(name) = p.token() else {
            return Err(p.error(start, "expected an auth-scheme token"));
        };
        let after_name = p.pos;
        p.skip_ows();
        if p.peek() == Some(b'=') {
            let Some(current) = challenges.last_mut().filter(|_| accepts_params) else {
                let message = if challenges.is_empty() {
                    format!("expected an auth-scheme, found auth-param {name:?}")
                } else {
                    format!("auth-param {name:?} cannot follow a token68")
                };
                return Err(p.error(start, message));
            };
            let param_value = p.param_value()?;
            push_param(current, name, param_value, start, &p)?;
            p.expect_element_end()?;
            continue;
        }

        p.pos = after_name;
        let mut challenge = Challenge::new(name);
        accepts_params = parse_challenge_rest(&mut p, &mut challenge)?;
        challenges.push(challenge);
    }

    if challenges.is_empty() {
        let message = if value.trim_matches([' ', '\t']).is_empty() {
            "empty field value: expected at least one challenge"
        } else {
            "no challenge in the list, only empty elements"
        };
        return Err(p.error(0, message));
    }
    Ok(challenges)
}

/// Parses what follows an auth-scheme up to the end of this list element: nothing,
/// a token68, or the first auth-param. Returns whether later list elements may add
/// more auth-params to this challenge.
fn parse_challenge_rest(
    p: &mut Cursor<'_>,
    challenge: &mut Challenge,
) -> Result<bool, ChallengeError> {
    match p.peek() {
        None | Some(b',') => return Ok(true),
        Some(b' ') => {}
        Some(b'\t') => {
            p.skip_ows();
            if p.at_end() || p.peek() == Some(b',') {
                return Ok(true);
            }
            return Err(p.error(p.pos, "expected SP between auth-scheme and its parameters"));
        }
        Some(_) => {
            return Err(p.error(p.pos, "expected SP, ',' or end of field after auth-scheme"));
        }
    }
    p.skip_ows();
    if p.at_end() || p.peek() == Some(b',') {
        return Ok(true);
    }

    let start = p.pos;
    // token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let run = p.take_while(is_token68_char);
    if run > 0 {
        p.take_while(|b| b == b'=');
        let end = p.pos;
        p.skip_ows();
        if p.at_end() || p.peek() == Some(b',') {
            challenge.token68 = Some(p.text(start, end));
            return Ok(false);
        }
    }

    p.pos = start;
    let Some(name) = p.token() else {
        return Err(p.error(start, "expected a token68 or an auth-param"));
    };
    p.skip_ows();
    if p.peek() != Some(b'=') {
        return Err(p.error(
            p.pos,
            format!("expected '=' after auth-param name {name:?}"),
        ));
    }
    let value = p.param_value()?;
    push_param(challenge, name, value, start, p)?;
    p.expect_element_end()?;
    Ok(true)
}

fn push_param(
    challenge: &mut Challenge,
    name: String,
    value: String,
    at: usize,
    p: &Cursor<'_>,
) -> Result<(), ChallengeError> {
    if challenge.get(&name).is_some() {
        return Err(p.error(
            at,
            format!(
                "auth-param {name:?} appears twice in the {:?} challenge",
                challenge.scheme
            ),
        ));
    }
    challenge.params.push(AuthParam { name, value });
    Ok(())
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

/// A byte cursor over the field value; every method either advances or reports failure,
/// so the parse loop always makes progress.
struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ows(&mut self) {
        self.take_while(|b| b == b' ' || b == b'\t');
    }

    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// The text between two byte offsets; both sit on ASCII bytes, hence on char boundaries.
    fn text(&self, start: usize, end: usize) -> String {
        String::from_utf8_lossy(self.input.get(start..end).unwrap_or_default()).into_owned()
    }

    fn token(&mut self) -> Option<String> {
        let start = self.pos;
        (self.take_while(is_tchar) > 0).then(|| self.text(start, self.pos))
    }

    /// After an auth-param name and BWS, at `=`: consumes `= BWS (token / quoted-string)`.
    fn param_value(&mut self) -> Result<String, ChallengeError> {
        if !self.eat(b'=') {
            return Err(self.error(self.pos, "expected '='"));
        }
        self.skip_ows();
        if self.peek() == Some(b'"') {
            return self.quoted_string();
        }
        self.token().ok_or_else(|| {
            self.error(
                self.pos,
                "expected a token or quoted-string as auth-param value",
            )
        })
    }

    fn quoted_string(&mut self) -> Result<String, ChallengeError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error(
                    self.pos,
                    format!("unterminated quoted-string (opened at byte {open})"),
                ));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\\' => {
                    self.pos += 1;
                    match self.peek() {
                        Some(e) if e == b'\t' || e >= 0x20 && e != 0x7f => {
                            out.push(e);
                            self.pos += 1;
                        }
                        Some(_) => {
                            return Err(
                                self.error(self.pos, "invalid character after '\\' in quoted-pair")
                            );
                        }
                        None => {
                            return Err(self.error(
                                self.pos,
                                format!("unterminated quoted-string (opened at byte {open})"),
                            ));
                        }
                    }
                }
                b'\t' | 0x20..=0x7e | 0x80..=0xff => {
                    out.push(b);
                    self.pos += 1;
                }
                _ => {
                    return Err(self.error(self.pos, "control character in quoted-string"));
                }
            }
        }
        // Only whole UTF-8 sequences were copied (escapes drop ASCII backslashes only).
        Ok(String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// After a list element: OWS, then a comma or the end of the field.
    fn expect_element_end(&mut self) -> Result<(), ChallengeError> {
        self.skip_ows();
        if self.at_end() || self.peek() == Some(b',') {
            Ok(())
        } else {
            Err(self.error(self.pos, "expected ',' or end of field"))
        }
    }

    fn error(&self, position: usize, message: impl Into<String>) -> ChallengeError {
        ChallengeError {
            position,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(value: &str) -> Vec<Challenge> {
        match parse_challenges(value) {
            Ok(c) => c,
            Err(e) => panic!("{value:?} should parse: {e}"),
        }
    }

    fn parse_err(value: &str) -> ChallengeError {
        match parse_challenges(value) {
            Ok(c) => panic!("{value:?} should not parse, got {c:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn bearer_builder_renders_quoted_realm() {
        assert_eq!(
            Challenge::bearer("api").to_string(),
            r#"Bearer realm="api""#
        );
    }

    #[test]
    fn api_key_challenge_renders_like_the_contract() {
        let c = Challenge::new("ApiKey")
            .param("realm", "api")
            .param("header", "X-API-Key");
        assert_eq!(c.to_string(), r#"ApiKey realm="api", header="X-API-Key""#);
    }

    #[test]
    fn display_escapes_quotes_and_backslashes() {
        let c = Challenge::bearer(r#"a"b\c"#).param("error_description", "bad \"token\"");
        assert_eq!(
            c.to_string(),
            r#"Bearer realm="a\"b\\c", error_description="bad \"token\"""#
        );
        assert_eq!(parse_ok(&c.to_string()), vec![c]);
    }

    #[test]
    fn display_replaces_control_characters() {
        let c = Challenge::new("X").param("a", "line\r\nbreak\ttab");
        assert_eq!(c.to_string(), "X a=\"line??break\ttab\"");
    }

    #[test]
    fn param_builder_replaces_same_name_any_case() {
        let c = Challenge::bearer("a").param("REALM", "b");
        assert_eq!(c.params.len(), 1);
        assert_eq!(c.get("realm"), Some("b"));
    }

    #[test]
    fn get_and_is_scheme_ignore_case() {
        let c = parse_ok(r#"bEaReR Realm="x""#).remove(0);
        assert!(c.is_scheme("Bearer"));
        assert_eq!(c.get("REALM"), Some("x"));
        assert_eq!(c.get("scope"), None);
    }

    #[test]
    fn render_challenges_joins_with_comma() {
        let all = [Challenge::new("Basic"), Challenge::bearer("api")];
        let rendered = render_challenges(&all);
        assert_eq!(rendered, r#"Basic, Bearer realm="api""#);
        assert_eq!(parse_ok(&rendered), all);
    }

    #[test]
    fn rfc9110_example_with_two_challenges() {
        let got = parse_ok(
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
        );
        assert_eq!(got.len(), 2);
        assert!(got[0].is_scheme("Newauth"));
        assert_eq!(got[0].get("realm"), Some("apps"));
        assert_eq!(got[0].get("type"), Some("1"));
        assert_eq!(got[0].get("title"), Some(r#"Login to "apps""#));
        assert_eq!(got[0].params.len(), 3);
        assert_eq!(got[1], Challenge::new("Basic").param("realm", "simple"));
    }

    #[test]
    fn escaped_quote_in_realm() {
        let got = parse_ok(r#"Bearer realm="a\"b""#);
        assert_eq!(got, vec![Challenge::bearer("a\"b")]);
    }

    #[test]
    fn quoted_pair_escapes_any_visible_char() {
        let got = parse_ok(r#"X a="\a\\\ b""#);
        assert_eq!(got[0].get("a"), Some(r"a\ b"));
    }

    #[test]
    fn scheme_only_challenges() {
        assert_eq!(parse_ok("Basic"), vec![Challenge::new("Basic")]);
        assert_eq!(
            parse_ok("Basic, Negotiate"),
            vec![Challenge::new("Basic"), Challenge::new("Negotiate")]
        );
        assert_eq!(parse_ok("  Basic  "), vec![Challenge::new("Basic")]);
    }

    #[test]
    fn token68_with_padding() {
        let got = parse_ok("Negotiate YIIBzAYGKwYBBQUCoII+/w==, Basic");
        assert_eq!(got[0].token68.as_deref(), Some("YIIBzAYGKwYBBQUCoII+/w=="));
        assert!(got[0].params.is_empty());
        assert_eq!(got[1], Challenge::new("Basic"));
        assert_eq!(parse_ok("X abc=")[0].token68.as_deref(), Some("abc="));
        assert_eq!(parse_ok("X abc")[0].token68.as_deref(), Some("abc"));
        // A bare `name=` is a token68 with padding, not an auth-param without a value.
        assert_eq!(parse_ok("X realm= ,")[0].token68.as_deref(), Some("realm="));
    }

    #[test]
    fn token68_renders_and_round_trips() {
        let c = Challenge::new("Negotiate").token68("a+b/c==");
        assert_eq!(c.to_string(), "Negotiate a+b/c==");
        assert_eq!(parse_ok(&c.to_string()), vec![c]);
    }

    #[test]
    fn bws_and_ows_around_equals_and_commas() {
        let got = parse_ok("Bearer realm = \"a\" ,\terror= invalid_token ,scope =\"x y\"");
        assert_eq!(
            got,
            vec![
                Challenge::bearer("a")
                    .param("error", "invalid_token")
                    .param("scope", "x y")
            ]
        );
    }

    #[test]
    fn empty_list_elements_are_tolerated() {
        let got = parse_ok(r#", ,Basic realm="a", , type=1,, , Bearer ,"#);
        assert_eq!(
            got,
            vec![
                Challenge::new("Basic")
                    .param("realm", "a")
                    .param("type", "1"),
                Challenge::new("Bearer")
            ]
        );
    }

    #[test]
    fn empty_value_is_an_error() {
        assert_eq!(parse_err("").position, 0);
        assert!(parse_err("   ").message.contains("empty"));
        assert!(parse_err(" , ,").message.contains("no challenge"));
    }

    #[test]
    fn duplicate_param_is_an_error_even_in_another_case() {
        let e = parse_err(r#"Bearer realm="a", Realm="b""#);
        assert_eq!(e.position, 18);
        assert!(e.message.contains("twice"), "{e}");
    }

    #[test]
    fn same_param_in_two_challenges_is_fine() {
        assert_eq!(parse_ok(r#"A realm="a", B realm="b""#).len(), 2);
    }

    #[test]
    fn error_display_names_the_byte() {
        let e = parse_err(r#"Bearer realm="unterminated"#);
        assert_eq!(
            e.to_string(),
            format!("at byte {}: {}", e.position, e.message)
        );
        assert!(
            e.to_string()
                .starts_with("at byte 26: unterminated quoted-string")
        );
    }

    #[test]
    fn syntax_errors_are_reported_not_panicked() {
        for bad in [
            "=",
            "\"Basic\"",
            "realm=\"x\"",
            "Basic realm=\"x",
            "Basic realm=\"x\\",
            "Basic realm=\"x\" junk",
            "Basic a=b==",
            "Basic abc def",
            "Basic\trealm=\"x\"",
            "Basic\"x\"",
            "Negotiate abc==, realm=\"x\"",
            "Basic realm=\"a\u{1}b\"",
            "Basic realm=\"x\"\r\n",
            "Basic realm=@",
            "Bearer realm=\"x\", =1",
            "Basic ,=",
        ] {
            let e = parse_err(bad);
            assert!(e.position <= bad.len(), "{bad:?}: {e}");
        }
    }

    #[test]
    fn obs_text_is_accepted_in_quoted_strings() {
        let got = parse_ok("X realm=\"caf\u{e9}\"");
        assert_eq!(got[0].get("realm"), Some("caf\u{e9}"));
    }

    #[test]
    fn param_after_scheme_only_joins_that_challenge() {
        assert_eq!(
            parse_ok(r#"Basic, realm="x""#),
            vec![Challenge::new("Basic").param("realm", "x")]
        );
    }

    #[test]
    fn token_values_keep_their_text() {
        let got = parse_ok("Digest algorithm=SHA-256, qop=auth");
        assert_eq!(got[0].get("algorithm"), Some("SHA-256"));
        assert_eq!(got[0].get("qop"), Some("auth"));
    }
}
