//! One HTTP request and the response it got, as recorded or observed.
//!
//! The model is deliberately tolerant: the method is any token, the status
//! any integer (so `status.unregistered` can see 999), and bodies are raw
//! bytes. Readers of HAR, JSON lines or live traffic all build this.

use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};

/// A request as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// The method, upper-cased as sent (`GET`, `POST`, ...).
    pub method: String,
    /// The full URL or the origin-form path.
    pub url: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A response as received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Response {
    /// The status code; any integer, so out-of-range values can be flagged.
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A request and its response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exchange {
    pub request: Request,
    pub response: Response,
}

impl Request {
    /// The path of the URL, without query or fragment (`/users/7`).
    pub fn path(&self) -> &str {
        url_path(&self.url)
    }

    /// The media type of the body, lower-cased, without parameters.
    pub fn media_type(&self) -> Option<String> {
        media_type(&self.headers)
    }
}

impl Response {
    /// The media type of the body, lower-cased, without parameters.
    pub fn media_type(&self) -> Option<String> {
        media_type(&self.headers)
    }

    /// The declared Content-Length, when present and numeric.
    pub fn content_length(&self) -> Option<u64> {
        content_length(&self.headers)
    }
}

/// The declared Content-Length of a message: `None` when it has none, or
/// when its field lines do not declare one valid length (see
/// [`fold_content_length`]).
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get_all(CONTENT_LENGTH)
        .iter()
        .try_fold(None, |seen, value| {
            fold_content_length(seen, value.as_bytes()).map(Some)
        })
        .flatten()
}

/// One Content-Length field value as a length (see [`fold_content_length`]).
pub fn content_length_value(value: &HeaderValue) -> Option<u64> {
    fold_content_length(None, value.as_bytes())
}

/// The length after one more Content-Length field line, `seen` being what
/// the lines before it declared; `None` when the line is not valid or
/// declares another length.
///
/// The one Content-Length grammar of the workspace (RFC 9110 section 8.6):
/// a length is decimal digits only (no sign, no spaces inside, below 2^64).
/// A line that is a list of one length repeated (`5, 5`), like repeated
/// lines, is taken as that length, as hyper does (RFC 9110 section 8.6
/// allows it; RFC 9112 section 6.3 has lists of unequal lengths refused).
/// Empty items are not valid. Works on the raw bytes, without allocating.
pub fn fold_content_length(seen: Option<u64>, line: &[u8]) -> Option<u64> {
    // Nearly every line is one length: no list to split.
    if let Some(n) = content_length_digits(line) {
        return match seen {
            Some(m) if m != n => None,
            _ => Some(n),
        };
    }
    line.split(|&b| b == b',')
        .try_fold(seen, |seen, item| {
            let n = content_length_digits(trim_ows(item))?;
            match seen {
                Some(m) if m != n => None,
                _ => Some(Some(n)),
            }
        })
        .flatten()
}

/// One length: `1*DIGIT`, nothing around it, no larger than `u64::MAX`.
pub fn content_length_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
            .flatten()
    })
}

/// `bytes` without the optional whitespace (spaces, tabs) around it.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !ows(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// The essence of a Content-Type value: `application/problem+json`.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim();
    (!essence.is_empty()).then(|| essence.to_ascii_lowercase())
}

/// True for `application/json`, `application/problem+json` and any other
/// `+json` structured-syntax suffix (RFC 6839).
pub fn is_json_media_type(essence: &str) -> bool {
    essence == "application/json" || essence.ends_with("+json") || essence == "text/json"
}

/// The path component of an absolute URL or origin-form target.
pub fn url_path(url: &str) -> &str {
    let rest = match url.find("://") {
        Some(i) => {
            let after = &url[i + 3..];
            match after.find(['/', '?', '#']) {
                Some(j) => &after[j..],
                None => return "/",
            }
        }
        None => url,
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let path = &rest[..end];
    if path.is_empty() { "/" } else { path }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_path_handles_absolute_and_origin_forms() {
        assert_eq!(url_path("https://api.example/users/7?x=1"), "/users/7");
        assert_eq!(url_path("https://api.example"), "/");
        assert_eq!(url_path("https://api.example?q"), "/");
        assert_eq!(url_path("/a/b#frag"), "/a/b");
        assert_eq!(url_path(""), "/");
    }

    #[test]
    fn lengths_are_decimal_digits_only() {
        assert_eq!(content_length_digits(b"0"), Some(0));
        assert_eq!(content_length_digits(b"1234"), Some(1234));
        assert_eq!(content_length_digits(b"007"), Some(7));
        assert_eq!(
            content_length_digits(b"18446744073709551615"),
            Some(u64::MAX)
        );
        for bad in [
            &b""[..],
            b"+5",
            b"-5",
            b" 5",
            b"5 ",
            b"1 2",
            b"0x10",
            b"5.0",
            b"1e3",
            b"18446744073709551616",
            "\u{665}".as_bytes(),
        ] {
            assert_eq!(
                content_length_digits(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_field_is_one_length_or_a_list_of_that_length() {
        let one = |line: &[u8]| fold_content_length(None, line);
        assert_eq!(one(b"5"), Some(5));
        assert_eq!(one(b" 5\t"), Some(5));
        assert_eq!(one(b"5, 5"), Some(5));
        assert_eq!(one(b"5,5 ,\t5"), Some(5));
        for bad in [
            &b""[..],
            b" ",
            b"5, 6",
            b"5,",
            b",5",
            b"5,,5",
            b"5, +5",
            b"+5",
            b"1 2",
            b"5;q=1",
        ] {
            assert_eq!(one(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        // Lines fold into one length: repeated is fine, unequal is not.
        assert_eq!(fold_content_length(Some(5), b"5"), Some(5));
        assert_eq!(fold_content_length(Some(5), b"5, 5"), Some(5));
        assert_eq!(fold_content_length(Some(5), b"6"), None);
        assert_eq!(fold_content_length(Some(5), b"5, 6"), None);
    }

    #[test]
    fn a_message_length_reads_every_line() {
        let map = |lines: &[&'static str]| {
            let mut h = HeaderMap::new();
            for line in lines {
                h.append(CONTENT_LENGTH, HeaderValue::from_static(line));
            }
            h
        };
        assert_eq!(content_length(&map(&[])), None);
        assert_eq!(content_length(&map(&["12"])), Some(12));
        assert_eq!(content_length(&map(&["12", "12, 12"])), Some(12));
        assert_eq!(content_length(&map(&["12", "13"])), None);
        assert_eq!(content_length(&map(&["+12"])), None);
        assert_eq!(
            content_length_value(&HeaderValue::from_static("3, 3")),
            Some(3)
        );
    }

    proptest::proptest! {
        #[test]
        fn any_length_reads_back_alone_or_repeated_and_never_with_another(
            n: u64,
            other: u64,
            repeats in 1usize..4,
            ows in proptest::sample::select(vec!["", " ", "\t", " \t "]),
        ) {
            let item = format!("{ows}{n}{ows}");
            let line = vec![item; repeats].join(",");
            proptest::prop_assert_eq!(fold_content_length(None, line.as_bytes()), Some(n));
            proptest::prop_assert_eq!(content_length_digits(n.to_string().as_bytes()), Some(n));
            let mixed = format!("{n}, {other}");
            let expect = (n == other).then_some(n);
            proptest::prop_assert_eq!(fold_content_length(None, mixed.as_bytes()), expect);
        }

        #[test]
        fn a_digit_string_is_what_u64_reads_and_anything_else_is_not(text in "[0-9+ a-]{0,24}") {
            let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
            let expect = if digits_only { text.parse::<u64>().ok() } else { None };
            proptest::prop_assert_eq!(content_length_digits(text.as_bytes()), expect);
        }
    }

    #[test]
    fn media_type_drops_parameters_and_case() {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            "Application/JSON; charset=utf-8".parse().unwrap(),
        );
        assert_eq!(media_type(&h).as_deref(), Some("application/json"));
        assert!(is_json_media_type("application/problem+json"));
        assert!(!is_json_media_type("text/html"));
    }
}
