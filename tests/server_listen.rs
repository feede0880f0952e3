//! `--listen` and `--metrics-listen` as people write them: host names (every address
//! bound, one port) and IPv6, over real TLS with the development certificate.

#[allow(dead_code)]
mod common;

use std::net::SocketAddr;

use common::process::{Process, text_field};
use common::{clients::*, openmetrics::*};

/// `serve --listen LISTEN --metrics-listen METRICS` without a certificate, once ready: the
/// process, the CA, and the TLS and metrics addresses the log names.
fn dev_server(
    dir: &std::path::Path,
    listen: &str,
    metrics: &str,
) -> (Process, String, Vec<SocketAddr>, Vec<SocketAddr>) {
    let dev = dir.join("dev");
    let dev_arg = dev.display().to_string();
    let mut process = Process::spawn(&[
        "--listen",
        listen,
        "--metrics-listen",
        metrics,
        "--dev-cert-dir",
        &dev_arg,
        "--log-format",
        "text",
    ]);
    let ready = process.wait_for_line("deployguard ready");
    let addrs = |field: &str| -> Vec<SocketAddr> {
        text_field(&ready, field)
            .split(',')
            .map(|addr| addr.parse().unwrap())
            .collect()
    };
    let (tls, metrics) = (addrs("listen"), addrs("metrics_listen"));
    let ca = std::fs::read_to_string(dev.join("ca.crt")).unwrap();
    (process, ca, tls, metrics)
}

/// GET /healthz at `addr` over TLS, the name `localhost` verified against `ca`.
async fn healthz(ca: &str, addr: SocketAddr) -> u16 {
    let client = localhost_client(ca, Http::One, addr);
    let url = format!("https://localhost:{}/healthz", addr.port());
    client.get(url).send().await.unwrap().status().as_u16()
}

fn ipv6_available() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_binds_every_address_it_resolves_to_on_one_port() {
    let temp = tempfile::tempdir().unwrap();
    let (mut process, ca, tls, metrics) = dev_server(temp.path(), "localhost:0", "localhost:0");
    let expected: Vec<SocketAddr> = tokio::net::lookup_host("localhost:0")
        .await
        .unwrap()
        .collect();
    assert!(tls.iter().any(|addr| addr.ip().is_ipv4()), "{tls:?}");
    let port = tls[0].port();
    assert!(tls.iter().all(|addr| addr.port() == port), "{tls:?}");
    for addr in &tls {
        assert!(
            expected.iter().any(|e| e.ip() == addr.ip()),
            "{addr} not in {expected:?}"
        );
        assert_eq!(healthz(&ca, *addr).await, 200, "{addr}");
    }
    if ipv6_available() && expected.iter().any(SocketAddr::is_ipv6) {
        assert!(tls.iter().any(SocketAddr::is_ipv6), "{tls:?}");
    }
    for addr in &metrics {
        assert_eq!(
            scrape(*addr)
                .await
                .value("deployguard_in_flight_requests", &[]),
            0.0
        );
    }
    process.signal("TERM");
    assert_eq!(process.wait_exit().code(), Some(0), "{}", process.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_any_serves_ipv6_and_ipv4_clients() {
    if !ipv6_available() {
        eprintln!("skipped: no IPv6 on this machine");
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let (_process, ca, tls, _) = dev_server(temp.path(), "[::]:0", "127.0.0.1:0");
    assert_eq!(tls.len(), 1, "{tls:?}");
    assert!(tls[0].ip().is_unspecified() && tls[0].is_ipv6(), "{tls:?}");
    let port = tls[0].port();
    for client_side in ["[::1]", "127.0.0.1"] {
        let addr: SocketAddr = format!("{client_side}:{port}").parse().unwrap();
        assert_eq!(healthz(&ca, addr).await, 200, "{addr}");
    }
}

#[test]
fn an_address_that_is_not_host_and_port_is_refused_by_the_flag_parser() {
    let temp = tempfile::tempdir().unwrap();
    let dev = temp.path().join("dev").display().to_string();
    let mut process = Process::spawn(&["--listen", "::1:8443", "--dev-cert-dir", &dev]);
    assert_eq!(process.wait_exit().code(), Some(2));
    let stderr = process.stderr();
    assert!(stderr.contains("IPv6 addresses go in brackets"), "{stderr}");
}
