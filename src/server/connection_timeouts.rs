//! The timeouts of one connection between requests: a header-read timeout (HTTP/1) and an
//! idle timeout (HTTP/1 and HTTP/2), both kinder to keep-alive than hyper's own.
//!
//! hyper's `header_read_timeout` starts as soon as it waits for the next request, so it
//! also closes idle keep-alive connections; the API server reuses those, and a close that
//! races its next POST fails that admission call. Here the header clock starts at the first
//! byte of a request (or when the connection is new) and stops once hyper hands the request
//! to the service. Between requests only the idle clock runs: long (longer than client-go's
//! 90 s `IdleConnTimeout`, so the API server closes first) unless every connection slot is
//! taken, when connections idle for a second make room for clients waiting to connect.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::Service;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

/// Idle time after which a connection gives up its slot while the cap is reached.
const IDLE_UNDER_PRESSURE: Duration = Duration::from_secs(1);

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

/// The limits every connection shares.
#[derive(Clone)]
pub struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
    /// The connection slots: none free means clients are waiting to connect.
    pub slots: Arc<Semaphore>,
}

impl Timeouts {
    fn idle_limit(&self) -> Duration {
        if self.slots.available_permits() == 0 {
            IDLE_UNDER_PRESSURE.min(self.idle)
        } else {
            self.idle
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Bytes between requests start a request, and so the header clock.
    Http1,
    /// Bytes between requests may be pings or window updates: only the idle clock runs.
    Http2,
}

enum Phase {
    /// Waiting for request headers (HTTP/1) until the deadline.
    Headers,
    /// A request is being served: no clock runs.
    Busy,
    /// No request since this instant.
    Idle(Instant),
}

/// The connection's byte stream, failing reads once headers are late or the idle time is up.
pub struct TimedIo<T> {
    inner: T,
    activity: Arc<Activity>,
    timeouts: Timeouts,
    protocol: Protocol,
    phase: Phase,
    clock: Pin<Box<Sleep>>,
}

impl<T> TimedIo<T> {
    /// An HTTP/1 connection must send its first request in time; an HTTP/2 one starts idle.
    pub fn new(inner: T, timeouts: Timeouts, protocol: Protocol) -> (TimedIo<T>, Arc<Activity>) {
        let activity = Arc::new(Activity::default());
        let now = Instant::now();
        let phase = match protocol {
            Protocol::Http1 => Phase::Headers,
            Protocol::Http2 => Phase::Idle(now),
        };
        let io = TimedIo {
            inner,
            activity: activity.clone(),
            clock: Box::pin(tokio::time::sleep_until(now + timeouts.header_read)),
            timeouts,
            protocol,
            phase,
        };
        (io, activity)
    }

    /// Moves between phases after a read; returns the error that ends the connection, if any.
    fn advance(
        &mut self,
        got_bytes: bool,
        pending: bool,
        cx: &mut Context<'_>,
    ) -> Option<io::Error> {
        let now = Instant::now();
        if self.activity.busy() {
            self.phase = Phase::Busy;
            return None;
        }
        if let Phase::Busy = self.phase {
            self.phase = Phase::Idle(now);
        }
        if got_bytes && self.protocol == Protocol::Http1 && matches!(self.phase, Phase::Idle(_)) {
            self.phase = Phase::Headers;
            self.clock.as_mut().reset(now + self.timeouts.header_read);
        }
        if !pending {
            return None;
        }
        match self.phase {
            Phase::Headers => self.clock.as_mut().poll(cx).is_ready().then(|| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "request headers not received in time",
                )
            }),
            Phase::Idle(since) => {
                let limit = self.timeouts.idle_limit();
                if now >= since + limit {
                    return Some(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "idle connection closed",
                    ));
                }
                // Wake up at the idle deadline, or sooner to notice the cap filling up.
                let wake = (since + limit).min(now + IDLE_UNDER_PRESSURE);
                self.clock.as_mut().reset(wake);
                let _ = self.clock.as_mut().poll(cx);
                None
            }
            Phase::Busy => None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        let got_bytes = matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before;
        match this.advance(got_bytes, result.is_pending(), cx) {
            Some(error) => Poll::Ready(Err(error)),
            None => result,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
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

    const HEADER_READ: Duration = Duration::from_secs(5);
    const IDLE: Duration = Duration::from_secs(120);

    fn timeouts(slots: usize) -> Timeouts {
        Timeouts {
            header_read: HEADER_READ,
            idle: IDLE,
            slots: Arc::new(Semaphore::new(slots)),
        }
    }

    async fn read_some<T: AsyncRead + Unpin>(io: &mut TimedIo<T>) -> io::Result<usize> {
        let mut buf = [0u8; 64];
        io.read(&mut buf).await
    }

    /// What hyper does once a request's headers are parsed: the service marks it busy.
    fn serve_one(activity: &Arc<Activity>) -> RequestGuard {
        activity.requests.fetch_add(1, Ordering::AcqRel);
        RequestGuard(activity.clone())
    }

    /// One whole request: bytes read while the service is busy, then the answer.
    async fn complete_request(
        client: &mut tokio::io::DuplexStream,
        io: &mut TimedIo<tokio::io::DuplexStream>,
        activity: &Arc<Activity>,
    ) {
        let guard = serve_one(activity);
        client.write_all(b"request").await.unwrap();
        assert!(read_some(io).await.unwrap() > 0);
        drop(guard);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_new_connection_times_out() {
        let (_client, server) = tokio::io::duplex(64);
        let (mut io, _activity) = TimedIo::new(server, timeouts(8), Protocol::Http1);
        let error = read_some(&mut io).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(error.to_string().contains("headers"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn late_headers_time_out_but_an_idle_connection_only_after_the_idle_timeout() {
        let (mut client, server) = tokio::io::duplex(64);
        let (mut io, activity) = TimedIo::new(server, timeouts(8), Protocol::Http1);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        assert!(read_some(&mut io).await.unwrap() > 0);

        let guard = serve_one(&activity);
        client.write_all(b"body").await.unwrap();
        assert!(read_some(&mut io).await.unwrap() > 0);
        drop(guard);

        // Idle far longer than the header timeout: the next read waits for bytes.
        let idle = tokio::time::timeout(HEADER_READ * 10, read_some(&mut io)).await;
        assert!(
            idle.is_err(),
            "an idle keep-alive connection was timed out early"
        );

        // The next request starts the header clock again; its headers never finish.
        client
            .write_all(b"POST /validate HTTP/1.1\r\n")
            .await
            .unwrap();
        assert!(read_some(&mut io).await.unwrap() > 0);
        let error = read_some(&mut io).await.unwrap_err();
        assert!(error.to_string().contains("headers"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connections_close_after_the_idle_timeout() {
        for protocol in [Protocol::Http1, Protocol::Http2] {
            let (mut client, server) = tokio::io::duplex(64);
            let (mut io, activity) = TimedIo::new(server, timeouts(8), protocol);
            complete_request(&mut client, &mut io, &activity).await;
            let started = Instant::now();
            let error = read_some(&mut io).await.unwrap_err();
            assert!(error.to_string().contains("idle"), "{protocol:?}: {error}");
            let waited = started.elapsed();
            assert!(
                waited >= IDLE && waited < IDLE + IDLE_UNDER_PRESSURE * 2,
                "{waited:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn http2_pings_do_not_keep_an_idle_connection_open() {
        let (mut client, server) = tokio::io::duplex(64);
        let (mut io, _activity) = TimedIo::new(server, timeouts(8), Protocol::Http2);
        let started = Instant::now();
        let error = loop {
            // A ping answer every 30 s: bytes, but no request.
            client.write_all(b"ping").await.unwrap();
            assert!(read_some(&mut io).await.is_ok());
            match tokio::time::timeout(Duration::from_secs(30), read_some(&mut io)).await {
                Err(_) => continue,
                Ok(result) => break result.unwrap_err(),
            }
        };
        assert!(error.to_string().contains("idle"), "{error}");
        assert!(started.elapsed() <= IDLE + Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_is_never_timed_out() {
        let (mut client, server) = tokio::io::duplex(64);
        let (mut io, activity) = TimedIo::new(server, timeouts(8), Protocol::Http2);
        let guard = serve_one(&activity);
        let waiting = tokio::time::timeout(IDLE * 3, read_some(&mut io)).await;
        assert!(
            waiting.is_err(),
            "a connection with a request in flight was closed"
        );
        drop(guard);
        client.write_all(b"x").await.unwrap();
        assert!(read_some(&mut io).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_slot_is_taken_idle_connections_make_room_within_seconds() {
        let shared = timeouts(1);
        let (mut client, server) = tokio::io::duplex(64);
        let (mut io, activity) = TimedIo::new(server, shared.clone(), Protocol::Http1);
        complete_request(&mut client, &mut io, &activity).await;
        // Idle with free slots: kept.
        let idle = tokio::time::timeout(Duration::from_secs(10), read_some(&mut io)).await;
        assert!(idle.is_err(), "closed while slots were free");
        // The cap fills up (a client waits): the idle connection notices and goes.
        let _taken = shared.slots.clone().try_acquire_owned().unwrap();
        let started = Instant::now();
        let error = read_some(&mut io).await.unwrap_err();
        assert!(error.to_string().contains("idle"), "{error}");
        assert!(
            started.elapsed() <= IDLE_UNDER_PRESSURE * 2,
            "{:?}",
            started.elapsed()
        );
    }
}
