//! A header-read timeout for HTTP/1 that leaves idle keep-alive connections alone.
//!
//! hyper's own `header_read_timeout` starts as soon as it waits for the next request, so it
//! also closes idle keep-alive connections; the API server reuses those, and a close that
//! races its next POST fails that admission call. Here the clock starts at the first byte
//! of a request (or when the connection is new) and stops once hyper hands the request to
//! the service; between requests no clock runs.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::Service;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Requests of one connection between "headers parsed" and "response produced".
#[derive(Debug, Default)]
pub struct Activity {
    requests: AtomicUsize,
}

impl Activity {
    fn busy(&self) -> bool {
        self.requests.load(Ordering::Acquire) > 0
    }
}

struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.requests.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection's byte stream, failing reads once a started request's headers are late.
pub struct HeaderTimeoutIo<T> {
    inner: T,
    activity: Arc<Activity>,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    armed: bool,
}

impl<T> HeaderTimeoutIo<T> {
    /// Armed from the start: a new connection must send its first request in time.
    pub fn new(inner: T, timeout: Duration) -> (HeaderTimeoutIo<T>, Arc<Activity>) {
        let activity = Arc::new(Activity::default());
        let io = HeaderTimeoutIo {
            inner,
            activity: activity.clone(),
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            armed: true,
        };
        (io, activity)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeaderTimeoutIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.activity.busy() {
            // The headers are in; the request timeout covers the body and the answer.
            this.armed = false;
        } else if !this.armed
            && matches!(result, Poll::Ready(Ok(())))
            && buf.filled().len() > before
        {
            this.armed = true;
            let deadline = Instant::now() + this.timeout;
            this.deadline.as_mut().reset(deadline);
        }
        if this.armed && result.is_pending() && this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request headers not received in time",
            )));
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeaderTimeoutIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Marks the connection busy from the call (headers parsed) until the response is made.
#[derive(Clone)]
pub struct TrackRequests<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> TrackRequests<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> TrackRequests<S> {
        TrackRequests { inner, activity }
    }
}

impl<S, R> Service<R> for TrackRequests<S>
where
    S: Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, request: R) -> Self::Future {
        self.activity.requests.fetch_add(1, Ordering::AcqRel);
        let guard = RequestGuard(self.activity.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            drop(guard);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TIMEOUT: Duration = Duration::from_secs(5);

    async fn read_some<T: AsyncRead + Unpin>(io: &mut HeaderTimeoutIo<T>) -> io::Result<usize> {
        let mut buf = [0u8; 64];
        io.read(&mut buf).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_new_connection_times_out() {
        let (_client, server) = tokio::io::duplex(64);
        let (mut io, _activity) = HeaderTimeoutIo::new(server, TIMEOUT);
        let error = read_some(&mut io).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn late_headers_time_out_but_an_idle_connection_does_not() {
        let (mut client, server) = tokio::io::duplex(64);
        let (mut io, activity) = HeaderTimeoutIo::new(server, TIMEOUT);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert!(read_some(&mut io).await.unwrap() > 0);

        // Headers complete: hyper calls the service, which marks the connection busy.
        activity.requests.fetch_add(1, Ordering::AcqRel);
        let guard = RequestGuard(activity.clone());
        client.write_all(b"body").await.unwrap();
        assert!(read_some(&mut io).await.unwrap() > 0);
        drop(guard);

        // Idle far longer than the timeout: the next read waits for bytes, not for a clock.
        let idle = tokio::time::timeout(TIMEOUT * 10, read_some(&mut io)).await;
        assert!(idle.is_err(), "an idle keep-alive connection was timed out");

        // The next request starts the clock again; its headers never finish.
        client
            .write_all(b"POST /validate HTTP/1.1\r\n")
            .await
            .unwrap();
        assert!(read_some(&mut io).await.unwrap() > 0);
        let error = read_some(&mut io).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }
}
