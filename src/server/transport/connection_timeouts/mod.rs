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
mod tests;
