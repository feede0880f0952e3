//! Shared by the integration tests, one module per job. Each test crate uses only part of
//! it, hence the `#[allow(dead_code)]` on every `mod common;`.
pub mod cli;
pub mod clients;
pub mod corpus;
pub mod fake_kube_api;
pub mod fake_kube_lists;
pub mod load;
pub mod openmetrics;
pub mod pki;
pub mod process;
pub mod raw_http;
pub mod server;
pub mod tls_server;
pub mod volume;
pub mod wait;
