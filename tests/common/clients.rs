//! HTTPS clients (reqwest) that trust only the test CA and speak one HTTP version.

use std::net::SocketAddr;

use super::pki::{CertPair, install_provider};
use super::wait::PATIENCE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Http {
    One,
    Two,
}

pub const BOTH: [Http; 2] = [Http::One, Http::Two];

fn builder(ca_pem: &str, http: Http) -> reqwest::ClientBuilder {
    install_provider();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let builder = reqwest::Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .tls_info(true)
        .timeout(PATIENCE);
    match http {
        Http::One => builder.http1_only(),
        Http::Two => builder.http2_prior_knowledge(),
    }
}

/// An HTTPS client that trusts only `ca_pem` and speaks exactly `http`.
pub fn client(ca_pem: &str, http: Http) -> reqwest::Client {
    builder(ca_pem, http).build().unwrap()
}

/// The same for `https://localhost:PORT` with `localhost` resolved to `addr`, so that the
/// certificate's DNS name is what gets verified.
pub fn localhost_client(ca_pem: &str, http: Http, addr: SocketAddr) -> reqwest::Client {
    builder(ca_pem, http)
        .resolve("localhost", addr)
        .build()
        .unwrap()
}

/// The same with a client certificate.
pub fn client_with_identity(ca_pem: &str, http: Http, identity: &CertPair) -> reqwest::Client {
    let pem = format!("{}{}", identity.cert_pem, identity.key_pem);
    let identity = reqwest::Identity::from_pem(pem.as_bytes()).unwrap();
    builder(ca_pem, http).identity(identity).build().unwrap()
}

pub fn expected_version(http: Http) -> reqwest::Version {
    match http {
        Http::One => reqwest::Version::HTTP_11,
        Http::Two => reqwest::Version::HTTP_2,
    }
}

/// POSTs `body` and returns status, content type and body, checking the HTTP version.
pub async fn post(
    client: &reqwest::Client,
    http: Http,
    url: &str,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e:?}"));
    assert_eq!(response.version(), expected_version(http), "POST {url}");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.bytes().await.unwrap().to_vec();
    (status, content_type, body)
}

pub async fn get_status(client: &reqwest::Client, url: &str) -> u16 {
    client.get(url).send().await.unwrap().status().as_u16()
}

/// PEM of the certificate the server presented on this response's connection.
pub fn peer_certificate(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}
