//! `Connection: close` on every answer given without reading the whole request body.
//!
//! A handler may answer before it reads the body: a missing token gets 401 before the JSON
//! is parsed, a too-large body 413, a slow one 408. hyper then cannot read the next request
//! on that connection until the rest of the body is out of the way. It tries once to drain
//! what has already arrived and otherwise closes the connection after the answer. But the
//! answer's head may already say keep-alive (hyper writes it as soon as the handler returns,
//! before it notices the body was dropped), so a pooled client sends its next request on a
//! connection that is closing and sees "connection closed without response". A client that
//! writes the head and the body in separate writes (urllib3 does) loses this race whenever
//! the body arrives a moment after the head: rare on an idle machine, not on a busy one.
//!
//! [`close_if_body_unread`] watches the body the handler gets. If the handler's answer is
//! ready before the body reached its end, the answer says `Connection: close`: the client
//! opens a new connection for its next request instead of losing one.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};

/// A middleware (`axum::middleware::from_fn`): answers given before the request body was read
/// to its end say `Connection: close`. Requests without a body pass untouched.
pub async fn close_if_body_unread(request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let watched = Arc::clone(&finished);
    let request = request.map(|body| {
        Body::new(Watched {
            inner: body,
            finished: watched,
        })
    });
    let mut response = next.run(request).await;
    // A switch of protocols (WebSocket) keeps its own `Connection: upgrade`.
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    if !switching && !finished.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that records when it has been read to its end.
struct Watched {
    inner: Body,
    finished: Arc<AtomicBool>,
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || this.inner.is_end_stream() {
            this.finished.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
