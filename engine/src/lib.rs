//! deployguard's policy engine, shared by the webhook and the command line.
//!
//! [`object`] reads the parts of an object the rules need, borrowed from the JSON text;
//! [`workload`] finds the pod spec in an object; [`policy`] judges it (pure: no IO, no
//! async, no clock: the caller says what day it is); [`evaluate`] is the one seam where a
//! workload is placed, judged or patched ([`patch`] turns injections into RFC 6902
//! operations); [`admission`] answers AdmissionReviews; [`config`] reads and validates the
//! policy file's text.
//!
//! Errors say each cause once: a `thiserror` variant writes its cause into its message and
//! does not also expose it as a source (no field named `source`, no `#[source]`; `#[from]`
//! only with `#[error(transparent)]`), because logs print errors with `Display` and the CLI
//! prints the whole chain.

pub mod admission;
pub mod config;
pub mod evaluate;
pub mod object;
pub mod patch;
pub mod policy;
pub mod strict;
pub mod text;
pub mod workload;
pub mod yaml_error;
