//! The timeouts of one connection between requests: a header-read timeout (HTTP/1), an
//! idle timeout (HTTP/1 and HTTP/2), a write-stall timeout, and eviction when every
//! connection slot is taken.
//!
//! hyper's `header_read_timeout` starts as soon as it waits for the next request, so it
//! also closes idle keep-alive connections; the API server reuses those, and a close that
//! races its next POST fails that admission call. Here the header clock starts at the first
//! byte of a request (or when the connection is new) and stops once hyper hands the request
//! to the service. Between requests only the idle clock runs, longer than client-go's 90 s
//! `IdleConnTimeout` so that the API server closes first. While clients wait for a slot,
//! connections that have been idle (or silent since they connected) for a moment close to
//! make room, so a flood of idle connections cannot lock the API server out. A client that
//! stops reading its answers stops hyper's reads too, so no read clock would ever fire: the
//! write side has its own clock.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use hyper::service::Service;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::sync::futures::OwnedNotified;
use tokio::time::{Instant, Sleep};

/// How long a connection must have been idle (or silent) before it may be evicted: longer
/// than a TLS handshake or the gap between a response and the next request of a busy client.
pub const EVICTABLE_AFTER: Duration = Duration::from_millis(250);

/// Requests of one connection between "headers parsed" and "response produced".
#[derive(Debug, Default)]
pub struct Activity {
    requests: AtomicUsize,
    /// The connection's reader, seen busy: woken when the last request ends, so that its
    /// clocks start even if hyper is already waiting for bytes and would not read again.
    reader: AtomicWaker,
}

impl Activity {
    fn busy(&self) -> bool {
        self.requests.load(Ordering::Acquire) > 0
    }
}

struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.0.requests.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.reader.wake();
        }
    }
}

/// The listener's call for room, heard by every idle or silent connection.
#[derive(Clone, Default)]
pub struct Evictions(Arc<Notify>);

impl Evictions {
    /// Asks connections idle or silent for [`EVICTABLE_AFTER`] to close.
    pub fn make_room(&self) {
        self.0.notify_waiters();
    }

    fn listen(&self) -> Pin<Box<OwnedNotified>> {
        let mut notified = Box::pin(self.0.clone().notified_owned());
        notified.as_mut().enable();
        notified
    }

    /// Resolves once room is asked for and the connection has been silent long enough
    /// (used during the TLS handshake, before there is a [`TimedIo`]).
    pub async fn evicted(&self, since: Instant) {
        loop {
            self.listen().await;
            if since.elapsed() >= EVICTABLE_AFTER {
                return;
            }
        }
    }
}

/// The limits every connection shares.
#[derive(Clone)]
pub struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
    /// How long a write may wait for the client to take bytes before the connection closes.
    pub write_stall: Duration,
    pub evictions: Evictions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Bytes between requests start a request, and so the header clock.
    Http1,
    /// Bytes between requests may be pings or window updates: only the idle clock runs.
    Http2,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// A new HTTP/1 connection that has sent nothing yet (header clock from the start).
    Silent(Instant),
    /// Request headers are arriving (HTTP/1), until the header deadline.
    Headers,
    /// A request is being served: no clock runs.
    Busy,
    /// No request since this instant.
    Idle(Instant),
}

/// The connection's byte stream, failing reads once headers are late, the idle time is up,
/// or room is asked for while the connection is idle.
pub struct TimedIo<T> {
    inner: T,
    activity: Arc<Activity>,
    timeouts: Timeouts,
    protocol: Protocol,
    phase: Phase,
    clock: Pin<Box<Sleep>>,
    eviction: Pin<Box<OwnedNotified>>,
    /// Running while the last write (or flush) could not proceed.
    write_clock: Option<Pin<Box<Sleep>>>,
}

impl<T> TimedIo<T> {
    /// `since`: when the connection was accepted. An HTTP/1 connection must send its first
    /// request's headers within the header-read timeout from then; an HTTP/2 one starts idle.
    pub fn new(
        inner: T,
        timeouts: Timeouts,
        protocol: Protocol,
        since: Instant,
    ) -> (TimedIo<T>, Arc<Activity>) {
        let activity = Arc::new(Activity::default());
        let (phase, deadline) = match protocol {
            Protocol::Http1 => (Phase::Silent(since), since + timeouts.header_read),
            Protocol::Http2 => (Phase::Idle(since), since + timeouts.idle),
        };
        let io = TimedIo {
            inner,
            activity: activity.clone(),
            clock: Box::pin(tokio::time::sleep_until(deadline)),
            eviction: timeouts.evictions.listen(),
            write_clock: None,
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
            self.activity.reader.register(cx.waker());
            // The request may have ended in between, without seeing this waker.
            if self.activity.busy() {
                self.phase = Phase::Busy;
                return None;
            }
        }
        match self.phase {
            Phase::Busy => {
                self.phase = Phase::Idle(now);
                self.clock.as_mut().reset(now + self.timeouts.idle);
            }
            // The header deadline set at accept time stays.
            Phase::Silent(_) if got_bytes => self.phase = Phase::Headers,
            Phase::Idle(_) if got_bytes && self.protocol == Protocol::Http1 => {
                self.phase = Phase::Headers;
                self.clock.as_mut().reset(now + self.timeouts.header_read);
            }
            Phase::Silent(_) | Phase::Headers | Phase::Idle(_) => {}
        }
        if !pending {
            return None;
        }
        let timed_out = self.clock.as_mut().poll(cx).is_ready();
        match self.phase {
            Phase::Headers | Phase::Silent(_) if timed_out => Some(io::Error::new(
                io::ErrorKind::TimedOut,
                "request headers not received in time",
            )),
            Phase::Idle(_) if timed_out => Some(io::Error::new(
                io::ErrorKind::TimedOut,
                "idle connection closed",
            )),
            Phase::Silent(since) | Phase::Idle(since) => self.make_room(since, cx),
            Phase::Headers | Phase::Busy => None,
        }
    }

    /// Closes the connection if room was asked for and it has been quiet long enough.
    fn make_room(&mut self, since: Instant, cx: &mut Context<'_>) -> Option<io::Error> {
        while self.eviction.as_mut().poll(cx).is_ready() {
            if since.elapsed() >= EVICTABLE_AFTER {
                return Some(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "idle connection closed to make room for waiting clients",
                ));
            }
            self.eviction = self.timeouts.evictions.listen();
        }
        None
    }

    /// Turns a write that has waited for the client longer than the write-stall timeout
    /// into an error; any progress stops the clock.
    fn write_stalled<R>(
        &mut self,
        result: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        if result.is_ready() {
            self.write_clock = None;
            return result;
        }
        let stall = self.timeouts.write_stall;
        let clock = self
            .write_clock
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        if clock.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client stopped reading its answers",
            )));
        }
        Poll::Pending
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
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.write_stalled(result, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.write_stalled(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.write_stalled(result, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.write_stalled(result, cx)
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    const HEADER_READ: Duration = Duration::from_secs(5);
    const IDLE: Duration = Duration::from_secs(120);
    const WRITE_STALL: Duration = Duration::from_secs(4);

    fn timeouts() -> Timeouts {
        Timeouts {
            header_read: HEADER_READ,
            idle: IDLE,
            write_stall: WRITE_STALL,
            evictions: Evictions::default(),
        }
    }

    fn timed(
        protocol: Protocol,
        shared: &Timeouts,
    ) -> (DuplexStream, TimedIo<DuplexStream>, Arc<Activity>) {
        let (client, server) = tokio::io::duplex(64);
        let (io, activity) = TimedIo::new(server, shared.clone(), protocol, Instant::now());
        (client, io, activity)
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
        client: &mut DuplexStream,
        io: &mut TimedIo<DuplexStream>,
        activity: &Arc<Activity>,
    ) {
        let guard = serve_one(activity);
        client.write_all(b"request").await.unwrap();
        assert!(read_some(io).await.unwrap() > 0);
        drop(guard);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_new_connection_times_out() {
        let (_client, mut io, _activity) = timed(Protocol::Http1, &timeouts());
        let error = read_some(&mut io).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(error.to_string().contains("headers"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn late_headers_time_out_but_an_idle_connection_only_after_the_idle_timeout() {
        let (mut client, mut io, activity) = timed(Protocol::Http1, &timeouts());
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
            let (mut client, mut io, activity) = timed(protocol, &timeouts());
            complete_request(&mut client, &mut io, &activity).await;
            let started = Instant::now();
            let error = read_some(&mut io).await.unwrap_err();
            assert!(error.to_string().contains("idle"), "{protocol:?}: {error}");
            let waited = started.elapsed();
            assert!(
                waited >= IDLE && waited < IDLE + Duration::from_secs(1),
                "{waited:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn http2_pings_do_not_keep_an_idle_connection_open() {
        let (mut client, mut io, _activity) = timed(Protocol::Http2, &timeouts());
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
    async fn a_client_that_stops_reading_fails_the_write_after_the_stall_timeout() {
        let (_client, mut io, _activity) = timed(Protocol::Http1, &timeouts());
        let started = Instant::now();
        // The duplex holds 64 bytes; the client reads none of them.
        let error = loop {
            match io.write(&[b'x'; 64]).await {
                Ok(_) => continue,
                Err(error) => break error,
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(error.to_string().contains("stopped reading"), "{error}");
        let waited = started.elapsed();
        assert!(
            waited >= WRITE_STALL && waited < WRITE_STALL + Duration::from_secs(1),
            "{waited:?}"
        );

        // A client that reads, however slowly, keeps the writes going.
        let (mut client, mut io, _activity) = timed(Protocol::Http1, &timeouts());
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            loop {
                tokio::time::sleep(WRITE_STALL / 2).await;
                if client.read(&mut buf).await.unwrap_or(0) == 0 {
                    break;
                }
            }
        });
        for _ in 0..20 {
            io.write_all(&[b'y'; 16]).await.unwrap();
        }
        drop(io);
        reader.await.unwrap();
    }

    /// Records whether it was woken.
    #[derive(Default)]
    struct WakeFlag(std::sync::atomic::AtomicBool);

    impl std::task::Wake for WakeFlag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_reader_that_saw_the_connection_busy_is_woken_when_the_request_ends() {
        for protocol in [Protocol::Http1, Protocol::Http2] {
            let (_client, mut io, activity) = timed(protocol, &timeouts());
            let guard = serve_one(&activity);
            let flag = Arc::new(WakeFlag::default());
            let waker = std::task::Waker::from(flag.clone());
            let mut buf = [0u8; 8];
            let mut read_buf = ReadBuf::new(&mut buf);
            let poll = Pin::new(&mut io).poll_read(&mut Context::from_waker(&waker), &mut read_buf);
            assert!(poll.is_pending());
            assert!(!flag.0.load(Ordering::SeqCst));
            // Without the wake the idle clock would not start until bytes arrive.
            drop(guard);
            assert!(flag.0.load(Ordering::SeqCst), "{protocol:?}: not woken");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_is_never_timed_out() {
        let (mut client, mut io, activity) = timed(Protocol::Http2, &timeouts());
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

    /// Reads until the read fails, asking for room every 100 ms like the listener does.
    async fn read_while_room_is_asked_for(
        io: &mut TimedIo<DuplexStream>,
        shared: &Timeouts,
    ) -> io::Error {
        let ask = async {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                shared.evictions.make_room();
            }
        };
        tokio::select! {
            result = read_some(io) => result.unwrap_err(),
            () = ask => unreachable!(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn when_room_is_asked_for_idle_and_silent_connections_close_but_busy_ones_stay() {
        let shared = timeouts();
        let (mut client, mut idle, activity) = timed(Protocol::Http1, &shared);
        complete_request(&mut client, &mut idle, &activity).await;
        // Nobody asked: an idle connection stays far beyond the eviction threshold.
        let kept = tokio::time::timeout(Duration::from_secs(10), read_some(&mut idle)).await;
        assert!(kept.is_err(), "closed although nobody asked for room");

        let (_silent_client, mut silent, _) = timed(Protocol::Http1, &shared);
        let (_h2_client, mut h2, _) = timed(Protocol::Http2, &shared);
        let (_busy_client, mut busy, busy_activity) = timed(Protocol::Http2, &shared);
        let _in_flight = serve_one(&busy_activity);

        let started = Instant::now();
        for io in [&mut idle, &mut silent, &mut h2] {
            let error = read_while_room_is_asked_for(io, &shared).await;
            assert!(error.to_string().contains("make room"), "{error}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let stays = tokio::time::timeout(
            Duration::from_secs(10),
            read_while_room_is_asked_for(&mut busy, &shared),
        )
        .await;
        assert!(
            stays.is_err(),
            "a connection with a request in flight was evicted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_just_became_idle_is_not_evicted_at_once() {
        let shared = timeouts();
        let (mut client, mut io, activity) = timed(Protocol::Http1, &shared);
        complete_request(&mut client, &mut io, &activity).await;
        shared.evictions.make_room();
        let early = tokio::time::timeout(EVICTABLE_AFTER / 2, read_some(&mut io)).await;
        assert!(early.is_err(), "evicted right after its request");
    }

    #[tokio::test(start_paused = true)]
    async fn a_handshake_is_evicted_only_once_it_is_old_enough() {
        let shared = timeouts();
        let since = Instant::now();
        let evicted = shared.evictions.evicted(since);
        let asking = async {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                shared.evictions.make_room();
            }
        };
        tokio::select! {
            () = evicted => {}
            () = asking => unreachable!(),
        }
        let waited = since.elapsed();
        assert!(
            waited >= EVICTABLE_AFTER && waited < EVICTABLE_AFTER * 2,
            "{waited:?}"
        );
    }
}
