//! The HTTPS admission server: a thin door onto [`crate::admission::review`].
//!
//! [`start`] binds both ports and returns a [`RunningServer`] (tests drive it in-process);
//! [`serve`] is `deployguard serve`: logging, a runtime, and signals around [`start`].

mod error;
mod http;
mod lifecycle;
mod limit_ranges;
mod metrics;
mod tls;
mod transport;

use std::sync::Arc;
use std::time::Duration;

pub use error::ServerError;
pub use lifecycle::args::{LimitRangeArgs, LimitRangeMode, LogFormat, ServeArgs};
pub use lifecycle::config::{CertificateFiles, LimitRangeWatch, ServerConfig};
pub use lifecycle::start::{RunningServer, start};
pub use limit_ranges::LimitRangeError;
pub use tls::dev_error::DevCertError;
pub use tls::resolver::TlsError;
pub use transport::bind::ListenAddr;

use crate::policy::Policy;

/// The TLS port's routes over `policy`, without sockets, TLS or reloading: what `serve`
/// runs on every connection (the HTTP handler benchmark drives it directly).
pub fn router(policy: Policy, max_body_bytes: usize, request_timeout: Duration) -> axum::Router {
    let app = Arc::new(http::app::App::new(
        policy,
        Arc::new(metrics::Metrics::new()),
        max_body_bytes,
    ));
    http::routes::router(app, request_timeout)
}

/// Runs the server until SIGTERM/SIGINT, then drains and exits.
pub fn serve(args: ServeArgs) -> Result<(), ServerError> {
    let _log_writer = lifecycle::logging::init(args.log_format);
    // Several crates in the tree can bring a rustls provider; naming one avoids the
    // start-up panic when two are compiled in. Err only means one is already installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServerError::Runtime)?;
    let result = runtime.block_on(lifecycle::shutdown::run_until_signal(args.config()));
    // Connections still open after the grace period must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
