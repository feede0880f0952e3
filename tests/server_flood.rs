//! A flood of idle connections (keep-alive connections left idle, TCP connections that
//! never start TLS) takes every connection slot; clients that come after are still served,
//! because the listener asks idle connections to make room.

#[allow(dead_code)]
mod common;

use common::{clients::*, pki::*, raw_http::*, server::*, wait::*};
use tokio::net::TcpStream;

const SLOTS: usize = 256;
const SILENT: usize = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_does_not_lock_other_clients_out() {
    let pki = Pki::new("flood CA");
    let slots = SLOTS.to_string();
    let server = TestServer::start(&pki, &["--max-connections", &slots]).await;

    // Keep-alive connections that made one request and went idle: they hold every slot
    // (the idle timeout is 120 s).
    let mut idle = Vec::new();
    for _ in 0..SLOTS {
        let mut stream = raw_connect(server.addr(), &pki.ca_pem).await;
        raw_send(
            &mut stream,
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
        )
        .await;
        assert_eq!(raw_response(&mut stream).await.expect("answer").status, 200);
        idle.push(stream);
    }
    // Behind them in the listen backlog, connections that never send a byte.
    let mut silent = Vec::new();
    for _ in 0..SILENT {
        silent.push(TcpStream::connect(server.addr()).await.unwrap());
    }

    // Clients arriving after all of them, each on a new connection, are served.
    for (round, http) in BOTH.iter().cycle().take(6).enumerate() {
        let fresh = client(&pki.ca_pem, *http);
        let answer = tokio::time::timeout(PATIENCE, fresh.get(server.url("/readyz")).send())
            .await
            .unwrap_or_else(|_| panic!("request {round} ({http:?}) was locked out"))
            .unwrap_or_else(|error| panic!("request {round} ({http:?}) failed: {error}"));
        assert_eq!(answer.status(), 200);
    }

    // The idle keep-alive connections were the ones closed to make room.
    for stream in &mut idle {
        assert!(
            closed_by_server(stream).await,
            "an idle connection kept its slot"
        );
    }
    let metrics = server.metrics().await;
    assert_eq!(metrics.value("deployguard_panics_total", &[]), 0.0);
    drop(silent);
}
