//! `deployguard serve` as the built binary: SIGTERM with requests in flight, start-up
//! errors, and the README's run-it-and-curl flow with the development certificate.

#[allow(dead_code)]
mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::process::{Process, serve_ready};
use common::{cli::*, clients::*, corpus::*, openmetrics::*, pki::*, raw_http::*, wait::*};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readyz_503_then_stops_listening_and_lets_in_flight_requests_finish() {
    let pki = Pki::new("shutdown CA");
    let temp = tempfile::tempdir().unwrap();
    let (mut process, addr, metrics_addr) = serve_ready(
        &pki,
        temp.path(),
        &[
            "--drain-delay",
            "2",
            "--shutdown-grace",
            "20",
            "--request-timeout",
            "30",
        ],
    );

    // Three requests in flight: headers and half of the body sent, the rest held back.
    let body = std::fs::read(repo_path("examples/admission-review-denied.json")).unwrap();
    let (first_half, second_half) = body.split_at(body.len() / 2);
    let mut in_flight = Vec::new();
    for _ in 0..3 {
        let mut stream = raw_connect(addr, &pki.ca_pem).await;
        let head = post_head("/validate", body.len());
        raw_send(&mut stream, head.as_bytes()).await;
        raw_send(&mut stream, first_half).await;
        in_flight.push(stream);
    }
    // And a keep-alive connection that is idle: shutdown closes it without waiting.
    let mut idle = raw_connect(addr, &pki.ca_pem).await;
    raw_send(
        &mut idle,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert_eq!(raw_response(&mut idle).await.unwrap().status, 200);
    eventually("three requests in flight", || async {
        let metrics = scrape(metrics_addr).await;
        (metrics.value("deployguard_in_flight_requests", &[]) == 3.0).then_some(())
    })
    .await;

    process.signal("TERM");
    let probe = client(&pki.ca_pem, Http::One);
    let readyz = format!("https://{addr}/readyz");
    eventually("/readyz answering 503", || async {
        let status = probe.get(&readyz).send().await.ok()?.status();
        (status == 503).then_some(())
    })
    .await;
    // After the drain delay the listener is gone; the requests in flight are still open.
    wait_until_listener_closed(addr).await;
    assert!(closed_by_server(&mut idle).await);

    let expected = cli_review("validate", None, &body);
    for stream in &mut in_flight {
        raw_send(stream, second_half).await;
        let response = raw_response(stream)
            .await
            .expect("an in-flight request was dropped");
        assert_eq!(response.status, 200);
        assert_eq!(response.body.as_bytes(), expected.as_slice());
    }
    let status = process.wait_exit();
    assert_eq!(status.code(), Some(0), "stderr: {}", process.stderr());
    let log = process.remaining_log();
    for line in [
        "signal received",
        "shutting down",
        "listener closed",
        "all connections closed",
    ] {
        assert!(log.contains(line), "no {line:?} in the log:\n{log}");
    }
}

#[test]
fn an_invalid_policy_at_start_up_exits_non_zero_naming_the_problem() {
    let temp = tempfile::tempdir().unwrap();
    let policy = temp.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "defaultMode: enforce\nrules:\n  liveness-probe: sometimes\n",
    )
    .unwrap();
    let dev = temp.path().join("dev").display().to_string();
    let spawn_with_config = |config: &str| {
        Process::spawn(&[
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--config",
            config,
            "--dev-cert-dir",
            &dev,
        ])
    };
    let mut process = spawn_with_config(&policy.display().to_string());
    let status = process.wait_exit();
    let stderr = process.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&policy.display().to_string()), "{stderr}");
    assert!(
        stderr.contains("liveness-probe") && stderr.contains("sometimes"),
        "{stderr}"
    );
    assert!(!process.remaining_log().contains("deployguard ready"));

    let missing = temp.path().join("missing.yaml").display().to_string();
    let mut process = spawn_with_config(&missing);
    assert_eq!(process.wait_exit().code(), Some(1));
    let stderr = process.stderr();
    assert!(
        stderr.contains("cannot read policy file") && stderr.contains(&missing),
        "{stderr}"
    );
}

#[test]
fn a_port_in_use_exits_non_zero_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let temp = tempfile::tempdir().unwrap();
    let dev = temp.path().join("dev").display().to_string();
    let mut process = Process::spawn(&[
        "--listen",
        &addr,
        "--metrics-listen",
        "127.0.0.1:0",
        "--dev-cert-dir",
        &dev,
    ]);
    assert_eq!(process.wait_exit().code(), Some(1));
    let stderr = process.stderr();
    assert!(
        stderr.contains(&format!("cannot listen on {addr} (--listen)")),
        "{stderr}"
    );
}

/// The README flow: `serve` with no certificate, then a client that trusts the CA file
/// the log names, over `https://localhost`. JSON logs, one line per review, no bodies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_certificate_it_serves_a_dev_certificate_that_the_written_ca_verifies() {
    let temp = tempfile::tempdir().unwrap();
    let dev = temp.path().join("dev").display().to_string();
    let mut process = Process::spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--dev-cert-dir",
        &dev,
    ]);
    let json = |line: &str| -> serde_json::Value {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"))
    };
    let dev_line = json(&process.wait_for_line("development certificate"));
    let ca_path = dev_line["ca"].as_str().unwrap().to_owned();
    assert_eq!(Path::new(&ca_path), Path::new(&dev).join("ca.crt"));
    let ready = json(&process.wait_for_line("deployguard ready"));
    assert_eq!(ready["level"], "INFO");
    let addr: SocketAddr = ready["listen"].as_str().unwrap().parse().unwrap();

    let ca_pem = std::fs::read_to_string(&ca_path).unwrap();
    let body = std::fs::read(repo_path("examples/admission-review.json")).unwrap();
    let expected = cli_review("mutate", None, &body);
    for http in BOTH {
        let client = localhost_client(&ca_pem, http, addr);
        let url = format!("https://localhost:{}/mutate", addr.port());
        let (status, _, answer) = post(&client, http, &url, body.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(answer, expected);

        let review = json(&process.wait_for_line("\"review\""));
        for (field, value) in [
            ("uid", "3f0c1a52-9d1e-4f59-a8a4-2b8e6d0c9f17"),
            ("kind", "Pod"),
            ("namespace", "shop"),
            ("operation", "CREATE"),
            ("endpoint", "mutate"),
            ("decision", "allowed"),
        ] {
            assert_eq!(review[field], value, "{review}");
        }
        assert_eq!(review["patch_ops"], 2, "{review}");
        assert!(review["latency_us"].is_u64(), "{review}");
        assert!(review.get("rules").is_some(), "{review}");
        let line = review.to_string();
        assert!(
            !line.contains("containers") && !line.contains("image"),
            "{line}"
        );
    }

    process.signal("INT");
    assert_eq!(process.wait_exit().code(), Some(0), "{}", process.stderr());
}
