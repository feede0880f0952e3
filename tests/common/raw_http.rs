//! HTTP/1.1 over TLS by hand, for what reqwest cannot send (a body that never comes,
//! headers that stop half-way), and checks of how the server closes connections.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::pki::install_provider;
use super::wait::{PATIENCE, eventually};

/// A TLS connection speaking HTTP/1.1, for requests reqwest cannot make (a body that
/// never comes, headers that stop half-way).
pub async fn raw_connect(addr: SocketAddr, ca_pem: &str) -> TlsStream<TcpStream> {
    raw_connect_with(addr, ca_pem, rustls::DEFAULT_VERSIONS)
        .await
        .unwrap()
}

/// The same, offering only the TLS `versions` given.
pub async fn raw_connect_with(
    addr: SocketAddr,
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tls_over(tcp, ca_pem, versions).await
}

/// TLS speaking HTTP/1.1 over a TCP connection made by the caller, verifying `ca_pem`.
pub async fn tls_over(
    tcp: TcpStream,
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<TlsStream<TcpStream>> {
    install_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_protocol_versions(versions)
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = TlsConnector::from(Arc::new(config));
    let name = ServerName::IpAddress(tcp.peer_addr()?.ip().into());
    connector.connect(name, tcp).await
}

/// The head of an HTTP/1.1 JSON POST of `length` body bytes.
pub fn post_head(path: &str, length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

pub struct RawResponse {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// Reads one HTTP/1.1 response (Content-Length framed); None if the server closed first.
pub async fn raw_response<R: AsyncRead + Unpin>(stream: &mut R) -> Option<RawResponse> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[header_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    Some(RawResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Returns once nothing accepts connections on `addr` any more.
pub async fn wait_until_listener_closed(addr: SocketAddr) {
    eventually("the listener closed", || async {
        TcpStream::connect(addr).await.is_err().then_some(())
    })
    .await;
}

/// True once the server has closed the connection (EOF or reset), within PATIENCE.
pub async fn closed_by_server(stream: &mut TlsStream<TcpStream>) -> bool {
    let mut chunk = [0u8; 1024];
    let read = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    read.await.is_ok()
}

pub async fn raw_send(stream: &mut TlsStream<TcpStream>, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
}
