//! `--client-ca`: only clients with a certificate from that CA get through the handshake.

#[allow(dead_code)]
mod common;

use common::{cli::*, clients::*, corpus::*, pki::*, server::*};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_a_certificate_from_the_client_ca_are_refused_at_the_handshake() {
    let server_pki = Pki::new("server CA");
    let client_pki = Pki::new("client CA");
    let stranger_pki = Pki::new("stranger CA");
    let temp = tempfile::tempdir().unwrap();
    let client_ca = temp.path().join("client-ca.crt");
    std::fs::write(&client_ca, &client_pki.ca_pem).unwrap();
    let client_ca = client_ca.display().to_string();
    let server = TestServer::start(&server_pki, &["--client-ca", &client_ca]).await;
    let body = std::fs::read(repo_path("examples/admission-review.json")).unwrap();
    let expected = cli_review("mutate", None, &body);

    let apiserver = client_pki.client("kube-apiserver");
    // A certificate made for the server CA's own name, but from another CA.
    let stranger = stranger_pki.client("kube-apiserver");
    let mut refusals = 0.0;
    for http in BOTH {
        let anonymous = client(&server_pki.ca_pem, http);
        let error = anonymous
            .post(server.url("/mutate"))
            .body(body.clone())
            .send()
            .await
            .expect_err("a client without a certificate got an answer");
        assert!(
            error.status().is_none(),
            "refused with an HTTP status: {error:?}"
        );
        refusals += 1.0;

        let impostor = client_with_identity(&server_pki.ca_pem, http, &stranger);
        let error = impostor
            .post(server.url("/mutate"))
            .body(body.clone())
            .send()
            .await
            .expect_err("a certificate from another CA got an answer");
        assert!(
            error.status().is_none(),
            "refused with an HTTP status: {error:?}"
        );
        refusals += 1.0;

        let trusted = client_with_identity(&server_pki.ca_pem, http, &apiserver);
        let (status, _, answer) = post(&trusted, http, &server.url("/mutate"), body.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(answer, expected);
    }
    let failures = server
        .metrics()
        .await
        .value("deployguard_tls_handshake_failures_total", &[]);
    assert!(
        failures >= refusals,
        "{failures} handshake failures counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_client_ca_stops_the_start() {
    install_provider();
    let pki = Pki::new("server CA");
    let temp = tempfile::tempdir().unwrap();
    let client_ca = temp.path().join("client-ca.crt");
    std::fs::write(&client_ca, "no certificate here\n").unwrap();
    let client_ca = client_ca.display().to_string();
    let pair = pki.server(2090);
    let cert = temp.path().join("tls.crt");
    let key = temp.path().join("tls.key");
    std::fs::write(&cert, &pair.cert_pem).unwrap();
    std::fs::write(&key, &pair.key_pem).unwrap();
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let error = deployguard::server::start(&serve_args(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--client-ca",
        &client_ca,
    ]))
    .await
    .err()
    .expect("a client CA without certificates must not start");
    let message = error.to_string();
    assert!(
        message.contains("client CA") && message.contains(&client_ca),
        "{message}"
    );
}
