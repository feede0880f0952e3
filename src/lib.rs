//! deployguard: a Kubernetes admission webhook that requires health probes and resource
//! limits and sizes the Go runtime to its container.
//!
//! The policy engine ([`policy`]) is pure; [`workload`] finds pod specs in objects,
//! [`patch`] turns injections into RFC 6902 operations, and [`admission`] answers
//! AdmissionReviews. The server and the CLI are thin doors onto these.

pub mod admission;
pub mod cli;
pub mod clock;
pub mod config;
pub mod documents;
pub mod manifest;
pub mod patch;
pub mod policy;
pub mod server;
pub mod workload;
