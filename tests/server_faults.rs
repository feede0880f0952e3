//! Robustness: the certificate and the policy reloaded under load, clients that vanish
//! mid-request, a 100 MB body and JSON nested 10,000 deep, slow clients, and TLS 1.0/1.1 or
//! weak cipher suites; all while other clients keep being answered, every one of them.

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::time::Duration;

use common::{
    cli::*, clients::*, corpus::*, load::*, pki::*, raw_http::*, server::*, volume::*, wait::*,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

// ------------------------------------------------------------- reloads under load

/// Three kubelet-style rotations while keep-alive and new-connection clients loop on both
/// endpoints over HTTP/1.1 and HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotations_under_load_fail_no_request_and_change_no_answer() {
    let pki = Pki::new("rotation under load CA");
    let mut server = TestServer::start(&pki, &[]).await;
    let requests = normal_requests();
    let expected = cli_answers(&requests, None);
    let rotations = [pki.server(2091), pki.server(2092), pki.server(2093)];
    let mut generations = vec![der_of(&server.first_cert.cert_pem)];
    generations.extend(rotations.iter().map(|pair| der_of(&pair.cert_pem)));

    let load = Load::start(server.addr(), &pki.ca_pem, &EVERY_CLIENT, &requests);
    load.more(2).await;
    for (pair, new) in rotations.iter().zip(&generations[1..]) {
        let from = load.len();
        server.tls.update(&[
            ("tls.crt", pair.cert_pem.as_bytes()),
            ("tls.key", pair.key_pem.as_bytes()),
        ]);
        eventually(
            "a new connection presenting the new certificate",
            || async {
                load.since(from)
                    .iter()
                    .any(|o| matches!(&o.result, Ok((200, _, cert)) if cert == new))
                    .then_some(())
            },
        )
        .await;
        load.more(5).await;
    }
    let outcomes = load.stop().await;
    assert_all_answered(&outcomes, &expected);

    let generation = |cert: &Vec<u8>| {
        generations
            .iter()
            .position(|known| known == cert)
            .expect("an unknown certificate was presented")
    };
    for (client, (_, reuse)) in EVERY_CLIENT.iter().enumerate() {
        let seen: Vec<usize> = outcomes
            .iter()
            .filter(|outcome| outcome.client == client)
            .map(|outcome| generation(&outcome.result.as_ref().unwrap().2))
            .collect();
        if *reuse == Reuse::Fresh {
            // Every handshake presents the newest certificate: never an older one again.
            assert!(
                seen.windows(2).all(|pair| pair[0] <= pair[1]),
                "client {client}: an old certificate came back: {seen:?}"
            );
            assert_eq!(seen.last(), Some(&rotations.len()), "client {client}");
        }
    }
    let metrics = server.metrics().await;
    assert_eq!(
        metrics.value("deployguard_tls_reloads_total", &[("outcome", "ok")]),
        3.0
    );
    assert_eq!(
        metrics.value("deployguard_tls_reloads_total", &[("outcome", "failed")]),
        0.0
    );
    assert_eq!(
        metrics.value("deployguard_tls_certificate_not_after_seconds", &[]),
        new_year(2093) as f64
    );
}

/// `defaultMode` enforce denies the denied example, warn allows it: which policy judged
/// each request is visible in its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_policy_reloaded_under_load_is_refused_and_the_old_one_keeps_judging() {
    let pki = Pki::new("policy under load CA");
    let temp = tempfile::tempdir().unwrap();
    let enforce: &[u8] = b"defaultMode: enforce\n";
    let warn: &[u8] = b"defaultMode: warn\n";
    let invalid: &[u8] = b"defaultMode: warn\nrules: [liveness-probe\n";
    let mut volume = Volume::new(&temp.path().join("policy"), &[("policy.yaml", enforce)]);
    let config = volume.path("policy.yaml").display().to_string();
    let server = TestServer::start(&pki, &["--config", &config]).await;

    let denied = corpus_review(DENIED);
    let requests = vec![("/validate", denied.clone()), ("/mutate", denied)];
    let policy_file = |name: &str, bytes: &[u8]| {
        let path = temp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let under_enforce = cli_answers(&requests, Some(&policy_file("enforce.yaml", enforce)));
    let under_warn = cli_answers(&requests, Some(&policy_file("warn.yaml", warn)));
    let allowed = |answer: &[u8]| {
        let review: serde_json::Value = serde_json::from_slice(answer).unwrap();
        review["response"]["allowed"].as_bool().unwrap()
    };
    assert!(!allowed(&under_enforce[0]) && allowed(&under_warn[0]));
    let reloads = || async {
        let metrics = server.metrics().await;
        (
            metrics.value("deployguard_config_reloads_total", &[("outcome", "ok")]),
            metrics.value("deployguard_config_reloads_total", &[("outcome", "failed")]),
        )
    };

    let load = Load::start(server.addr(), &pki.ca_pem, &EVERY_CLIENT, &requests);
    load.more(2).await;
    volume.update(&[("policy.yaml", invalid)]);
    eventually("the invalid policy refused", || async {
        (reloads().await == (0.0, 1.0)).then_some(())
    })
    .await;
    load.more(4).await;

    let before_valid = load.len();
    volume.update(&[("policy.yaml", warn)]);
    eventually("the warn policy reloaded", || async {
        (reloads().await == (1.0, 1.0)).then_some(())
    })
    .await;
    let reloaded = std::time::Instant::now();
    load.more(4).await;
    let outcomes = load.stop().await;

    // Zero failures; until the valid change, every answer is the enforce policy's.
    assert_all_answered(&outcomes[..before_valid], &under_enforce);
    for outcome in &outcomes[before_valid..] {
        let right = match &outcome.result {
            Ok((200, body, _)) => {
                *body == under_enforce[outcome.request] || *body == under_warn[outcome.request]
            }
            _ => false,
        };
        assert!(right, "during the valid change: {outcome:?}");
    }
    // Requests that started after the reload are judged by the warn policy.
    let after: Vec<Outcome> = outcomes
        .iter()
        .filter(|outcome| outcome.started > reloaded)
        .cloned()
        .collect();
    assert!(!after.is_empty());
    assert_all_answered(&after, &under_warn);
    // And each client, once judged by warn, is never judged by enforce again.
    for client in 0..EVERY_CLIENT.len() {
        let verdicts: Vec<bool> = outcomes
            .iter()
            .filter(|outcome| outcome.client == client && outcome.request == 0)
            .map(|outcome| allowed(&outcome.result.as_ref().unwrap().1))
            .collect();
        assert!(
            verdicts.windows(2).all(|pair| pair[0] <= pair[1]),
            "client {client}: the old policy came back: {verdicts:?}"
        );
    }
    assert_eq!(reloads().await, (1.0, 1.0));
}

// -------------------------------------------------------- clients that vanish

const HALF_BODY_LENGTH: usize = 1000;

/// An HTTP/1.1 request with headers and half its body sent, and the rest never coming.
async fn half_sent_request(
    server: &TestServer,
    chunked: bool,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut stream = raw_connect(server.addr(), &server.ca_pem).await;
    let half = vec![b' '; HALF_BODY_LENGTH / 2];
    if chunked {
        let head = "POST /mutate HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
        raw_send(&mut stream, head.as_bytes()).await;
        raw_send(&mut stream, format!("{:x}\r\n", half.len()).as_bytes()).await;
        raw_send(&mut stream, &half).await;
    } else {
        raw_send(
            &mut stream,
            post_head("/validate", HALF_BODY_LENGTH).as_bytes(),
        )
        .await;
        raw_send(&mut stream, &half).await;
    }
    stream
}

/// An HTTP/2 request with half its body sent, on `client`'s connection; the task holds it.
async fn half_sent_h2_request(
    server: &TestServer,
    client: reqwest::Client,
) -> tokio::task::JoinHandle<()> {
    let (sender, body) = body_channel();
    let request = client.post(server.url("/validate")).body(body);
    let task = tokio::spawn(async move {
        let _ = request.send().await;
        drop(client);
    });
    sender
        .send(vec![b' '; HALF_BODY_LENGTH / 2].into())
        .await
        .unwrap();
    // Held open by a sender that never sends again.
    tokio::spawn(async move {
        sender.closed().await;
    });
    task
}

async fn gauges(server: &TestServer) -> (f64, f64) {
    let metrics = server.metrics().await;
    (
        metrics.value("deployguard_open_connections", &[]),
        metrics.value("deployguard_in_flight_requests", &[]),
    )
}

/// Requests in flight and half-sent headers, their clients gone at once in every way a
/// client can go (FIN without close_notify, close_notify, TCP reset, HTTP/2 connection
/// closed, HTTP/2 stream cancelled). The timeouts are a minute, so only noticing the
/// departures can free their connections within PATIENCE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_vanish_mid_request_leave_nothing_behind_while_others_are_answered() {
    let pki = Pki::new("vanishing clients CA");
    let server = TestServer::start(
        &pki,
        &["--header-read-timeout", "60", "--request-timeout", "60"],
    )
    .await;
    assert_eq!(gauges(&server).await, (0.0, 0.0));
    const EACH: usize = 4;

    let mut dropped = Vec::new();
    let mut notified = Vec::new();
    let mut reset = Vec::new();
    let mut half_headers = Vec::new();
    let mut h2_connections = Vec::new();
    let mut h2_streams = Vec::new();
    let shared_h2 = client(&pki.ca_pem, Http::Two);
    for _ in 0..EACH {
        dropped.push(half_sent_request(&server, false).await);
        dropped.push(half_sent_request(&server, true).await);
        notified.push(half_sent_request(&server, false).await);
        reset.push(half_sent_request(&server, false).await);
        let mut stream = raw_connect(server.addr(), &pki.ca_pem).await;
        raw_send(&mut stream, b"POST /validate HTTP/1.1\r\nHost: loc").await;
        half_headers.push(stream);
        h2_connections.push(half_sent_h2_request(&server, client(&pki.ca_pem, Http::Two)).await);
        h2_streams.push(half_sent_h2_request(&server, shared_h2.clone()).await);
    }
    let in_flight = (EACH * 6) as f64;
    let open = (EACH * 6 + 1) as f64;
    eventually("every half-sent request in flight", || async {
        (gauges(&server).await == (open, in_flight)).then_some(())
    })
    .await;

    let requests = normal_requests();
    let expected = cli_answers(&requests, None);
    let load = Load::start(server.addr(), &pki.ca_pem, &EVERY_CLIENT, &requests);
    load.more(2).await;
    drop(dropped);
    for mut stream in notified {
        stream.shutdown().await.unwrap();
    }
    for stream in reset {
        stream.get_ref().0.set_zero_linger().unwrap();
    }
    drop(half_headers);
    for task in h2_connections.into_iter().chain(h2_streams) {
        task.abort();
    }
    load.more(5).await;
    // The connection whose streams were cancelled still serves.
    let (status, _, answer) = post(
        &shared_h2,
        Http::Two,
        &server.url("/mutate"),
        requests[1].1.clone(),
    )
    .await;
    assert_eq!((status, &answer), (200, &expected[1]));
    drop(shared_h2);
    let outcomes = load.stop().await;
    assert_all_answered(&outcomes, &expected);

    eventually(
        "every connection closed and no request in flight",
        || async { (gauges(&server).await == (0.0, 0.0)).then_some(()) },
    )
    .await;
    let metrics = server.metrics().await;
    assert_eq!(metrics.value("deployguard_panics_total", &[]), 0.0);
}

// ------------------------------------------------ huge and deeply nested bodies

const HUNDRED_MB: usize = 100 * 1000 * 1000;
const CHUNK: usize = 64 * 1024;

/// Streams a 100 MB body over HTTP/1.1 (chunked, or with its Content-Length) while reading
/// the answer: the answer, and how many body bytes the server let through before it.
async fn upload_100_mb_over_http1(server: &TestServer, chunked: bool) -> (RawResponse, usize) {
    let stream = raw_connect(server.addr(), &server.ca_pem).await;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let upload = async move {
        let head = if chunked {
            "POST /validate HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_owned()
        } else {
            post_head("/validate", HUNDRED_MB)
        };
        writer.write_all(head.as_bytes()).await.unwrap();
        let mut sent = 0;
        while sent < HUNDRED_MB {
            let mut piece = Vec::with_capacity(CHUNK + 16);
            if chunked {
                piece.extend_from_slice(format!("{CHUNK:x}\r\n").as_bytes());
            }
            piece.extend(std::iter::repeat_n(b' ', CHUNK));
            if chunked {
                piece.extend_from_slice(b"\r\n");
            }
            if writer.write_all(&piece).await.is_err() || writer.flush().await.is_err() {
                break;
            }
            sent += CHUNK;
        }
        sent
    };
    let upload = tokio::spawn(upload);
    let response = tokio::time::timeout(PATIENCE, raw_response(&mut reader))
        .await
        .expect("no answer to a 100 MB upload")
        .expect("the connection ended without an answer to a 100 MB upload");
    // The server closes the connection after its answer, which ends the upload.
    let sent = tokio::time::timeout(PATIENCE, upload)
        .await
        .expect("the upload went on after the answer")
        .unwrap();
    (response, sent)
}

/// The same over HTTP/2, without a declared length.
async fn upload_100_mb_over_http2(server: &TestServer) -> (u16, String, usize) {
    let client = client(&server.ca_pem, Http::Two);
    let (sender, body) = body_channel();
    let upload = tokio::spawn(async move {
        let mut sent = 0;
        while sent < HUNDRED_MB {
            if sender.send(vec![b' '; CHUNK].into()).await.is_err() {
                break;
            }
            sent += CHUNK;
        }
        sent
    });
    let response = client
        .post(server.url("/mutate"))
        .body(body)
        .send()
        .await
        .expect("no answer to a 100 MB upload over HTTP/2");
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let sent = tokio::time::timeout(PATIENCE, upload)
        .await
        .expect("the upload went on after the answer")
        .unwrap();
    (status, text, sent)
}

/// The CLI's review, or its reason for refusing the body.
type CliAnswer = Result<Vec<u8>, String>;

/// `{"a":{"a":…1…}}`, `depth` objects deep.
fn nested_objects(depth: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
}

/// The denied example with a JSON value 10,000 objects deep somewhere: as the old object
/// (to /validate), as an environment variable's value (to /mutate), or alone.
fn deeply_nested_requests() -> Vec<(&'static str, Vec<u8>)> {
    let review: serde_json::Value = serde_json::from_slice(&corpus_review(DENIED)).unwrap();
    let deep = nested_objects(10_000);
    let with = |place: &dyn Fn(&mut serde_json::Value) -> &mut serde_json::Value| {
        let mut review = review.clone();
        *place(&mut review) = "DEEP".into();
        serde_json::to_string(&review)
            .unwrap()
            .replace("\"DEEP\"", &deep)
            .into_bytes()
    };
    vec![
        ("/validate", with(&|r| &mut r["request"]["oldObject"])),
        (
            "/mutate",
            with(&|r| {
                &mut r["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"]
            }),
        ),
        ("/validate", deep.clone().into_bytes()),
        ("/mutate", deep.into_bytes()),
    ]
}

/// While normal clients loop: 100 MB uploads over HTTP/1.1 (chunked and declared) and
/// HTTP/2, each cut off at the 7 MiB limit with a 413; and JSON nested 10,000 deep to both
/// endpoints over both versions, each answered as the CLI answers it (a 400 with its reason
/// where the nesting is read, a review where it is skipped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_deeply_nested_bodies_are_refused_while_others_keep_being_answered() {
    let pki = Pki::new("abuse CA");
    let server = TestServer::start(&pki, &[]).await;
    let limit = 7 * 1024 * 1024;
    let requests = normal_requests();
    let expected = cli_answers(&requests, None);
    let load = Load::start(server.addr(), &pki.ca_pem, &EVERY_CLIENT, &requests);
    load.more(2).await;

    // Nesting where no rule reads is skipped without recursion, so some of these are
    // answered as reviews; the server must agree with the CLI on each, and refuse none
    // by falling over.
    let deep_requests: Vec<(&str, Vec<u8>, CliAnswer)> = deeply_nested_requests()
        .into_iter()
        .map(|(path, body)| {
            let answer = cli_review_result(path.trim_start_matches('/'), None, &body);
            (path, body, answer)
        })
        .collect();
    let expected_refusals = deep_requests.iter().filter(|(_, _, a)| a.is_err()).count();
    assert!(
        expected_refusals > 0,
        "the body nested alone is not a review"
    );
    let deep = async {
        let mut refused = 0;
        let mut attempts = Vec::new();
        for http in BOTH {
            for (path, body, expected) in &deep_requests {
                let client = client(&pki.ca_pem, http);
                let url = server.url(path);
                attempts.push(async move {
                    let (status, _, answer) = post(&client, http, &url, body.clone()).await;
                    (
                        status,
                        String::from_utf8_lossy(&answer).into_owned(),
                        expected,
                        http,
                        url,
                    )
                });
            }
        }
        for (status, answer, expected, http, url) in futures_util::future::join_all(attempts).await
        {
            match expected {
                Err(reason) => {
                    assert_eq!(status, 400, "{url} over {http:?}: {answer}");
                    assert_eq!(answer, format!("{reason}\n"), "{url} over {http:?}");
                    refused += 1;
                }
                Ok(review) => {
                    assert_eq!(status, 200, "{url} over {http:?}: {answer}");
                    assert_eq!(answer.as_bytes(), review.as_slice(), "{url} over {http:?}");
                }
            }
        }
        refused
    };
    let (
        (chunked, chunked_sent),
        (declared, declared_sent),
        (h2_status, h2_text, h2_sent),
        deep_refused,
    ) = tokio::join!(
        upload_100_mb_over_http1(&server, true),
        upload_100_mb_over_http1(&server, false),
        upload_100_mb_over_http2(&server),
        deep,
    );
    for (what, status, text, sent) in [
        (
            "chunked HTTP/1.1",
            chunked.status,
            &chunked.body,
            chunked_sent,
        ),
        (
            "declared HTTP/1.1",
            declared.status,
            &declared.body,
            declared_sent,
        ),
        ("HTTP/2", h2_status, &h2_text, h2_sent),
    ] {
        assert_eq!(status, 413, "{what}: {text}");
        assert!(
            text.contains(&format!(
                "larger than the limit of {limit} bytes (--max-body-bytes)"
            )),
            "{what}: {text}"
        );
        assert!(sent < HUNDRED_MB, "{what}: all 100 MB were read");
    }
    load.more(5).await;
    let outcomes = load.stop().await;
    assert_all_answered(&outcomes, &expected);

    let fresh = client(&pki.ca_pem, Http::One);
    assert_eq!(get_status(&fresh, &server.url("/healthz")).await, 200);
    assert_eq!(get_status(&fresh, &server.url("/readyz")).await, 200);
    let metrics = server.metrics().await;
    assert_eq!(metrics.value("deployguard_panics_total", &[]), 0.0);
    assert_eq!(
        metrics.value("deployguard_rejected_requests_total", &[("status", "413")]),
        3.0
    );
    assert_eq!(deep_refused, expected_refusals * BOTH.len());
    assert_eq!(
        metrics.value("deployguard_rejected_requests_total", &[("status", "400")]),
        deep_refused as f64
    );
}

// ----------------------------------------------------------------- slow clients

const TRICKLE: Duration = Duration::from_millis(500);

/// Sends `bytes` one at a time, TRICKLE apart, while reading: how many bytes went out
/// before the server answered (Some) or closed the connection (None).
async fn trickle<S: AsyncRead + AsyncWrite>(
    stream: S,
    bytes: &[u8],
) -> (usize, Option<RawResponse>) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let sent = std::sync::atomic::AtomicUsize::new(0);
    let write = async {
        for byte in bytes {
            if writer.write_all(&[*byte]).await.is_err() || writer.flush().await.is_err() {
                break;
            }
            sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(TRICKLE).await;
        }
        std::future::pending::<()>().await;
    };
    let answer = tokio::time::timeout(PATIENCE, async {
        tokio::select! {
            answer = raw_response(&mut reader) => answer,
            () = write => unreachable!(),
        }
    })
    .await
    .expect("a slow client was neither answered nor cut off");
    (sent.load(std::sync::atomic::Ordering::SeqCst), answer)
}

/// A whole request whose headers take ~40 s to trickle in.
fn slow_request() -> Vec<u8> {
    let mut request = post_head("/validate", 2).into_bytes();
    request.extend_from_slice(b"{}");
    request
}

#[derive(Debug, Clone, Copy)]
enum SlowHeaders {
    /// Request headers trickled on a new connection, from its first byte.
    NewConnection,
    /// The same on a keep-alive connection that first made a normal request.
    AfterARequest,
    /// The TLS ClientHello trickled.
    Handshake,
}

/// A slowloris: how many bytes it sent, out of how many, and the answer if it got one.
async fn slowloris(server: &TestServer, how: SlowHeaders) -> (usize, usize, Option<RawResponse>) {
    let request = slow_request();
    let (sent, answer) = match how {
        SlowHeaders::NewConnection => {
            let stream = raw_connect(server.addr(), &server.ca_pem).await;
            trickle(stream, &request).await
        }
        SlowHeaders::AfterARequest => {
            let mut stream = raw_connect(server.addr(), &server.ca_pem).await;
            raw_send(
                &mut stream,
                b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
            )
            .await;
            assert_eq!(
                raw_response(&mut stream)
                    .await
                    .expect("first answer")
                    .status,
                200
            );
            trickle(stream, &request).await
        }
        SlowHeaders::Handshake => {
            let tcp = TcpStream::connect(server.addr()).await.unwrap();
            let hello = client_hello(TLS_1_2, &[TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]);
            let (sent, answer) = trickle(tcp, &hello).await;
            return (sent, hello.len(), answer);
        }
    };
    (sent, request.len(), answer)
}

/// HTTP/1.1 headers at once, then a 200-byte body trickled.
async fn slow_body(server: &TestServer) -> (usize, usize, Option<RawResponse>) {
    let mut stream = raw_connect(server.addr(), &server.ca_pem).await;
    raw_send(&mut stream, post_head("/validate", 200).as_bytes()).await;
    let (sent, answer) = trickle(stream, &[b' '; 200]).await;
    (sent, 200, answer)
}

/// HTTP/2: the body trickled; the answer's status and text.
async fn slow_body_over_http2(server: &TestServer) -> (u16, String) {
    let client = client(&server.ca_pem, Http::Two);
    let (sender, body) = body_channel();
    let trickling = tokio::spawn(async move {
        loop {
            if sender.send(vec![b' '].into()).await.is_err() {
                break;
            }
            tokio::time::sleep(TRICKLE).await;
        }
    });
    let response = client
        .post(server.url("/mutate"))
        .header("content-length", "200")
        .body(body)
        .send()
        .await
        .expect("no answer to a slow HTTP/2 body");
    trickling.abort();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// With 3 s timeouts (normal clients need far less): slowlorises (on a new connection, on a
/// keep-alive one, in the TLS handshake) are disconnected and slow bodies (HTTP/1.1 and
/// HTTP/2) get a 408, long before they would have finished; normal clients are answered
/// all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_while_others_keep_being_answered() {
    let pki = Pki::new("slow clients CA");
    let server = TestServer::start(
        &pki,
        &["--header-read-timeout", "3", "--request-timeout", "3"],
    )
    .await;
    let requests = normal_requests();
    let expected = cli_answers(&requests, None);
    let load = Load::start(server.addr(), &pki.ca_pem, &EVERY_CLIENT, &requests);
    load.more(2).await;

    let (disconnected, timed_out, timed_out_h2) = tokio::join!(
        futures_util::future::join_all(
            [
                SlowHeaders::NewConnection,
                SlowHeaders::NewConnection,
                SlowHeaders::NewConnection,
                SlowHeaders::AfterARequest,
                SlowHeaders::AfterARequest,
                SlowHeaders::Handshake,
                SlowHeaders::Handshake,
            ]
            .map(|how| slowloris(&server, how))
        ),
        futures_util::future::join_all([
            slow_body(&server),
            slow_body(&server),
            slow_body(&server)
        ]),
        futures_util::future::join_all([
            slow_body_over_http2(&server),
            slow_body_over_http2(&server)
        ]),
    );
    for (sent, total, answer) in disconnected {
        assert!(
            answer.is_none(),
            "a slowloris was answered after {sent} bytes: {:?}",
            answer.map(|a| (a.status, a.body))
        );
        assert!(sent < total, "the whole request trickled in");
    }
    for (sent, total, answer) in timed_out {
        let answer = answer.expect("a slow body was cut off without a 408");
        assert_eq!(answer.status, 408, "{}", answer.body);
        assert!(
            answer
                .body
                .contains("request not received within 3 s (--request-timeout)"),
            "{}",
            answer.body
        );
        assert!(sent < total, "the whole body trickled in");
    }
    for (status, text) in timed_out_h2 {
        assert_eq!(status, 408, "{text}");
        assert!(text.contains("(--request-timeout)"), "{text}");
    }
    load.more(5).await;
    let outcomes = load.stop().await;
    assert_all_answered(&outcomes, &expected);

    let metrics = server.metrics().await;
    assert_eq!(
        metrics.value("deployguard_rejected_requests_total", &[("status", "408")]),
        5.0
    );
    assert!(metrics.value("deployguard_tls_handshake_failures_total", &[]) >= 2.0);
    assert_eq!(metrics.value("deployguard_panics_total", &[]), 0.0);
}

// ------------------------------------------------------------------------ TLS

const TLS_1_0: u16 = 0x0301;
const TLS_1_1: u16 = 0x0302;
const TLS_1_2: u16 = 0x0303;
const TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: u16 = 0xc02b;
const TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: u16 = 0xc02f;
const TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: u16 = 0xc009;
const TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: u16 = 0xc013;
const TLS_RSA_WITH_AES_128_CBC_SHA: u16 = 0x002f;
const TLS_RSA_WITH_3DES_EDE_CBC_SHA: u16 = 0x000a;
const TLS_RSA_WITH_RC4_128_SHA: u16 = 0x0005;

const ALERT_HANDSHAKE_FAILURE: u8 = 40;
const ALERT_PROTOCOL_VERSION: u8 = 70;

/// A ClientHello record as a TLS 1.0–1.2 client sends it: `version` as the client version,
/// no supported_versions extension (so no TLS 1.3), the `suites` offered, and the
/// extensions an ECDHE handshake needs.
fn client_hello(version: u16, suites: &[u16]) -> Vec<u8> {
    fn extension(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut bytes = kind.to_be_bytes().to_vec();
        bytes.extend_from_slice(&(data.len() as u16).to_be_bytes());
        bytes.extend_from_slice(data);
        bytes
    }
    let mut extensions = Vec::new();
    // supported_groups: x25519, secp256r1.
    extensions.extend(extension(0x000a, &[0, 4, 0x00, 0x1d, 0x00, 0x17]));
    // ec_point_formats: uncompressed.
    extensions.extend(extension(0x000b, &[1, 0]));
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256.
    extensions.extend(extension(
        0x000d,
        &[0, 6, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01],
    ));

    let mut hello = version.to_be_bytes().to_vec();
    hello.extend_from_slice(&[0x5a; 32]); // random
    hello.push(0); // no session id
    hello.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for suite in suites {
        hello.extend_from_slice(&suite.to_be_bytes());
    }
    hello.extend_from_slice(&[1, 0]); // compression: null
    hello.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    hello.extend(extensions);

    let mut handshake = vec![1]; // client_hello
    handshake.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend(hello);
    let mut record = vec![22]; // handshake
    record.extend_from_slice(&TLS_1_0.to_be_bytes());
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

#[derive(Debug, PartialEq, Eq)]
enum Reply {
    /// A fatal alert with this description.
    Alert(u8),
    /// A ServerHello choosing this version and cipher suite.
    ServerHello(u16, u16),
    /// Something else: record type and its first bytes.
    Other(u8, Vec<u8>),
    Closed,
}

/// Sends `hello` on a new TCP connection and reads the first record of the answer.
async fn hello_reply(server: &TestServer, hello: &[u8]) -> (Reply, TcpStream) {
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.write_all(hello).await.unwrap();
    let reply = tokio::time::timeout(PATIENCE, async {
        let mut header = [0u8; 5];
        if tcp.read_exact(&mut header).await.is_err() {
            return Reply::Closed;
        }
        let length = u16::from_be_bytes([header[3], header[4]]) as usize;
        let mut body = vec![0u8; length];
        if tcp.read_exact(&mut body).await.is_err() {
            return Reply::Closed;
        }
        match (header[0], body.as_slice()) {
            (21, [2, description]) => Reply::Alert(*description),
            // handshake: server_hello (2), length (3), version (2), random (32), session id.
            (22, [2, _, _, _, v1, v2, rest @ ..]) if rest.len() > 33 => {
                let session = rest[32] as usize;
                let suite = &rest[33 + session..35 + session];
                Reply::ServerHello(
                    u16::from_be_bytes([*v1, *v2]),
                    u16::from_be_bytes([suite[0], suite[1]]),
                )
            }
            (kind, bytes) => Reply::Other(kind, bytes[..bytes.len().min(16)].to_vec()),
        }
    })
    .await
    .expect("no reply to a ClientHello");
    (reply, tcp)
}

/// True once the peer has closed the TCP connection.
async fn tcp_closed(tcp: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(PATIENCE, async {
        loop {
            match tcp.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Hand-made ClientHellos: TLS 1.0 and 1.1 ones get a protocol_version alert even when they
/// offer suites the server has, a TLS 1.2 one offering only CBC, 3DES and RC4 suites a
/// handshake_failure alert; the same hello with a modern suite gets a ServerHello.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_0_and_1_1_and_weak_cipher_suites_are_refused_at_the_handshake() {
    let pki = Pki::new("old TLS CA");
    let server = TestServer::start(&pki, &[]).await;
    let every_suite = [
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
        TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
        TLS_RSA_WITH_AES_128_CBC_SHA,
    ];
    let weak_suites = [
        TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
        TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
        TLS_RSA_WITH_AES_128_CBC_SHA,
        TLS_RSA_WITH_3DES_EDE_CBC_SHA,
        TLS_RSA_WITH_RC4_128_SHA,
    ];
    let (control, _) = hello_reply(&server, &client_hello(TLS_1_2, &every_suite)).await;
    assert_eq!(
        control,
        Reply::ServerHello(TLS_1_2, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256),
        "the hand-made TLS 1.2 ClientHello is not understood"
    );
    let before = server
        .metrics()
        .await
        .value("deployguard_tls_handshake_failures_total", &[]);

    for (what, hello, alert) in [
        (
            "TLS 1.0",
            client_hello(TLS_1_0, &every_suite),
            ALERT_PROTOCOL_VERSION,
        ),
        (
            "TLS 1.1",
            client_hello(TLS_1_1, &every_suite),
            ALERT_PROTOCOL_VERSION,
        ),
        (
            "TLS 1.2 with weak suites only",
            client_hello(TLS_1_2, &weak_suites),
            ALERT_HANDSHAKE_FAILURE,
        ),
    ] {
        let (reply, mut tcp) = hello_reply(&server, &hello).await;
        assert_eq!(reply, Reply::Alert(alert), "{what}");
        assert!(
            tcp_closed(&mut tcp).await,
            "{what}: the connection stayed open"
        );
    }
    let failures = server
        .metrics()
        .await
        .value("deployguard_tls_handshake_failures_total", &[]);
    assert_eq!(failures - before, 3.0);
}

/// `openssl s_client` against the server: its output (stdout and stderr, with -msg) and
/// whether it succeeded. `.ci/run` installs openssl.
async fn s_client(server: &TestServer, ca: &Path, args: &[&str]) -> (bool, String) {
    let mut command = std::process::Command::new("openssl");
    command
        .args([
            "s_client",
            "-connect",
            &server.addr().to_string(),
            "-msg",
            "-brief",
        ])
        .arg("-CAfile")
        .arg(ca)
        .args(["-verify_return_error"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run openssl (apt install openssl): {error}"));
    let output = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + PATIENCE;
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("openssl s_client did not finish");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The same refusals with a real TLS stack, OpenSSL: TLS 1.0 and 1.1 clients (allowed
/// on the client side with SECLEVEL=0) and a TLS 1.2 client offering only CBC-SHA1 suites
/// send their ClientHello and get a fatal alert; a TLS 1.2 client with its defaults connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_clients_speaking_tls_1_0_or_1_1_or_offering_only_weak_suites_are_refused() {
    let pki = Pki::new("openssl CA");
    let server = TestServer::start(&pki, &[]).await;
    let ca = server.temp.path().join("ca.crt");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let (connected, text) = s_client(&server, &ca, &["-tls1_2"]).await;
    assert!(
        connected && text.contains("Protocol version: TLSv1.2"),
        "{text}"
    );
    assert!(text.contains("Verification: OK"), "{text}");

    for (what, args, hello) in [
        (
            "TLS 1.0",
            &["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"][..],
            "TLS 1.0, Handshake",
        ),
        (
            "TLS 1.1",
            &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"][..],
            "TLS 1.1, Handshake",
        ),
        (
            "TLS 1.2 with CBC-SHA1 suites only",
            &[
                "-tls1_2",
                "-cipher",
                "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA:DES-CBC3-SHA@SECLEVEL=0",
            ][..],
            "TLS 1.2, Handshake",
        ),
    ] {
        let (connected, text) = s_client(&server, &ca, args).await;
        // The client did offer it (it was not refused by OpenSSL itself) ...
        assert!(
            text.lines().any(|line| line.starts_with(">>> ")
                && line.contains(hello)
                && line.ends_with("ClientHello")),
            "{what}: no ClientHello sent:\n{text}"
        );
        // ... and the server answered with a fatal alert.
        assert!(
            !connected && !text.contains("CONNECTION ESTABLISHED"),
            "{what}: connected:\n{text}"
        );
        assert!(
            text.lines().any(|line| line.starts_with("<<< ")
                && (line.ends_with("fatal protocol_version")
                    || line.ends_with("fatal handshake_failure"))),
            "{what}: no fatal alert from the server:\n{text}"
        );
    }
}

// ------------------------------------------------------------ clients that stop reading

/// A TLS connection speaking HTTP/1.1 whose socket takes in at most a few kilobytes: a
/// client that does not read soon stops the server's writes.
async fn connect_with_a_tiny_receive_buffer(
    server: &TestServer,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(server.addr()).await.unwrap();
    tls_over(tcp, &server.ca_pem, rustls::DEFAULT_VERSIONS)
        .await
        .unwrap()
}

/// A "slow read": a client pipelines requests and never reads the answers, until the
/// server, unable to write, stops reading too. Nothing is in flight: the connection is as
/// idle as a connection can be, and must not keep its slot for ever (--idle-timeout 1,
/// and with every slot taken idle connections make room). With --max-connections 1, a
/// second client is answered only once the server gave that connection up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_answers_does_not_keep_its_connection_slot_for_ever() {
    let pki = Pki::new("slow reader CA");
    let server = TestServer::start(
        &pki,
        &[
            "--max-connections",
            "1",
            "--idle-timeout",
            "1",
            "--header-read-timeout",
            "1",
            "--request-timeout",
            "1",
        ],
    )
    .await;
    let stream = connect_with_a_tiny_receive_buffer(&server).await;
    let (reader, mut writer) = tokio::io::split(stream);
    let batch = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(100);
    let mut pipelined = 0;
    // Until a write waits for a second: the server has stopped reading.
    while pipelined < 1_000_000 {
        match tokio::time::timeout(Duration::from_secs(1), writer.write_all(&batch)).await {
            Ok(Ok(())) => pipelined += 100,
            Ok(Err(_)) | Err(_) => break,
        }
    }

    let other = client(&pki.ca_pem, Http::One);
    let answer = tokio::time::timeout(PATIENCE, other.get(server.url("/healthz")).send()).await;
    let open = server
        .metrics()
        .await
        .value("deployguard_open_connections", &[]);
    assert!(
        matches!(&answer, Ok(Ok(response)) if response.status() == 200),
        "a client that pipelined {pipelined} requests and reads nothing kept the only \
         connection slot for {PATIENCE:?} ({open} connections open): {answer:?}"
    );
    drop((reader, writer));
}
