//! The lingering close (RFC 9112 section 9.6) for request bodies the
//! service answers without reading to the end: a 413, a 415, a 401 on a
//! POST. Most clients send their whole body before they read the answer;
//! if the connection were closed with the body unread, the kernel would
//! reset it under the answer and the client would see a broken pipe. So a
//! body dropped before its end is read away in the background, bounded in
//! bytes and time, and only then let go.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// Middleware: every request body lingers when dropped unread.
pub async fn lingering_bodies(req: Request) -> Request {
    req.map(|body| Body::new(Lingering(Some(body))))
}

struct Lingering(Option<Body>);

impl http_body::Body for Lingering {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match self.0.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.as_ref().is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.0
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), http_body::Body::size_hint)
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        if let Some(body) = self.0.take()
            && !http_body::Body::is_end_stream(&body)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(candor_contract::axum::read_away(body));
        }
    }
}
