//! rustls configuration: TLS 1.2 and 1.3, ALPN h2 and http/1.1, a serving certificate
//! that can be swapped while connections come and go, and optional client certificates.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, version};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio::sync::watch;

use crate::server::tls::cert_fields::{not_after_unix, serial_hex};

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}: not a PEM certificate chain: {reason}")]
    CertPem { path: String, reason: String },
    #[error("{path}: no certificate (no `BEGIN CERTIFICATE` block)")]
    NoCertificate { path: String },
    #[error("{path}: no usable PEM private key: {reason}")]
    KeyPem { path: String, reason: String },
    #[error("{cert} with key {key}: {reason}")]
    Unusable {
        cert: String,
        key: String,
        reason: String,
    },
    #[error("client CA {path}: {message}")]
    ClientCa { path: String, message: String },
    #[error("cannot build the TLS configuration: {0}")]
    Config(rustls::Error),
}

/// A certificate chain and key that rustls accepted, and the leaf's expiry and serial.
pub struct LoadedCert {
    pub key: CertifiedKey,
    pub not_after: Option<i64>,
    /// Lower-case hex; empty if the leaf could not be read (rustls accepted it anyway).
    pub serial: String,
}

/// Parses a PEM chain and key; refuses a key that does not match the leaf certificate.
pub fn load_cert(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<LoadedCert, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::CertPem {
            path: cert_path.display().to_string(),
            reason: pem_reason(error, "no `BEGIN CERTIFICATE` block"),
        })?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|error| TlsError::KeyPem {
        path: key_path.display().to_string(),
        reason: pem_reason(
            error,
            "no `BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY` block",
        ),
    })?;
    certified(chain, key, cert_path, key_path, provider)
}

/// What is wrong with a PEM file, in words (the library prints markers as byte arrays).
fn pem_reason(error: pem::Error, none_found: &str) -> String {
    match error {
        pem::Error::NoItemsFound => none_found.to_owned(),
        pem::Error::MissingSectionEnd { end_marker } => {
            let marker = String::from_utf8_lossy(&end_marker);
            format!(
                "a `BEGIN {0}` block has no `-----END {0}-----` line",
                marker.trim()
            )
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("malformed line {:?}", String::from_utf8_lossy(&line))
        }
        pem::Error::Base64Decode(error) => format!("a block is not valid base64 ({error})"),
        other => other.to_string(),
    }
}

/// Builds the rustls key from DER; the leaf must come first in `chain`.
pub fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<LoadedCert, TlsError> {
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate {
            path: cert_path.display().to_string(),
        });
    };
    let not_after = not_after_unix(leaf);
    let serial = serial_hex(leaf).unwrap_or_default();
    let key = CertifiedKey::from_der(chain, key, provider).map_err(|error| TlsError::Unusable {
        cert: cert_path.display().to_string(),
        key: key_path.display().to_string(),
        // rustls names its internal check (`KeyMismatch`); say what it means.
        reason: match error {
            rustls::Error::InconsistentKeys(_) => {
                "the private key does not belong to the certificate".into()
            }
            other => other.to_string(),
        },
    })?;
    Ok(LoadedCert {
        key,
        not_after,
        serial,
    })
}

/// Hands every handshake the certificate in force; the reloader swaps it. Swapping here
/// rather than rebuilding the `ServerConfig` keeps ALPN, versions and client auth as they are.
/// Each swap bumps a generation that open connections watch: they close once idle so that
/// clients (the API server keeps its connections for minutes) handshake again.
#[derive(Debug)]
pub struct CertResolver {
    current: ArcSwap<ServedCert>,
    generation: watch::Sender<u64>,
}

#[derive(Debug)]
struct ServedCert {
    key: Arc<CertifiedKey>,
    serial: Arc<str>,
}

impl CertResolver {
    pub fn new(key: CertifiedKey, serial: &str) -> CertResolver {
        CertResolver {
            current: ArcSwap::from_pointee(ServedCert {
                key: Arc::new(key),
                serial: serial.into(),
            }),
            generation: watch::channel(0).0,
        }
    }

    pub fn replace(&self, key: CertifiedKey, serial: &str) {
        self.current.store(Arc::new(ServedCert {
            key: Arc::new(key),
            serial: serial.into(),
        }));
        self.generation.send_modify(|generation| *generation += 1);
    }

    /// The serial of the certificate in force (what a handshake that just ended got,
    /// unless a swap landed during it).
    pub fn serial(&self) -> Arc<str> {
        self.current.load().serial.clone()
    }

    /// Changes with every swap.
    pub fn swaps(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().key.clone())
    }
}

/// The server configuration; `client_ca` (PEM bundle) makes a client certificate mandatory.
pub fn server_config(
    resolver: Arc<CertResolver>,
    client_ca: Option<(&Path, &[u8])>,
    provider: Arc<CryptoProvider>,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .map_err(TlsError::Config)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some((path, pem)) => {
            let client_error = |message: String| TlsError::ClientCa {
                path: path.display().to_string(),
                message,
            };
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| client_error(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| client_error(format!("not a usable CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(client_error("no `BEGIN CERTIFICATE` block".to_owned()));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| client_error(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(resolver);
    // No session resumption: a resumed handshake presents no certificate, so a client
    // reconnecting after a rotation would keep the old one (and the handshake counter
    // would credit the new one). The API server keeps its connections for minutes, and
    // client-go does not resume sessions anyway.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    // The API server speaks both; without ALPN every client falls back to HTTP/1.1.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
