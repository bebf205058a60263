//! The IANA HTTP Status Code Registry, as far as the contract needs it:
//! which codes are registered, and their reason phrases.

/// Registered status codes and their reason phrases (IANA registry, RFC 9110
/// section 15 and later registrations). 306 and 418 are listed by IANA as
/// "(Unused)" and are deliberately absent: sending them is a finding.
const REGISTRY: &[(u16, &str)] = &[
    (100, "Continue"),
    (101, "Switching Protocols"),
    (102, "Processing"),
    (103, "Early Hints"),
    (104, "Upload Resumption Supported"),
    (200, "OK"),
    (201, "Created"),
    (202, "Accepted"),
    (203, "Non-Authoritative Information"),
    (204, "No Content"),
    (205, "Reset Content"),
    (206, "Partial Content"),
    (207, "Multi-Status"),
    (208, "Already Reported"),
    (226, "IM Used"),
    (300, "Multiple Choices"),
    (301, "Moved Permanently"),
    (302, "Found"),
    (303, "See Other"),
    (304, "Not Modified"),
    (305, "Use Proxy"),
    (307, "Temporary Redirect"),
    (308, "Permanent Redirect"),
    (400, "Bad Request"),
    (401, "Unauthorized"),
    (402, "Payment Required"),
    (403, "Forbidden"),
    (404, "Not Found"),
    (405, "Method Not Allowed"),
    (406, "Not Acceptable"),
    (407, "Proxy Authentication Required"),
    (408, "Request Timeout"),
    (409, "Conflict"),
    (410, "Gone"),
    (411, "Length Required"),
    (412, "Precondition Failed"),
    (413, "Content Too Large"),
    (414, "URI Too Long"),
    (415, "Unsupported Media Type"),
    (416, "Range Not Satisfiable"),
    (417, "Expectation Failed"),
    (421, "Misdirected Request"),
    (422, "Unprocessable Content"),
    (423, "Locked"),
    (424, "Failed Dependency"),
    (425, "Too Early"),
    (426, "Upgrade Required"),
    (428, "Precondition Required"),
    (429, "Too Many Requests"),
    (431, "Request Header Fields Too Large"),
    (451, "Unavailable For Legal Reasons"),
    (500, "Internal Server Error"),
    (501, "Not Implemented"),
    (502, "Bad Gateway"),
    (503, "Service Unavailable"),
    (504, "Gateway Timeout"),
    (505, "HTTP Version Not Supported"),
    (506, "Variant Also Negotiates"),
    (507, "Insufficient Storage"),
    (508, "Loop Detected"),
    (510, "Not Extended"),
    (511, "Network Authentication Required"),
];

/// The registered reason phrase of `code`, if IANA registers it.
pub fn reason(code: u16) -> Option<&'static str> {
    REGISTRY
        .binary_search_by_key(&code, |&(c, _)| c)
        .ok()
        .map(|i| REGISTRY[i].1)
}

/// True when `code` is in the IANA registry (and so within 100-599).
pub fn is_registered(code: u16) -> bool {
    reason(code).is_some()
}

/// Statuses whose meaning requires a Location header.
pub const fn is_redirect_needing_location(code: u16) -> bool {
    matches!(code, 301 | 302 | 303 | 307 | 308)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_sorted_so_binary_search_works() {
        assert!(REGISTRY.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn registered_and_unregistered_codes() {
        assert_eq!(reason(429), Some("Too Many Requests"));
        assert!(is_registered(422));
        for code in [0, 99, 306, 418, 499, 509, 600, 999] {
            assert!(!is_registered(code), "{code}");
        }
    }
}
