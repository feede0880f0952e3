//! The TLS accept loop: a connection cap, a handshake timeout, HTTP/1.1 or HTTP/2 as ALPN
//! chose, and the three shutdown stages (stop accepting, graceful, abort).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::server::metrics::Metrics;
use crate::server::tls::resolver::CertResolver;
use crate::server::transport::close_after_swap::CloseAfterSwap;
use crate::server::transport::connection_timeouts::{
    Evictions, Protocol, TimedIo, Timeouts, TrackRequests,
};

/// Pings keep idle HTTP/2 connections (the API server keeps them) and find dead peers.
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
const H2_MAX_CONCURRENT_STREAMS: u32 = 250;
/// How often a listener that waits for a free slot asks idle connections to make room.
const MAKE_ROOM_INTERVAL: Duration = Duration::from_millis(100);
/// Pause after a failed accept (e.g. out of file descriptors) instead of spinning.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// The three shutdown stages, each a flag that only goes from false to true.
#[derive(Clone)]
pub struct Stages {
    pub stop_accepting: watch::Receiver<bool>,
    pub graceful: watch::Receiver<bool>,
    pub abort: watch::Receiver<bool>,
}

/// Resolves once `flag` is set, or once its sender is gone (the server was dropped).
pub async fn raised(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|raised| *raised).await;
}

pub struct Listener {
    pub tcp: TcpListener,
    pub acceptor: TlsAcceptor,
    /// The serving certificate: its serial labels handshakes, its swaps close connections.
    pub resolver: Arc<CertResolver>,
    pub router: Router,
    pub metrics: Arc<Metrics>,
    /// One permit per open connection (also in `timeouts.slots`).
    pub connections: Arc<Semaphore>,
    pub timeouts: Timeouts,
    pub stages: Stages,
}

impl Listener {
    pub async fn run(self) {
        let mut stop = self.stages.stop_accepting.clone();
        let connection = Arc::new(Connection::new(&self));
        loop {
            // Past the cap, clients wait in the kernel's backlog rather than being refused,
            // while idle connections are asked to make room.
            let permit = match self.connections.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(TryAcquireError::Closed) => break,
                Err(TryAcquireError::NoPermits) => tokio::select! {
                    biased;
                    () = raised(&mut stop) => break,
                    permit = self.connections.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = keep_asking_for_room(&self.timeouts.evictions) => continue,
                },
            };
            let accepted = tokio::select! {
                biased;
                () = raised(&mut stop) => break,
                accepted = self.tcp.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection.clone().serve(stream, peer, permit));
                }
                Err(error) => {
                    warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            }
        }
        debug!("listener closed");
    }
}

/// Never returns: asks now, then every [`MAKE_ROOM_INTERVAL`] (connections become
/// evictable only after a moment of silence).
async fn keep_asking_for_room(evictions: &Evictions) {
    loop {
        evictions.make_room();
        tokio::time::sleep(MAKE_ROOM_INTERVAL).await;
    }
}

/// What each connection task needs.
struct Connection {
    acceptor: TlsAcceptor,
    resolver: Arc<CertResolver>,
    router: Router,
    metrics: Arc<Metrics>,
    timeouts: Timeouts,
    stages: Stages,
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
}

impl Connection {
    fn new(listener: &Listener) -> Connection {
        let mut http1 = http1::Builder::new();
        // Replaced by TimedIo, which spares idle keep-alive connections.
        http1.header_read_timeout(None).keep_alive(true);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .keep_alive_interval(H2_KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT)
            .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS);
        Connection {
            acceptor: listener.acceptor.clone(),
            resolver: listener.resolver.clone(),
            router: listener.router.clone(),
            metrics: listener.metrics.clone(),
            timeouts: listener.timeouts.clone(),
            stages: listener.stages.clone(),
            http1,
            http2,
        }
    }

    async fn serve(
        self: Arc<Self>,
        tcp: TcpStream,
        peer: SocketAddr,
        _permit: OwnedSemaphorePermit,
    ) {
        let _open = OpenConnection::new(&self.metrics);
        let accepted = Instant::now();
        let mut abort = self.stages.abort.clone();
        // Watched from before the handshake: a swap during it closes the connection too.
        let swaps = self.resolver.swaps();
        let handshake = tokio::time::timeout(self.timeouts.header_read, self.acceptor.accept(tcp));
        let tls = tokio::select! {
            biased;
            () = raised(&mut abort) => return,
            () = self.timeouts.evictions.evicted(accepted) => {
                return self.handshake_failed(peer, "closed to make room for waiting clients", false);
            }
            handshake = handshake => match handshake {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => return self.handshake_failed(peer, &error.to_string(), refused_certificate(&error)),
                Err(_) => return self.handshake_failed(peer, "timed out", false),
            },
        };
        self.metrics.record_handshake(&self.resolver.serial());
        let protocol = match tls.get_ref().1.alpn_protocol() {
            Some(b"h2") => Protocol::Http2,
            _ => Protocol::Http1,
        };
        let (io, activity) = TimedIo::new(tls, self.timeouts.clone(), protocol, accepted);
        let service = TowerToHyperService::new(self.router.clone());
        let io = TokioIo::new(io);
        let result = match protocol {
            Protocol::Http2 => {
                let service = TrackRequests::new(service, activity);
                let conn = self.http2.serve_connection(io, service);
                drive(
                    conn,
                    |conn| conn.graceful_shutdown(),
                    self.stages.clone(),
                    Some(swaps),
                )
                .await
            }
            Protocol::Http1 => {
                let service = TrackRequests::new(CloseAfterSwap::new(service, swaps), activity);
                let conn = self.http1.serve_connection(io, service);
                drive(
                    conn,
                    |conn| conn.graceful_shutdown(),
                    self.stages.clone(),
                    None,
                )
                .await
            }
        };
        if let Some(Err(error)) = result {
            debug!(%peer, %error, "connection closed with an error");
        }
    }

    fn handshake_failed(&self, peer: SocketAddr, error: &str, refused_certificate: bool) {
        self.metrics.handshake_failures.inc();
        // Probes and port scans fail handshakes all day; a refused client is worth a line.
        if refused_certificate {
            info!(%peer, %error, "TLS handshake refused: client certificate");
        } else {
            debug!(%peer, %error, "TLS handshake failed");
        }
    }
}

fn refused_certificate(error: &std::io::Error) -> bool {
    matches!(
        error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
    )
}

/// Serves a connection until it ends; on the graceful stage, or once the serving
/// certificate was swapped (`swaps`: HTTP/2 only, see `CloseAfterSwap` for HTTP/1), it
/// finishes in-flight requests (HTTP/1 closes once idle, HTTP/2 sends GOAWAY) and the
/// client connects anew; on abort it is dropped. None if aborted.
async fn drive<C, E>(
    conn: C,
    begin_graceful: impl FnOnce(Pin<&mut C>),
    mut stages: Stages,
    swaps: Option<watch::Receiver<u64>>,
) -> Option<Result<(), E>>
where
    C: Future<Output = Result<(), E>>,
{
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        biased;
        () = raised(&mut stages.abort) => return None,
        result = conn.as_mut() => return Some(result),
        () = raised(&mut stages.graceful) => begin_graceful(conn.as_mut()),
        () = swapped(swaps) => begin_graceful(conn.as_mut()),
    }
    tokio::select! {
        biased;
        () = raised(&mut stages.abort) => None,
        result = conn => Some(result),
    }
}

/// Resolves at the first certificate swap; never without a receiver, or once the resolver
/// is gone (the server with it: the stages say when to stop).
async fn swapped(swaps: Option<watch::Receiver<u64>>) {
    if let Some(mut swaps) = swaps
        && swaps.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

/// Keeps the open-connections gauge right however the task ends.
struct OpenConnection(Arc<Metrics>);

impl OpenConnection {
    fn new(metrics: &Arc<Metrics>) -> OpenConnection {
        metrics.open_connections.inc();
        OpenConnection(metrics.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open_connections.dec();
    }
}
