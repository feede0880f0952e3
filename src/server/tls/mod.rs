//! TLS: the rustls configuration and the swappable serving certificate, the fields read
//! from it, and the development certificate with its private directory.

pub(crate) mod cert_fields;
pub(crate) mod dev_dir;
pub(crate) mod dev_error;
pub(crate) mod devcert;
pub(crate) mod resolver;
