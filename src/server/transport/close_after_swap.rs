//! HTTP/1.1 connections learn of a certificate swap from their next answer: it carries
//! `Connection: close`, so the client makes a new connection (and handshake) for the
//! request after it. Closing an idle HTTP/1.1 connection at the swap instead would race a
//! request the client is already sending on it, which it may not retry (a POST is not
//! idempotent). HTTP/2 connections get GOAWAY instead, which tells the client exactly
//! which requests were not taken.

use std::future::Future;
use std::pin::Pin;

use hyper::header::{CONNECTION, HeaderValue};
use hyper::service::Service;
use hyper::{Request, Response};
use tokio::sync::watch;

pub struct CloseAfterSwap<S> {
    inner: S,
    /// Marked seen when the connection's handshake began.
    swaps: watch::Receiver<u64>,
}

impl<S> CloseAfterSwap<S> {
    pub fn new(inner: S, swaps: watch::Receiver<u64>) -> CloseAfterSwap<S> {
        CloseAfterSwap { inner, swaps }
    }
}

impl<S, B, R> Service<Request<B>> for CloseAfterSwap<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn call(&self, request: Request<B>) -> Self::Future {
        // Err: the resolver is gone with the server, whose shutdown closes connections.
        let swapped = self.swaps.has_changed().unwrap_or(false);
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            if swapped {
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        })
    }
}
