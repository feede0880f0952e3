//! What the server runs on: typed and checked, built from the command line by
//! [`crate::server::ServeArgs::config`] or directly by tests.

use std::path::PathBuf;
use std::time::Duration;

use axum::http::Uri;

use crate::server::transport::bind::ListenAddr;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The TLS port (webhook endpoints and health).
    pub listen: ListenAddr,
    /// The plain-HTTP metrics port.
    pub metrics_listen: ListenAddr,
    /// The serving certificate; `None`: a development CA and certificate are made.
    pub certificate: Option<CertificateFiles>,
    /// CA bundle client certificates must chain to (mTLS).
    pub client_ca: Option<PathBuf>,
    /// The policy file, watched for changes; `None`: the built-in default policy.
    pub policy_file: Option<PathBuf>,
    /// Largest request body accepted (at least 1).
    pub max_body_bytes: usize,
    /// How long in-flight requests get to finish after SIGTERM/SIGINT.
    pub shutdown_grace: Duration,
    /// How long the listener keeps accepting after SIGTERM while /readyz answers 503.
    pub drain_delay: Duration,
    /// TLS handshake, then each request's headers (HTTP/1.1).
    pub header_read_timeout: Duration,
    /// Request headers to answer, body included; also the longest wait for a client to
    /// read its answer.
    pub request_timeout: Duration,
    /// How long a keep-alive connection may stay idle.
    pub idle_timeout: Duration,
    /// Most TLS connections open at once (at least 1).
    pub max_connections: u32,
    /// Where the development certificate is kept; `None`: the per-user default.
    pub dev_cert_dir: Option<PathBuf>,
    /// The LimitRange watch; `None`: off.
    pub limit_ranges: Option<LimitRangeWatch>,
}

#[derive(Debug, Clone)]
pub struct CertificateFiles {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct LimitRangeWatch {
    /// How long /readyz waits for the first complete list.
    pub sync_timeout: Duration,
    /// An API server reached without credentials; `None`: KUBECONFIG, else in-cluster.
    pub kube_api_url: Option<Uri>,
}
