//! SIGTERM to the built binary under load: nothing that reached the server before its
//! listener closed fails, /readyz turns 503 first, and it exits 0 within the grace period.

#[allow(dead_code)]
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::process::serve_ready;
use common::{cli::*, clients::*, load::*, openmetrics::*, pki::*, raw_http::*, wait::*};

const DRAIN_DELAY: Duration = Duration::from_secs(2);
const GRACE: Duration = Duration::from_secs(5);
/// Each in-flight kind: HTTP/1.1 raw uploads, HTTP/2 streams on one connection, HTTP/2
/// streams each on its own connection.
const IN_FLIGHT_EACH: usize = 6;

/// A request whose headers and first half of the body have been sent; `finish` sends the
/// rest and returns the status and body of the answer.
enum InFlight {
    Http1(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
    Http2 {
        rest: tokio::sync::mpsc::Sender<hyper::body::Bytes>,
        answer: tokio::task::JoinHandle<Result<(u16, Vec<u8>), String>>,
    },
}

impl InFlight {
    async fn start_http1(addr: SocketAddr, ca_pem: &str, body: &[u8]) -> InFlight {
        let mut stream = raw_connect(addr, ca_pem).await;
        let head = post_head("/validate", body.len());
        raw_send(&mut stream, head.as_bytes()).await;
        raw_send(&mut stream, &body[..body.len() / 2]).await;
        InFlight::Http1(Box::new(stream))
    }

    async fn start_http2(client: reqwest::Client, url: String, body: &[u8]) -> InFlight {
        let (rest, streamed) = body_channel();
        let length = body.len().to_string();
        let answer = tokio::spawn(async move {
            let response = client
                .post(url)
                .header("content-type", "application/json")
                .header("content-length", length)
                .body(streamed)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            let status = response.status().as_u16();
            let body = response.bytes().await.map_err(|e| format!("{e:?}"))?;
            Ok((status, body.to_vec()))
        });
        rest.send(body[..body.len() / 2].to_vec().into())
            .await
            .unwrap();
        InFlight::Http2 { rest, answer }
    }

    async fn finish(self, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
        let second_half = &body[body.len() / 2..];
        match self {
            InFlight::Http1(mut stream) => {
                raw_send(&mut stream, second_half).await;
                let response = raw_response(&mut stream)
                    .await
                    .ok_or("closed without an answer")?;
                Ok((response.status, response.body.into_bytes()))
            }
            InFlight::Http2 { rest, answer } => {
                rest.send(second_half.to_vec().into())
                    .await
                    .map_err(|_| "the body was dropped")?;
                drop(rest);
                tokio::time::timeout(PATIENCE, answer)
                    .await
                    .map_err(|_| "no answer")?
                    .unwrap()
            }
        }
    }
}

/// Requests in flight (half-uploaded bodies over HTTP/1.1 and HTTP/2) and clients looping
/// on keep-alive and new connections when SIGTERM arrives. /readyz turns 503 while new
/// connections are still accepted and served; the looping clients stop half-way through
/// the drain delay, so each of their requests reached the server before the listener
/// closed, and none may fail; once the listener is closed the in-flight uploads finish and
/// get their 200; then the process exits 0 with every connection closed, not cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_fails_no_request_that_reached_the_server() {
    let pki = Pki::new("sigterm under load CA");
    let temp = tempfile::tempdir().unwrap();
    let (drain, grace) = (
        DRAIN_DELAY.as_secs().to_string(),
        GRACE.as_secs().to_string(),
    );
    let (mut process, addr, metrics_addr) = serve_ready(
        &pki,
        temp.path(),
        &[
            "--drain-delay",
            &drain,
            "--shutdown-grace",
            &grace,
            "--request-timeout",
            "30",
            "--header-read-timeout",
            "30",
        ],
    );

    let requests = normal_requests();
    let expected = cli_answers(&requests, None);
    let (_, slow_body) = &requests[0];

    // Requests in flight: half of their body sent, the rest held back.
    let mut in_flight = Vec::new();
    let shared = client(&pki.ca_pem, Http::Two);
    let url = format!("https://{addr}/validate");
    for _ in 0..IN_FLIGHT_EACH {
        in_flight.push(InFlight::start_http1(addr, &pki.ca_pem, slow_body).await);
        in_flight.push(InFlight::start_http2(shared.clone(), url.clone(), slow_body).await);
        let own = client(&pki.ca_pem, Http::Two);
        in_flight.push(InFlight::start_http2(own, url.clone(), slow_body).await);
    }
    eventually("every slow upload in flight", || async {
        let metrics = scrape(metrics_addr).await;
        (metrics.value("deployguard_in_flight_requests", &[]) == in_flight.len() as f64)
            .then_some(())
    })
    .await;

    let load = Load::start(addr, &pki.ca_pem, &EVERY_CLIENT, &requests);
    load.more(5).await;
    let terminated = Instant::now();
    process.signal("TERM");

    // Not ready any more, answered on a new connection: the listener still accepts.
    eventually("/readyz answering 503", || async {
        let probe = client(&pki.ca_pem, Http::One);
        let status = probe
            .get(format!("https://{addr}/readyz"))
            .send()
            .await
            .ok()?
            .status();
        (status == 503).then_some(())
    })
    .await;
    assert!(
        process.exit_status().is_none(),
        "exited before the drain delay"
    );
    let stop_at = terminated + DRAIN_DELAY / 2;
    tokio::time::sleep_until(stop_at.into()).await;
    let looped = load.stop().await;
    assert_all_answered(&looped, &expected);
    let during_drain = looped
        .iter()
        .filter(|outcome| outcome.started > terminated)
        .count();
    assert!(during_drain > 0, "no request made during the drain delay");

    wait_until_listener_closed(addr).await;
    let late = client(&pki.ca_pem, Http::Two)
        .post(&url)
        .body(slow_body.clone())
        .send()
        .await;
    assert!(
        late.as_ref().is_err_and(reqwest::Error::is_connect),
        "a request after the listener closed: {late:?}"
    );

    // The uploads in flight since before SIGTERM complete, every one.
    let mut answers = Vec::new();
    for request in in_flight {
        answers.push(request.finish(slow_body).await);
    }
    for (index, answer) in answers.iter().enumerate() {
        assert_eq!(
            answer
                .as_ref()
                .map(|(status, body)| (*status, body.as_slice())),
            Ok((200, expected[0].as_slice())),
            "in-flight request {index} (kind {})",
            index % 3
        );
    }
    drop(shared);

    let status = eventually("the process to exit", || {
        let status = process.exit_status();
        async move { status }
    })
    .await;
    let took = terminated.elapsed();
    assert_eq!(status.code(), Some(0), "stderr: {}", process.stderr());
    let log = process.remaining_log();
    assert!(
        log.contains("all connections closed") && !log.contains("grace period over"),
        "connections were cut at the end of the grace period:\n{log}"
    );
    assert!(
        took < DRAIN_DELAY + GRACE,
        "exited {took:?} after SIGTERM: past the grace period"
    );
}
