//! Field values made on the hot path from a few parts, in one allocation
//! that clones share (forwarded fields, request ids, rate-limit keys).

use bytes::Bytes;
use http::HeaderValue;

/// A field value made on the hot path from a few parts: one allocation, and
/// its clones only count references (a value made from a `Vec` is
/// allocated again the first time it is cloned, as the resend copy and the
/// response's request id do).
pub(crate) fn shared_value(parts: &[&[u8]]) -> Option<HeaderValue> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let bytes = if len <= Inline::CAPACITY {
        let mut inline = Inline {
            bytes: [0; Inline::CAPACITY],
            len: 0,
        };
        for part in parts {
            inline.bytes[inline.len..inline.len + part.len()].copy_from_slice(part);
            inline.len += part.len();
        }
        Bytes::from_owner(inline)
    } else {
        Bytes::from(parts.concat())
    };
    HeaderValue::from_maybe_shared(bytes).ok()
}

/// The bytes of a short field value, stored with its reference count.
struct Inline {
    bytes: [u8; Inline::CAPACITY],
    len: usize,
}

impl Inline {
    const CAPACITY: usize = 112;
}

impl AsRef<[u8]> for Inline {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_values_hold_their_parts_short_or_long() {
        let short = shared_value(&[b"for=a", b";host=\"", b"h", b"\""]).unwrap();
        assert_eq!(short, "for=a;host=\"h\"");
        assert_eq!(short.clone(), short);
        let long_part = "x".repeat(Inline::CAPACITY);
        let long = shared_value(&[b"a", long_part.as_bytes()]).unwrap();
        assert_eq!(long.len(), Inline::CAPACITY + 1);
        assert_eq!(shared_value(&[]).unwrap(), "");
        assert!(shared_value(&[b"bad\nvalue"]).is_none());
    }
}
