//! The HTTPS admission server: a thin door onto [`crate::admission::review`].
//!
//! [`start`] binds both ports and returns a [`RunningServer`] (tests drive it in-process);
//! [`serve`] is `deployguard serve`: logging, a runtime, and signals around [`start`].

mod app;
mod args;
mod bind;
mod body;
mod cert_fields;
mod close_after_swap;
mod config;
mod connection_timeouts;
mod dev_dir;
mod devcert;
mod grant_expiry;
mod limit_ranges;
mod listener;
mod logging;
mod metrics;
mod middleware;
mod refusal;
mod reload;
mod routes;
mod shutdown;
mod start;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

pub use args::{LimitRangeArgs, LimitRangeMode, LogFormat, ServeArgs};
pub use bind::ListenAddr;
pub use config::{CertificateFiles, LimitRangeWatch, ServerConfig};
pub use devcert::DevCertError;
pub use limit_ranges::LimitRangeError;
pub use start::{RunningServer, start};
pub use tls::TlsError;

use crate::config::ConfigError;
use crate::policy::Policy;

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
    let result = runtime.block_on(shutdown::run_until_signal(args.config()));
    // Connections still open after the grace period must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
