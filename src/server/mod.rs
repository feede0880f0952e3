//! The HTTPS admission server: a thin door onto [`crate::admission::review`].
//!
//! [`start`] binds both ports and returns a [`RunningServer`] (tests drive it in-process);
//! [`serve`] is `deployguard serve`: logging, a runtime, and signals around [`start`].

mod app;
mod bind;
mod body;
mod connection_timeouts;
mod dev_dir;
mod devcert;
mod grant_expiry;
mod limit_ranges;
mod listener;
mod logging;
mod metrics;
mod middleware;
mod not_after;
mod reload;
mod routes;
mod shutdown;
mod start;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use thiserror::Error;

pub use bind::ListenAddr;
pub use devcert::DevCertError;
pub use limit_ranges::LimitRangeError;
pub use start::{RunningServer, start};
pub use tls::TlsError;

use crate::config::ConfigError;
use crate::policy::Policy;

/// `deployguard serve` options; every flag has a `DEPLOYGUARD_*` environment variable.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address of the TLS port (webhook endpoints and health): an IP address
    /// (`[::]:8443` for IPv6 and IPv4) or a host name, every address it resolves to bound.
    #[arg(long, env = "DEPLOYGUARD_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: ListenAddr,
    /// Address of the plain-HTTP metrics port, written like --listen.
    #[arg(
        long,
        env = "DEPLOYGUARD_METRICS_LISTEN",
        default_value = "0.0.0.0:9090"
    )]
    pub metrics_listen: ListenAddr,
    /// Serving certificate chain (PEM). Without it a self-signed development CA and
    /// certificate are generated at start-up.
    #[arg(long, env = "DEPLOYGUARD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key of the serving certificate (PEM, PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "DEPLOYGUARD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA bundle (PEM) that client certificates must chain to; turns on mTLS.
    #[arg(long, env = "DEPLOYGUARD_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// Policy file (YAML); the built-in default policy when absent.
    #[arg(long, env = "DEPLOYGUARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format: `auto` writes text when standard output (where the log goes) is a
    /// terminal and JSON lines otherwise.
    #[arg(
        long,
        env = "DEPLOYGUARD_LOG_FORMAT",
        value_enum,
        default_value = "auto"
    )]
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes (the API server's own request limit is 3 MiB;
    /// an AdmissionReview carries the object twice on UPDATE).
    #[arg(long, env = "DEPLOYGUARD_MAX_BODY_BYTES", default_value_t = 7 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(long, env = "DEPLOYGUARD_SHUTDOWN_GRACE", default_value_t = 20)]
    pub shutdown_grace: u64,
    /// Seconds the listener keeps accepting after SIGTERM while /readyz reports 503, so
    /// that endpoints stop routing here first [default: 5; 0 without --tls-cert, where no
    /// endpoints route here].
    #[arg(long, env = "DEPLOYGUARD_DRAIN_DELAY")]
    pub drain_delay: Option<u64>,
    /// Seconds a client gets for the TLS handshake, then (HTTP/1.1) for the headers of its
    /// first request, and of each later request from its first byte on. Keep it below the
    /// webhook's timeoutSeconds.
    #[arg(long, env = "DEPLOYGUARD_HEADER_READ_TIMEOUT", default_value_t = 3)]
    pub header_read_timeout: u64,
    /// Seconds from the request headers to the answer, body upload included (408 after);
    /// also how long a connection may wait for its client to read before it is closed.
    /// Keep it below the webhook's timeoutSeconds.
    #[arg(long, env = "DEPLOYGUARD_REQUEST_TIMEOUT", default_value_t = 4)]
    pub request_timeout: u64,
    /// Seconds a keep-alive connection may stay idle. Above client-go's 90 s, so the API
    /// server closes its idle connections first. While all --max-connections are taken,
    /// connections idle (or silent since they connected) for 250 ms close to make room.
    #[arg(long, env = "DEPLOYGUARD_IDLE_TIMEOUT", default_value_t = 120)]
    pub idle_timeout: u64,
    /// Most TLS connections open at once; further clients wait in the listen backlog.
    #[arg(long, env = "DEPLOYGUARD_MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: u32,
    /// Private directory (created with mode 0700, refused if another user owns it or can
    /// write to it) where the development CA and certificate are kept and reused when no
    /// --tls-cert is given [default: $XDG_RUNTIME_DIR/deployguard-dev, else
    /// $XDG_CACHE_HOME/deployguard-dev or ~/.cache/deployguard-dev].
    #[arg(long, env = "DEPLOYGUARD_DEV_CERT_DIR")]
    pub dev_cert_dir: Option<PathBuf>,
    /// The LimitRange watch (boxed: these arguments are a variant of the CLI's command
    /// enum, which clippy wants small).
    #[command(flatten)]
    pub limit_ranges: Box<LimitRangeArgs>,
}

/// `serve`'s LimitRange options.
#[derive(Debug, Clone, Args)]
pub struct LimitRangeArgs {
    /// The cluster's LimitRanges: `watch` watches them cluster-wide (RBAC: list and watch
    /// limitranges), so that their defaults and bounds apply to templates as LimitRanger
    /// will apply them to the pods; `off` judges templates as written.
    #[arg(
        long = "limit-ranges",
        env = "DEPLOYGUARD_LIMIT_RANGES",
        value_enum,
        default_value = "off"
    )]
    pub mode: LimitRangeMode,
    /// Seconds /readyz waits for the first complete list of LimitRanges; then the server is
    /// ready without LimitRange data (logged, in /readyz's body and
    /// deployguard_limit_ranges_synced 0) until the list completes.
    #[arg(
        long = "limit-ranges-sync-timeout",
        env = "DEPLOYGUARD_LIMIT_RANGES_SYNC_TIMEOUT",
        default_value_t = 10
    )]
    pub sync_timeout: u64,
    /// API server URL for --limit-ranges watch, reached without credentials (kubectl
    /// proxy's http://127.0.0.1:8001, tests). Without it: KUBECONFIG, else the in-cluster
    /// service account.
    #[arg(long, env = "DEPLOYGUARD_KUBE_API_URL")]
    pub kube_api_url: Option<axum::http::Uri>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LimitRangeMode {
    Watch,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot listen on {addr} ({flag}): {error}")]
    Bind {
        flag: &'static str,
        addr: String,
        error: std::io::Error,
    },
    #[error("cannot resolve {addr} ({flag}): {error}")]
    Resolve {
        flag: &'static str,
        addr: String,
        error: std::io::Error,
    },
    #[error(transparent)]
    Policy(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    DevCert(#[from] DevCertError),
    #[error(transparent)]
    LimitRanges(#[from] LimitRangeError),
    #[error("{flag} must be at least {min}")]
    Invalid { flag: &'static str, min: u64 },
    #[error("the TLS library's random number generator failed")]
    Randomness,
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot install the SIGTERM/SIGINT handlers: {0}")]
    Signals(std::io::Error),
}

/// The TLS port's routes over `policy`, without sockets, TLS or reloading: what `serve`
/// runs on every connection (the HTTP handler benchmark drives it directly).
pub fn router(policy: Policy, max_body_bytes: usize, request_timeout: Duration) -> axum::Router {
    let app = Arc::new(app::App::new(
        policy,
        Arc::new(metrics::Metrics::new()),
        max_body_bytes,
    ));
    routes::router(app, request_timeout)
}

/// Runs the server until SIGTERM/SIGINT, then drains and exits.
pub fn serve(args: ServeArgs) -> Result<(), ServerError> {
    let _log_writer = logging::init(args.log_format);
    // Several crates in the tree can bring a rustls provider; naming one avoids the
    // start-up panic when two are compiled in. Err only means one is already installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServerError::Runtime)?;
    let result = runtime.block_on(shutdown::run_until_signal(args));
    // Connections still open after the grace period must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
