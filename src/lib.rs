//! deployguard: a Kubernetes admission webhook that requires health probes and resource
//! limits and sizes the Go runtime to its container.
//!
//! The engine (`deployguard-engine`, re-exported here as [`admission`], [`config`],
//! [`evaluate`], [`object`], [`patch`], [`policy`], [`workload`]) judges and patches; this
//! crate holds its two doors: the server ([`server`]) and the command line ([`cli`]), which
//! reads manifests through the offline door (`deployguard-offline`, re-exported as
//! [`documents`], [`manifest`] and [`yaml_edit`]).
//!
//! Errors say each cause once: a `thiserror` variant writes its cause into its message and
//! does not also expose it as a source (no field named `source`, no `#[source]`; `#[from]`
//! only with `#[error(transparent)]`), because logs print errors with `Display` and the CLI
//! prints the whole chain. Library messages that only make sense to someone reading the
//! library (option names, `Debug` output) are translated where they are caught.
//! `tests/error_messages.rs` runs every user-facing error through the binary.

pub use deployguard_engine::{
    admission, config, evaluate, object, patch, policy, strict, text, workload,
};
pub use deployguard_offline::{documents, manifest, yaml_edit};

pub mod cli;
pub mod clock;
pub mod policy_file;
pub mod server;
