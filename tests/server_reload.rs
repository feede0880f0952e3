//! Hot reloads: the serving certificate rotated by a kubelet-style symlink swap while
//! clients keep connecting, a broken certificate refused, and the policy file reloaded
//! (a bad one refused, the old one kept).

#[allow(dead_code)]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{cli::*, clients::*, corpus::*, pki::*, server::*, volume::*, wait::*};

/// One request on a brand-new connection: Ok(certificate presented) or the error.
async fn fresh_request(ca_pem: &str, http: Http, url: &str) -> Result<Vec<u8>, String> {
    let client = client(ca_pem, http);
    let response = client.get(url).send().await.map_err(|e| format!("{e:?}"))?;
    if response.status() != 200 {
        return Err(format!("status {}", response.status()));
    }
    Ok(peer_certificate(&response))
}

/// Two rotations in a row (a watch on the file rather than the directory survives only the
/// first), while clients loop on new connections alternating HTTP/1.1 and HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_fails_no_request_and_new_handshakes_present_the_new_one() {
    let pki = Pki::new("rotation CA");
    let mut server = TestServer::start(&pki, &[]).await;
    let rotations = [pki.server(2095), pki.server(2096)];
    let mut generations = vec![der_of(&server.first_cert.cert_pem)];
    generations.extend(rotations.iter().map(|pair| der_of(&pair.cert_pem)));

    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(std::sync::Mutex::new(Vec::new()));
    let looping = {
        let (stop, made, results) = (stop.clone(), made.clone(), results.clone());
        let (ca, url) = (pki.ca_pem.clone(), server.url("/healthz"));
        tokio::spawn(async move {
            let mut turn = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let result = fresh_request(&ca, BOTH[turn % 2], &url).await;
                turn += 1;
                results.lock().unwrap().push(result);
                made.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let requests_after = |count: usize| {
        let made = made.clone();
        let at = made.load(Ordering::SeqCst);
        async move {
            eventually("more requests", || async {
                (made.load(Ordering::SeqCst) >= at + count).then_some(())
            })
            .await;
        }
    };

    requests_after(5).await;
    for (pair, der) in rotations.iter().zip(&generations[1..]) {
        server.tls.update(&[
            ("tls.crt", pair.cert_pem.as_bytes()),
            ("tls.key", pair.key_pem.as_bytes()),
        ]);
        eventually("a handshake presenting the new certificate", || async {
            let results = std::mem::take(&mut *results.lock().unwrap());
            results.iter().any(|r| r.as_ref() == Ok(der)).then_some(())
        })
        .await;
        requests_after(5).await;
    }
    stop.store(true, Ordering::SeqCst);
    looping.await.unwrap();

    let results = std::mem::take(&mut *results.lock().unwrap());
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "failed requests during rotation: {failures:?}"
    );
    // Each handshake presents the newest certificate: never an older one once a newer is seen.
    let mut newest = 0;
    for cert in results.iter().filter_map(|r| r.as_ref().ok()) {
        let generation = generations
            .iter()
            .position(|known| known == cert)
            .expect("an unknown certificate was presented");
        assert!(generation >= newest, "an old certificate came back");
        newest = generation;
    }
    assert_eq!(newest, 2);

    let metrics = server.metrics().await;
    assert_eq!(
        metrics.value("deployguard_tls_reloads_total", &[("outcome", "ok")]),
        2.0
    );
    assert_eq!(
        metrics.value("deployguard_tls_reloads_total", &[("outcome", "failed")]),
        0.0
    );
    assert_eq!(
        metrics.value("deployguard_tls_certificate_not_after_seconds", &[]),
        new_year(2096) as f64
    );
}

/// A client that keeps its connection (as the API server does for minutes) handshakes
/// again after a rotation: the server closes connections once idle after a swap (HTTP/2
/// with GOAWAY), and the handshake counter has one series per certificate served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_connections_close_after_a_rotation_and_handshakes_are_counted_by_serial() {
    for http in BOTH {
        let pki = Pki::new("rotation CA");
        let mut server = TestServer::start(&pki, &[]).await;
        let client = client(&pki.ca_pem, http);
        let url = server.url("/healthz");
        let get = || async {
            let response = client.get(&url).send().await.expect("no request may fail");
            assert_eq!(response.status(), 200);
            peer_certificate(&response)
        };
        let first = der_of(&server.first_cert.cert_pem);
        assert_eq!(get().await, first);
        assert_eq!(get().await, first, "{http:?}: a kept connection");
        let next = pki.server(2095);
        server.tls.update(&[
            ("tls.crt", next.cert_pem.as_bytes()),
            ("tls.key", next.key_pem.as_bytes()),
        ]);
        let rotated = der_of(&next.cert_pem);
        eventually("the same client presented the new certificate", || async {
            (get().await == rotated).then_some(())
        })
        .await;
        let metrics = server.metrics().await;
        let serials: Vec<&String> = metrics
            .samples
            .iter()
            .filter(|(name, _, value)| name == "deployguard_tls_handshakes_total" && *value >= 1.0)
            .filter_map(|(_, labels, _)| labels.get("serial"))
            .collect();
        assert_eq!(
            serials.len(),
            2,
            "{http:?}: handshakes by serial: {}",
            metrics.text
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_certificate_is_refused_and_the_old_one_keeps_serving() {
    let pki = Pki::new("broken CA");
    let mut server = TestServer::start(&pki, &[]).await;
    let first = der_of(&server.first_cert.cert_pem);
    let other = pki.server(2091);
    let mut expected_failures = 0.0;
    let broken: [(&str, Vec<u8>, Vec<u8>); 3] = [
        (
            "not a certificate",
            b"-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n".to_vec(),
            server.first_cert.key_pem.clone().into_bytes(),
        ),
        (
            "a key that does not match",
            other.cert_pem.clone().into_bytes(),
            server.first_cert.key_pem.clone().into_bytes(),
        ),
        (
            "an empty key file",
            other.cert_pem.clone().into_bytes(),
            Vec::new(),
        ),
    ];
    for (what, cert, key) in broken {
        server
            .tls
            .update(&[("tls.crt", cert.as_slice()), ("tls.key", key.as_slice())]);
        expected_failures += 1.0;
        eventually(&format!("the refusal of {what}"), || async {
            let metrics = server.metrics().await;
            let failed = metrics.value("deployguard_tls_reloads_total", &[("outcome", "failed")]);
            (failed == expected_failures).then_some(())
        })
        .await;
        for http in BOTH {
            let presented = fresh_request(&pki.ca_pem, http, &server.url("/healthz")).await;
            assert_eq!(presented, Ok(first.clone()), "after {what}, over {http:?}");
        }
    }
    let metrics = server.metrics().await;
    assert_eq!(
        metrics.value("deployguard_tls_reloads_total", &[("outcome", "ok")]),
        0.0
    );
    assert_eq!(
        metrics.value("deployguard_tls_certificate_not_after_seconds", &[]),
        new_year(2090) as f64
    );

    // Fixed: the good pair is taken.
    server.tls.update(&[
        ("tls.crt", other.cert_pem.as_bytes()),
        ("tls.key", other.key_pem.as_bytes()),
    ]);
    let other = der_of(&other.cert_pem);
    eventually("the fixed certificate in use", || async {
        let presented = fresh_request(&pki.ca_pem, Http::Two, &server.url("/healthz")).await;
        (presented == Ok(other.clone())).then_some(())
    })
    .await;
}

const DENIED: &str = "examples/admission-review-denied.json";

/// `allowed` of the /validate answer to the denied example.
async fn allowed(server: &TestServer, client: &reqwest::Client) -> (bool, Vec<u8>) {
    let body = std::fs::read(repo_path(DENIED)).unwrap();
    let (status, _, answer) = post(client, Http::One, &server.url("/validate"), body).await;
    assert_eq!(status, 200);
    let review: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    (review["response"]["allowed"].as_bool().unwrap(), answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_changes_apply_and_a_bad_policy_is_refused() {
    let pki = Pki::new("policy CA");
    let temp = tempfile::tempdir().unwrap();
    let enforce = b"defaultMode: enforce\n";
    let warn = b"defaultMode: warn\nrules:\n  cpu-request: audit\n";
    let mut volume = Volume::new(&temp.path().join("policy"), &[("policy.yaml", enforce)]);
    let config = volume.path("policy.yaml").display().to_string();
    let server = TestServer::start(&pki, &["--config", &config]).await;
    let client = client(&pki.ca_pem, Http::One);
    assert!(
        !allowed(&server, &client).await.0,
        "enforce denies the example"
    );

    // A good change (a ConfigMap update: the kubelet swaps ..data) takes effect.
    volume.update(&[("policy.yaml", warn)]);
    let answer = eventually("the warn policy in force", || async {
        let (allowed, answer) = allowed(&server, &client).await;
        allowed.then_some(answer)
    })
    .await;
    let warn_file = temp.path().join("warn.yaml");
    std::fs::write(&warn_file, warn).unwrap();
    let body = std::fs::read(repo_path(DENIED)).unwrap();
    assert_eq!(answer, cli_review("validate", Some(&warn_file), &body));

    // A bad change is refused and counted; the warn policy keeps judging.
    volume.update(&[("policy.yaml", b"defaultMode: sometimes\n")]);
    eventually("the bad policy refused", || async {
        let metrics = server.metrics().await;
        let failed = metrics.value("deployguard_config_reloads_total", &[("outcome", "failed")]);
        (failed == 1.0).then_some(())
    })
    .await;
    assert_eq!(allowed(&server, &client).await.1, answer);
    let metrics = server.metrics().await;
    assert_eq!(
        metrics.value("deployguard_config_reloads_total", &[("outcome", "ok")]),
        1.0
    );

    // Back to enforce, this time edited in place as a person would.
    let plain = temp.path().join("plain.yaml");
    std::fs::write(&plain, warn).unwrap();
    let plain_config = plain.display().to_string();
    let by_hand = TestServer::start(&pki, &["--config", &plain_config]).await;
    assert!(allowed(&by_hand, &client).await.0);
    std::fs::write(&plain, enforce).unwrap();
    eventually("the hand-edited policy in force", || async {
        (!allowed(&by_hand, &client).await.0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_policy_or_certificate_at_start_up_is_an_error_naming_it() {
    install_provider();
    let temp = tempfile::tempdir().unwrap();
    let policy = temp.path().join("policy.yaml");
    std::fs::write(&policy, "defaultMode: sometimes\n").unwrap();
    let policy_arg = policy.display().to_string();
    let error = deployguard::server::start(&serve_args(&[
        "--config",
        &policy_arg,
        "--dev-cert-dir",
        &temp.path().join("dev").display().to_string(),
    ]))
    .await
    .err()
    .expect("an invalid policy must not start");
    let message = error.to_string();
    assert!(
        message.contains(&policy_arg) && message.contains("defaultMode"),
        "{message}"
    );

    let cert = temp.path().join("tls.crt");
    std::fs::write(&cert, "garbage").unwrap();
    let cert_arg = cert.display().to_string();
    let error = deployguard::server::start(&serve_args(&[
        "--tls-cert",
        &cert_arg,
        "--tls-key",
        &cert_arg,
    ]))
    .await
    .err()
    .expect("a broken certificate must not start");
    let message = error.to_string();
    assert!(message.contains(&cert_arg), "{message}");
}
