//! Why the server could not start or run: what `deployguard serve` reports before exiting.

use thiserror::Error;

use crate::config::ConfigError;
use crate::server::{DevCertError, LimitRangeError, TlsError};

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
