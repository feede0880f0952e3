//! What can go wrong with the development certificate and its directory: one type for
//! `devcert` (making the certificate) and `dev_dir` (the private directory it is kept in).

use thiserror::Error;

const SEE: &str = "choose another directory with --dev-cert-dir, or pass --tls-cert and --tls-key";

#[derive(Debug, Error)]
pub enum DevCertError {
    #[error("cannot generate the development certificate: {0}")]
    Generate(rcgen::Error),
    #[error("development certificate directory {dir}: {reason} ({SEE})")]
    Dir { dir: String, reason: String },
    #[error("cannot write {path}: {error} ({SEE})")]
    Write { path: String, error: std::io::Error },
    #[error(
        "no directory for the development certificate: none of XDG_RUNTIME_DIR, XDG_CACHE_HOME and HOME is set ({SEE})"
    )]
    NoDefaultDir,
}
