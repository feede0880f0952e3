//! The idle and stall timeouts hyper lacks, driven over in-memory streams.

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
