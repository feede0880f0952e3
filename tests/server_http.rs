//! The HTTPS server in-process over real TLS, HTTP/1.1 and HTTP/2: the same answers as
//! `deployguard review`, bad input (the full table runs in-process in server_routes.rs), body
//! limits, timeouts, metrics.

#[allow(dead_code)]
mod common;

use std::time::Duration;

use common::{cli::*, clients::*, corpus::*, pki::*, raw_http::*, server::*, wait::*};

const DENIED_EXAMPLE: &str = "examples/admission-review-denied.json";

fn example(path: &str) -> Vec<u8> {
    std::fs::read(repo_path(path)).unwrap()
}

/// Every corpus AdmissionReview, to both endpoints, over both HTTP versions, under the
/// default policy and a custom one: byte for byte what the CLI prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_byte_identical_to_the_cli() {
    let pki = Pki::new("corpus CA");
    let custom = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        custom.path(),
        "defaultMode: warn\nexemptions:\n  allowAnnotation: true\ngoRuntime:\n  mutateTemplates: true\n",
    )
    .unwrap();
    let custom_path = custom.path().display().to_string();
    let default_server = TestServer::start(&pki, &[]).await;
    let custom_server = TestServer::start(&pki, &["--config", &custom_path]).await;
    let reviews = admission_reviews();
    assert!(reviews.len() >= 30, "corpus not found: {}", reviews.len());
    let clients = BOTH.map(|http| (http, client(&pki.ca_pem, http)));
    let (mut answered, mut refused) = (0, 0);
    for (server, config) in [
        (&default_server, None),
        (&custom_server, Some(custom.path())),
    ] {
        for (name, body) in &reviews {
            for endpoint in ["validate", "mutate"] {
                let expected = cli_review_result(endpoint, config, body);
                for (http, client) in &clients {
                    let url = server.url(&format!("/{endpoint}"));
                    let (status, content_type, answer) =
                        post(client, *http, &url, body.clone()).await;
                    match &expected {
                        Ok(expected) => {
                            assert_eq!(status, 200, "{name} /{endpoint} {http:?}");
                            assert_eq!(content_type, "application/json");
                            assert!(
                                &answer == expected,
                                "{name} /{endpoint} over {http:?} differs from the CLI:\nserver: {}\ncli:    {}",
                                String::from_utf8_lossy(&answer),
                                String::from_utf8_lossy(expected)
                            );
                            answered += 1;
                        }
                        // The CLI refuses the file: the server refuses it with the same reason.
                        Err(reason) => {
                            assert_eq!(status, 400, "{name} /{endpoint} {http:?}");
                            assert_eq!(String::from_utf8_lossy(&answer), format!("{reason}\n"));
                            refused += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(answered + refused, reviews.len() * 2 * 2 * 2);
    assert!(
        answered > refused * 4,
        "{answered} answered, {refused} refused"
    );
}

/// The Go env follows the limits the pod really runs with: a reinvocation after VPA
/// lowered the limits replaces deployguard's values, and an in-place resize below the
/// running GOMEMLIMIT is denied, over real TLS and both HTTP versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinvocations_and_resizes_follow_the_running_limits() {
    let pki = Pki::new("resize CA");
    let server = TestServer::start(&pki, &[]).await;
    for (http, client) in BOTH.map(|http| (http, client(&pki.ca_pem, http))) {
        let answer_to = async |endpoint: &str, example_path: &str| {
            let url = server.url(endpoint);
            let (status, _, answer) = post(&client, http, &url, example(example_path)).await;
            assert_eq!(status, 200, "{endpoint} {http:?}");
            serde_json::from_slice::<serde_json::Value>(&answer).unwrap()
        };
        let response = answer_to("/mutate", "examples/admission-review-reinvocation.json").await;
        let patch = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            response["response"]["patch"].as_str().unwrap(),
        )
        .unwrap();
        let ops: serde_json::Value = serde_json::from_slice(&patch).unwrap();
        assert_eq!(
            ops[0],
            serde_json::json!({"op": "replace", "path": "/spec/containers/0/env/1/value", "value": "2"})
        );
        assert_eq!(ops[1]["value"], "691MiB", "{http:?}: {ops}");

        let response = answer_to("/validate", "examples/admission-review-resize.json").await;
        assert_eq!(response["response"]["allowed"], false, "{http:?}");
        assert_eq!(response["response"]["status"]["code"], 403);
        let message = response["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.contains("env cannot change in a running pod"),
            "{message}"
        );
    }
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// A few bad requests of each kind (the full table runs in-process in tests/server_routes.rs):
/// method, path, body, expected status, words the message must contain.
fn bad_requests() -> Vec<(&'static str, &'static str, Vec<u8>, u16, &'static str)> {
    vec![
        (
            "POST",
            "/validate",
            b"not json".to_vec(),
            400,
            "not valid JSON",
        ),
        (
            "POST",
            "/validate",
            nested(20_000).into_bytes(),
            400,
            "not an AdmissionReview",
        ),
        (
            "GET",
            "/validate",
            Vec::new(),
            405,
            "method GET is not allowed on /validate: use POST",
        ),
        (
            "POST",
            "/validate/extra",
            b"{}".to_vec(),
            404,
            "no route /validate/extra",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_that_names_the_problem_and_the_server_stays_healthy() {
    let pki = Pki::new("bad input CA");
    let server = TestServer::start(&pki, &["--max-body-bytes", "65536"]).await;
    let mut expected_rejections = 0.0;
    for http in BOTH {
        let client = client(&pki.ca_pem, http);
        for (method, path, body, status, message) in bad_requests() {
            let response = client
                .request(method.parse().unwrap(), server.url(path))
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {path} over {http:?}: {e:?}"));
            assert_eq!(response.version(), expected_version(http));
            assert_eq!(
                response.status().as_u16(),
                status,
                "{method} {path} {http:?}"
            );
            if status == 405 {
                let allow = response.headers()["allow"].to_str().unwrap().to_owned();
                assert!(message.ends_with(&allow), "Allow: {allow}");
            }
            let text = response.text().await.unwrap();
            assert!(
                text.contains(message),
                "{method} {path} over {http:?}: {text:?} does not say {message:?}"
            );
            expected_rejections += 1.0;
        }

        // A declared length over the limit, over HTTP/2 (HTTP/1.1 below, without a body).
        if http == Http::Two {
            let (status, _, text) =
                post(&client, http, &server.url("/validate"), vec![b' '; 1 << 20]).await;
            assert_eq!(status, 413);
            let text = String::from_utf8(text).unwrap();
            assert!(
                text.contains("larger than the limit of 65536 bytes"),
                "{text}"
            );
            expected_rejections += 1.0;
        }

        // Still healthy, and still judging.
        assert_eq!(get_status(&client, &server.url("/healthz")).await, 200);
        assert_eq!(get_status(&client, &server.url("/readyz")).await, 200);
        let (status, _, answer) = post(
            &client,
            http,
            &server.url("/validate"),
            example(DENIED_EXAMPLE),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            answer,
            cli_review("validate", None, &example(DENIED_EXAMPLE))
        );
    }
    let metrics = server.metrics().await;
    assert_eq!(metrics.value("deployguard_panics_total", &[]), 0.0);
    assert_eq!(
        metrics.value("deployguard_rejected_requests_total", &[]),
        expected_rejections
    );
    assert_eq!(
        metrics.value(
            "deployguard_rejected_requests_total",
            &[("route", "validate"), ("status", "405")]
        ),
        2.0
    );
}

/// HTTP/1.1: a declared length over the limit is refused before the body is sent; an
/// undeclared (chunked) one is cut off at the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_without_being_read() {
    let pki = Pki::new("limit CA");
    let server = TestServer::start(&pki, &["--max-body-bytes", "65536"]).await;

    let mut stream = raw_connect(server.addr(), &pki.ca_pem).await;
    // Claims 1 GiB and sends none of it: only an answer that does not wait for it can come.
    raw_send(
        &mut stream,
        b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n",
    )
    .await;
    let response = raw_response(&mut stream).await.expect("a 413 answer");
    assert_eq!(response.status, 413);
    assert!(
        response
            .body
            .contains("larger than the limit of 65536 bytes (--max-body-bytes)"),
        "{}",
        response.body
    );
    assert_eq!(
        response.headers.get("connection").map(String::as_str),
        Some("close")
    );

    let mut stream = raw_connect(server.addr(), &pki.ca_pem).await;
    let mut request =
        b"POST /mutate HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    request.extend_from_slice(format!("{:x}\r\n", 65537).as_bytes());
    request.extend(std::iter::repeat_n(b' ', 65537));
    raw_send(&mut stream, &request).await;
    let response = raw_response(&mut stream).await.expect("a 413 answer");
    assert_eq!(response.status, 413, "{}", response.body);
    assert!(
        response.body.contains("larger than the limit"),
        "{}",
        response.body
    );

    let metrics = server.metrics().await;
    assert_eq!(
        metrics.value("deployguard_rejected_requests_total", &[("status", "413")]),
        2.0
    );
}

/// Headers that stop half-way and a connection that never sends a request are cut off
/// after --header-read-timeout; a keep-alive connection idle for longer than that is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_but_idle_keep_alive_connections_stay() {
    let pki = Pki::new("timeout CA");
    let server = TestServer::start(&pki, &["--header-read-timeout", "1"]).await;

    let mut half = raw_connect(server.addr(), &pki.ca_pem).await;
    raw_send(&mut half, b"POST /validate HTTP/1.1\r\nHost: localhost\r\n").await;
    let mut silent = raw_connect(server.addr(), &pki.ca_pem).await;
    let mut idle = raw_connect(server.addr(), &pki.ca_pem).await;
    let healthz = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    raw_send(&mut idle, healthz).await;
    assert_eq!(
        raw_response(&mut idle).await.expect("first answer").status,
        200
    );

    assert!(
        closed_by_server(&mut half).await,
        "half-sent headers were waited on for ever"
    );
    assert!(
        closed_by_server(&mut silent).await,
        "a silent connection was kept for ever"
    );

    // Idle for twice the header timeout, then reused, as the API server does.
    tokio::time::sleep(Duration::from_secs(2)).await;
    raw_send(&mut idle, healthz).await;
    let again = raw_response(&mut idle)
        .await
        .expect("the idle connection was closed");
    assert_eq!(again.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_coming_gets_a_408() {
    let pki = Pki::new("request timeout CA");
    let server = TestServer::start(&pki, &["--request-timeout", "1"]).await;
    let mut stream = raw_connect(server.addr(), &pki.ca_pem).await;
    raw_send(
        &mut stream,
        b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{\"apiVe",
    )
    .await;
    let response = raw_response(&mut stream).await.expect("a 408 answer");
    assert_eq!(response.status, 408);
    assert!(
        response
            .body
            .contains("request not received within 1 s (--request-timeout)"),
        "{}",
        response.body
    );
}

/// With --max-connections 1 a second client waits while the first connection has a request
/// in flight (an idle one would make room: see server_flood.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_queues_further_clients() {
    let pki = Pki::new("cap CA");
    let server = TestServer::start(&pki, &["--max-connections", "1"]).await;
    let mut first = raw_connect(server.addr(), &pki.ca_pem).await;
    raw_send(
        &mut first,
        b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    )
    .await;

    let second_client = client(&pki.ca_pem, Http::One);
    let url = server.url("/healthz");
    let mut second = tokio::spawn(async move { second_client.get(url).send().await });
    // Not a timing assertion: with a working cap this never finishes while `first` is open.
    let early = tokio::time::timeout(Duration::from_millis(500), &mut second).await;
    assert!(
        early.is_err(),
        "a second connection was served past the cap"
    );
    drop(first);
    let response = tokio::time::timeout(PATIENCE, second)
        .await
        .expect("the queued client was never served")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_openmetrics_and_move() {
    let pki = Pki::new("metrics CA");
    let server = TestServer::start(&pki, &[]).await;
    let before = server.metrics().await;
    assert_eq!(
        before.value("deployguard_tls_certificate_not_after_seconds", &[]),
        new_year(2090) as f64
    );
    for family in [
        "# TYPE deployguard_tls_reloads counter",
        "# TYPE deployguard_config_reloads counter",
        "# TYPE deployguard_in_flight_requests gauge",
        "# TYPE deployguard_panics counter",
    ] {
        assert!(
            before.text.contains(family),
            "{family} missing:\n{}",
            before.text
        );
    }
    let denied = [
        ("endpoint", "validate"),
        ("kind", "Deployment"),
        ("operation", "CREATE"),
        ("decision", "denied"),
    ];
    assert_eq!(before.value("deployguard_reviews_total", &denied), 0.0);
    for outcome in ["ok", "failed"] {
        let labels = [("outcome", outcome)];
        assert!(before.text.contains(&format!(
            "deployguard_tls_reloads_total{{outcome=\"{outcome}\"}} 0"
        )));
        assert_eq!(
            before.value("deployguard_config_reloads_total", &labels),
            0.0
        );
    }

    let client = client(&pki.ca_pem, Http::Two);
    for _ in 0..3 {
        let (status, _, _) = post(
            &client,
            Http::Two,
            &server.url("/validate"),
            example(DENIED_EXAMPLE),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, _, _) = post(
        &client,
        Http::Two,
        &server.url("/mutate"),
        example("examples/admission-review.json"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, _) = post(&client, Http::Two, &server.url("/validate"), b"{".to_vec()).await;
    assert_eq!(status, 400);

    let after = server.metrics().await;
    for family in [
        "# TYPE deployguard_reviews counter",
        "# TYPE deployguard_findings counter",
        "# TYPE deployguard_request_duration_seconds histogram",
        "# TYPE deployguard_rejected_requests counter",
    ] {
        assert!(
            after.text.contains(family),
            "{family} missing:\n{}",
            after.text
        );
    }
    assert_eq!(after.value("deployguard_reviews_total", &denied), 3.0);
    assert_eq!(
        after.value(
            "deployguard_reviews_total",
            &[
                ("endpoint", "mutate"),
                ("kind", "Pod"),
                ("decision", "allowed")
            ]
        ),
        1.0
    );
    assert_eq!(
        after.value(
            "deployguard_findings_total",
            &[("rule", "liveness-probe"), ("mode", "enforce")]
        ),
        3.0
    );
    assert_eq!(
        after.value(
            "deployguard_request_duration_seconds_count",
            &[("endpoint", "validate")]
        ),
        4.0
    );
    assert_eq!(
        after.value(
            "deployguard_request_duration_seconds_bucket",
            &[("endpoint", "validate"), ("le", "+Inf")]
        ),
        4.0
    );
    assert_eq!(
        after.value(
            "deployguard_rejected_requests_total",
            &[("route", "validate"), ("status", "400")]
        ),
        1.0
    );
    assert_eq!(after.value("deployguard_in_flight_requests", &[]), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_and_1_3_are_both_served() {
    let pki = Pki::new("versions CA");
    let server = TestServer::start(&pki, &[]).await;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let mut stream = raw_connect_with(server.addr(), &pki.ca_pem, &[version])
            .await
            .unwrap_or_else(|e| panic!("{version:?} refused: {e}"));
        assert_eq!(stream.get_ref().1.protocol_version(), Some(version.version));
        raw_send(
            &mut stream,
            b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
        )
        .await;
        assert_eq!(raw_response(&mut stream).await.unwrap().status, 200);
    }
}

/// 404 and 405 read a small body before answering, so that a client still sending it
/// (HTTP/2 especially) gets the status rather than a reset stream, and the connection
/// carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_with_a_body_are_answered_after_reading_it() {
    let pki = Pki::new("refusal body CA");
    let server = TestServer::start(&pki, &[]).await;
    let body = vec![b'x'; 60 * 1024];
    for http in BOTH {
        let client = client(&pki.ca_pem, http);
        for (method, path, status, reason) in [
            ("POST", "/nope", 404, "no route /nope"),
            (
                "PUT",
                "/healthz",
                405,
                "method PUT is not allowed on /healthz: use GET",
            ),
        ] {
            let response = client
                .request(method.parse().unwrap(), server.url(path))
                .body(body.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{method} {path} over {http:?}: {e:?}"));
            assert_eq!(response.version(), expected_version(http));
            assert_eq!(
                response.status().as_u16(),
                status,
                "{method} {path} {http:?}"
            );
            let text = response.text().await.unwrap();
            assert!(text.starts_with(reason), "{method} {path} {http:?}: {text}");
        }
        assert_eq!(
            get_status(&client, &server.url("/healthz")).await,
            200,
            "{http:?}"
        );
    }
}
