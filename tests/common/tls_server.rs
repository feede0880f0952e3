//! Serving an axum router over HTTPS (HTTP/1.1 only) with a test certificate: the
//! in-process API stand-ins and the end-to-end tests' second webhook.

use std::sync::Arc;

use axum::Router;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::pki::{CertPair, install_provider};

/// A TLS acceptor presenting `cert`.
pub fn https_acceptor(cert: &CertPair) -> tokio_rustls::TlsAcceptor {
    install_provider();
    let chain = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).expect("key PEM");
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("TLS configuration");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Accepts connections on `listener` until the runtime stops, each served by `router`.
pub async fn serve_https(
    listener: tokio::net::TcpListener,
    router: Router,
    acceptor: tokio_rustls::TlsAcceptor,
) {
    while let Ok((tcp, _)) = listener.accept().await {
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
}
