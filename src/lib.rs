//! deployguard: a Kubernetes admission webhook that requires health probes and resource
//! limits and sizes the Go runtime to its container.
//!
//! The policy engine ([`policy`]) is pure; [`object`] reads the parts of an object it
//! needs, borrowed from the JSON text, [`workload`] finds pod specs in objects,
//! [`evaluate`] is the one seam where a workload is placed, judged or patched
//! ([`patch`] turns injections into RFC 6902 operations), and [`admission`] answers
//! AdmissionReviews. The server and the CLI are thin doors onto these.
//!
//! Errors say each cause once: a `thiserror` variant writes its cause into its message and
//! does not also expose it as a source (no field named `source`, no `#[source]`; `#[from]`
//! only with `#[error(transparent)]`), because logs print errors with `Display` and the CLI
//! prints the whole chain. Library messages that only make sense to someone reading the
//! library (option names, `Debug` output) are translated where they are caught.
//! `tests/error_messages.rs` runs every user-facing error through the binary.

pub mod admission;
pub mod cli;
pub mod clock;
pub mod config;
pub mod documents;
pub mod evaluate;
pub mod manifest;
pub mod object;
pub mod patch;
pub mod policy;
pub mod server;
pub mod strict;
pub mod text;
pub mod workload;
pub mod yaml_edit;
mod yaml_error;
