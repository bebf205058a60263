//! Field values made on the hot path from a few parts, carved from a
//! per-thread arena that clones and drops only count references on.

use bytes::{Bytes, BytesMut};
use http::HeaderValue;

/// Values this long or longer get an allocation of their own.
const SHORT: usize = 256;
/// Each arena chunk: a short value pins at most this much, for as long as
/// a clone of it lives (a request id held by a streaming response).
const CHUNK: usize = 1024;

thread_local! {
    static ARENA: std::cell::RefCell<BytesMut> = std::cell::RefCell::new(BytesMut::new());
}

/// A field value made on the hot path from a few parts (request ids,
/// forwarded fields, rate-limit fields): a short one is written into this
/// thread's arena chunk and shares it, where a box of its own costs an
/// allocation and a free per request. None: not a valid field value.
pub(crate) fn shared_value(parts: &[&[u8]]) -> Option<HeaderValue> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let bytes = if len < SHORT {
        ARENA.with(|arena| {
            let mut arena = arena.borrow_mut();
            if arena.capacity() - arena.len() < len {
                // The old chunk stays alive while values carved from it do.
                *arena = BytesMut::with_capacity(CHUNK);
            }
            for part in parts {
                arena.extend_from_slice(part);
            }
            arena.split().freeze()
        })
    } else {
        Bytes::from(parts.concat())
    };
    HeaderValue::from_maybe_shared(bytes).ok()
}

/// The non-empty items of a comma-separated field value, trimmed.
pub(crate) fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|item| !item.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_values_hold_their_parts_short_or_long() {
        let short = shared_value(&[b"for=a", b";host=\"", b"h", b"\""]).unwrap();
        assert_eq!(short, "for=a;host=\"h\"");
        assert_eq!(short.clone(), short);
        let long_part = "x".repeat(SHORT);
        let long = shared_value(&[b"a", long_part.as_bytes()]).unwrap();
        assert_eq!(long.len(), SHORT + 1);
        assert_eq!(shared_value(&[]).unwrap(), "");
        assert!(shared_value(&[b"bad\nvalue"]).is_none());
    }

    #[test]
    fn values_carved_from_one_chunk_stay_apart_across_chunks() {
        // Enough values to fill several chunks: each keeps its own bytes
        // after later ones are written and earlier chunks are let go.
        let values: Vec<(String, HeaderValue)> = (0..(3 * CHUNK / 10))
            .map(|i| {
                let text = format!("id-{i:06}");
                let value = shared_value(&[b"id-", format!("{i:06}").as_bytes()]).unwrap();
                (text, value)
            })
            .collect();
        for (text, value) in &values {
            assert_eq!(value.to_str().unwrap(), text);
        }
        // A refused value leaves nothing behind for the next one.
        assert!(shared_value(&[b"x\r\ny"]).is_none());
        assert_eq!(shared_value(&[b"after"]).unwrap(), "after");
    }
}
