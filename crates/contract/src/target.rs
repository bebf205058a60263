//! The request target as a gateway must read it before routing: the path
//! normalised once (RFC 3986 section 6.2.2), and the Host authority checked.

use std::borrow::Cow;

/// Why a path cannot be normalised safely (`request.path_unsafe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not in origin form: it does not start with `/`.
    NotAbsolute,
    /// A `\`, which some servers take for a separator.
    Backslash,
    /// `%2F` or `%5C`: a separator the router would not see.
    EncodedSlash,
    /// `%00`, which ends a name in C.
    EncodedNul,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// More `..` segments than segments above them.
    AboveRoot,
}

impl PathError {
    /// The reason, as it completes "the request path ...".
    pub fn why(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "does not start with /",
            PathError::Backslash => "contains a backslash",
            PathError::EncodedSlash => "contains an encoded slash or backslash",
            PathError::EncodedNul => "contains an encoded NUL",
            PathError::BadEscape => "contains a % not followed by two hex digits",
            PathError::AboveRoot => "climbs above the root",
        }
    }
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the request path {}", self.why())
    }
}

impl std::error::Error for PathError {}

/// What a deployment may relax; the default is the safe choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathOptions {
    /// Keep `%2F` and `%5C` as data inside a segment (for an upstream that
    /// needs them, as in `/files/a%2Fb`) instead of refusing them.
    pub keep_encoded_slashes: bool,
}

/// Normalises a path (the part of an origin-form target before `?`):
/// unreserved characters percent-decoded and other escapes uppercased
/// (RFC 3986 section 6.2.2), `;parameters` dropped from every segment,
/// empty segments (`//`) merged, and `.` / `..` segments removed (section
/// 5.2.4, encoded dots included). A trailing slash is kept. What cannot be
/// made safe is refused: a backslash, an encoded slash, backslash or NUL,
/// a malformed escape, or a `..` that climbs above the root.
///
/// The result is what a gateway routes on and forwards; it is borrowed
/// when the path was already normal, which is the common case.
pub fn normalize_path(path: &str, options: PathOptions) -> Result<Cow<'_, str>, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if is_normal(path.as_bytes()) {
        return Ok(Cow::Borrowed(path));
    }
    let mut out = String::with_capacity(path.len());
    // Where each kept segment starts in `out`, for `..`.
    let mut starts: Vec<usize> = Vec::new();
    let mut segment = String::new();
    let mut trailing = false;
    let mut raw_segments = path[1..].split('/').peekable();
    while let Some(raw) = raw_segments.next() {
        let last = raw_segments.peek().is_none();
        segment.clear();
        decode_segment(raw, options, &mut segment)?;
        // A segment's parameters never hide it: `admin;x` is `admin`.
        let name = segment.split(';').next().unwrap_or_default();
        match name {
            "" | "." => trailing = last,
            ".." => {
                let start = starts.pop().ok_or(PathError::AboveRoot)?;
                out.truncate(start);
                trailing = last;
            }
            name => {
                starts.push(out.len());
                out.push('/');
                out.push_str(name);
                trailing = false;
            }
        }
    }
    if out.is_empty() || trailing {
        out.push('/');
    }
    Ok(if out == path {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(out)
    })
}

/// Whether `path` has nothing to normalise: no escape, backslash,
/// parameter, empty segment or segment starting with a dot.
fn is_normal(path: &[u8]) -> bool {
    let mut previous = 0u8;
    for &b in path {
        match b {
            b'%' | b'\\' | b';' => return false,
            b'/' | b'.' if previous == b'/' => return false,
            _ => {}
        }
        previous = b;
    }
    true
}

/// Appends `raw` with its escapes normalised: unreserved characters
/// decoded, every other escape kept in uppercase.
fn decode_segment(raw: &str, options: PathOptions, out: &mut String) -> Result<(), PathError> {
    let bytes = raw.as_bytes();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => return Err(PathError::Backslash),
            b'%' => {
                out.push_str(&raw[copied..i]);
                let (hi, lo) = match (bytes.get(i + 1), bytes.get(i + 2)) {
                    (Some(&hi), Some(&lo)) => (hex(hi), hex(lo)),
                    _ => (None, None),
                };
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(PathError::BadEscape);
                };
                let byte = hi << 4 | lo;
                match byte {
                    b if is_unreserved(b) => out.push(char::from(b)),
                    b'/' | b'\\' if !options.keep_encoded_slashes => {
                        return Err(PathError::EncodedSlash);
                    }
                    0 => return Err(PathError::EncodedNul),
                    b => {
                        const HEX: &[u8; 16] = b"0123456789ABCDEF";
                        out.push('%');
                        out.push(char::from(HEX[usize::from(b >> 4)]));
                        out.push(char::from(HEX[usize::from(b & 15)]));
                    }
                }
                i += 3;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&raw[copied..]);
    Ok(())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 section 2.3.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Why a Host field is refused (`request.host`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    Missing,
    Repeated,
    Invalid,
    /// `Connection` names Host, which would remove it on the way.
    NamedInConnection,
}

impl HostError {
    /// The reason, as it completes "the Host field ...".
    pub fn why(self) -> &'static str {
        match self {
            HostError::Missing => "is missing",
            HostError::Repeated => "is repeated",
            HostError::Invalid => "is not a valid host[:port]",
            HostError::NamedInConnection => "is named in Connection",
        }
    }
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the Host field {}", self.why())
    }
}

impl std::error::Error for HostError {}

/// A Host value checked to be `host[:port]` (RFC 3986 section 3.2.2, no
/// user info). It can hold no quote, backslash or space, so it goes into a
/// quoted `Forwarded` parameter (RFC 7239 section 4) as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authority<'a>(&'a [u8]);

impl<'a> Authority<'a> {
    /// Checks a Host field value: an IP literal in brackets, an IPv4
    /// address or a registered name, then an optional port of one to five
    /// digits. Empty is refused, as nginx refuses it. One pass over the
    /// bytes: it runs on every request.
    pub fn parse(value: &'a [u8]) -> Result<Authority<'a>, HostError> {
        let invalid = Err(HostError::Invalid);
        let port_from = match value.first() {
            None => return invalid,
            Some(b'[') => {
                let Some(end) = value.iter().position(|&b| b == b']') else {
                    return invalid;
                };
                let ip = std::str::from_utf8(&value[1..end]).map_err(|_| HostError::Invalid)?;
                if ip.parse::<std::net::Ipv6Addr>().is_err() {
                    return invalid;
                }
                match value.get(end + 1) {
                    None => return Ok(Authority(value)),
                    Some(b':') => end + 2,
                    Some(_) => return invalid,
                }
            }
            Some(_) => {
                let mut i = 0;
                loop {
                    // Runs of name bytes at a time; stop at what is not one.
                    i += value[i..]
                        .iter()
                        .position(|&b| !HOST_BYTES[usize::from(b)])
                        .unwrap_or(value.len() - i);
                    match value.get(i) {
                        None => return Ok(Authority(value)),
                        Some(b':') if i > 0 => break i + 1,
                        Some(b'%') if escape_at(value, i) => i += 3,
                        Some(_) => return invalid,
                    }
                }
            }
        };
        let port = &value[port_from..];
        if (1..=5).contains(&port.len()) && port.iter().all(u8::is_ascii_digit) {
            Ok(Authority(value))
        } else {
            invalid
        }
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// Whether `bytes[at]` starts a `%` and two hex digits.
fn escape_at(bytes: &[u8], at: usize) -> bool {
    bytes.get(at + 1).copied().and_then(hex).is_some()
        && bytes.get(at + 2).copied().and_then(hex).is_some()
}

/// The bytes of a `reg-name` (which covers an IPv4 address) but `%`:
/// unreserved and sub-delims.
static HOST_BYTES: [bool; 256] = {
    const PUNCTUATION: &[u8] = b"-._~!$&'()*+,;=";
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < PUNCTUATION.len() {
        table[PUNCTUATION[i] as usize] = true;
        i += 1;
    }
    table
};

/// Whether every quoted string in a `Forwarded` value (RFC 7239) is closed.
/// A value that leaves one open would swallow the element a proxy appends
/// after it, hiding that hop from the next reader: such a prior value is
/// dropped rather than extended.
pub fn forwarded_quotes_closed(value: &[u8]) -> bool {
    let mut quoted = false;
    let mut escaped = false;
    for &b in value {
        match (quoted, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (_, _, b'"') => quoted = !quoted,
            _ => {}
        }
    }
    !quoted
}

/// The normaliser's properties on any input, for the fuzz target
/// (`fuzz/fuzz_targets/path_normalize.rs`, the `fuzzing` feature) and the
/// property test.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// Whatever `path` is: normalising twice changes nothing (so an
    /// upstream or a second gateway that normalises again reads the path
    /// that was routed), and a normal path keeps no empty, dot or
    /// parameter-bearing segment and no escape of an unreserved character.
    pub fn normalize_path_properties(path: &str) {
        for options in [
            PathOptions::default(),
            PathOptions {
                keep_encoded_slashes: true,
            },
        ] {
            let Ok(once) = normalize_path(path, options) else {
                continue;
            };
            let twice = normalize_path(&once, options).expect("a normal path is accepted");
            assert_eq!(twice, once, "{path:?}");
            assert!(matches!(twice, Cow::Borrowed(_)), "{path:?}");
            assert!(once.starts_with('/'), "{path:?}");
            let body = once.strip_suffix('/').unwrap_or(&once);
            for segment in body.split('/').skip(1) {
                assert!(!segment.is_empty(), "{path:?} -> {once:?}");
                assert!(segment != "." && segment != "..", "{path:?} -> {once:?}");
                assert!(!segment.contains(['\\', ';']), "{path:?} -> {once:?}");
            }
            let bytes = once.as_bytes();
            for (i, _) in once.match_indices('%') {
                let byte = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
                let byte = byte.expect("escapes stay well formed");
                assert!(!is_unreserved(byte), "{path:?} -> {once:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(path: &str) -> Result<String, PathError> {
        normalize_path(path, PathOptions::default()).map(Cow::into_owned)
    }

    #[test]
    fn normal_paths_are_borrowed_unchanged() {
        for path in ["/", "/users/7", "/a/b/", "/a.b/c..d/e.", "/~x/-_"] {
            let out = normalize_path(path, PathOptions::default()).unwrap();
            assert!(matches!(out, Cow::Borrowed(_)), "{path}");
            assert_eq!(out, path);
        }
    }

    #[test]
    fn dot_segments_are_removed_encoded_or_not() {
        let cases = [
            ("/public/../admin/x", "/admin/x"),
            ("/public/%2e%2e/admin/x", "/admin/x"),
            ("/public/%2E./admin/x", "/admin/x"),
            ("/public/.%2e/admin/x", "/admin/x"),
            ("/./admin/x", "/admin/x"),
            ("/a/./b", "/a/b"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/a/..", "/"),
            ("/.well-known/x", "/.well-known/x"),
            ("/a/...", "/a/..."),
        ];
        for (path, want) in cases {
            assert_eq!(norm(path).as_deref(), Ok(want), "{path}");
        }
    }

    #[test]
    fn slashes_merge_and_unreserved_escapes_decode() {
        let cases = [
            ("//admin/x", "/admin/x"),
            ("/admin//x///", "/admin/x/"),
            ("/%61dmin/x", "/admin/x"),
            ("/a%7eb%2D", "/a~b-"),
            ("/a%20b", "/a%20b"),
            ("/a%3fb%c3%a9", "/a%3Fb%C3%A9"),
            ("/a%25", "/a%25"),
            ("//", "/"),
        ];
        for (path, want) in cases {
            assert_eq!(norm(path).as_deref(), Ok(want), "{path}");
        }
    }

    #[test]
    fn parameters_never_hide_a_segment() {
        let cases = [
            ("/admin;x/secret", "/admin/secret"),
            ("/public/..;/admin/x", "/admin/x"),
            ("/a;b=c", "/a"),
            ("/;x/a", "/a"),
            ("/a/%3Bb", "/a/%3Bb"),
        ];
        for (path, want) in cases {
            assert_eq!(norm(path).as_deref(), Ok(want), "{path}");
        }
    }

    #[test]
    fn what_cannot_be_made_safe_is_refused() {
        let cases = [
            ("/admin%2fx", PathError::EncodedSlash),
            ("/admin%5Cx", PathError::EncodedSlash),
            ("/admin\\x", PathError::Backslash),
            ("/a%00", PathError::EncodedNul),
            ("/a%zz", PathError::BadEscape),
            ("/a%4", PathError::BadEscape),
            ("/..", PathError::AboveRoot),
            ("/a/../../b", PathError::AboveRoot),
            ("/%2e%2e/x", PathError::AboveRoot),
            ("x", PathError::NotAbsolute),
            ("", PathError::NotAbsolute),
        ];
        for (path, want) in cases {
            assert_eq!(norm(path), Err(want), "{path}");
        }
    }

    #[test]
    fn encoded_slashes_can_be_kept_as_data() {
        let keep = PathOptions {
            keep_encoded_slashes: true,
        };
        assert_eq!(normalize_path("/f/a%2fb", keep).unwrap(), "/f/a%2Fb");
        assert_eq!(normalize_path("/f/a%5cb", keep).unwrap(), "/f/a%5Cb");
        // A literal backslash stays refused.
        assert_eq!(normalize_path("/f/a\\b", keep), Err(PathError::Backslash));
    }

    #[test]
    fn an_open_quote_in_forwarded_is_seen() {
        assert!(forwarded_quotes_closed(b"for=192.0.2.1;host=\"a, b\""));
        assert!(forwarded_quotes_closed(b"for=\"[::1]\", for=x"));
        assert!(forwarded_quotes_closed(b"for=\"a\\\"b\""));
        assert!(!forwarded_quotes_closed(b"for=a;host=\"x"));
        assert!(!forwarded_quotes_closed(b"for=\"a\\\""));
    }

    #[test]
    fn hosts_are_authorities() {
        for ok in [
            "api.example",
            "api.example:8080",
            "127.0.0.1",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8443",
            "xn--bcher-kva.example",
            "a%41b",
        ] {
            assert_eq!(
                Authority::parse(ok.as_bytes()).map(|a| a.as_bytes()),
                Ok(ok.as_bytes()),
                "{ok}"
            );
        }
        for bad in [
            "",
            ":80",
            "x\", for=10.6.6.6;host=\"y",
            "a b",
            "a/b",
            "user@host",
            "host:port",
            "host:123456",
            "host:",
            "[::1",
            "[nope]",
            "[::1]x",
            "a:b:80",
            "a%4",
            "a\\b",
            "h\u{e9}",
        ] {
            assert_eq!(
                Authority::parse(bad.as_bytes()),
                Err(HostError::Invalid),
                "{bad}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn normalising_is_idempotent_and_leaves_no_dot_segment(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "/", "a", "b", ".", "..", "%2e", "%2E%2e", ";p", ";", "%41", "%2f",
                    "%25", "%3b", "%zz", "\\\\", "~", "%c3%a9", "x.y", "%00", "//", "%5C",
                ]),
                0..12,
            )
        ) {
            super::fuzzing::normalize_path_properties(&format!("/{}", pieces.concat()));
        }
    }
}
