//! End-to-end tests against a real control plane: etcd, kube-apiserver and
//! kube-controller-manager built from pinned Go modules (tests/e2e/controlplane).
//! `cargo test` lists them as ignored; `tests/e2e/run` starts the cluster and runs them.
//!
//! Releases of the chart see only namespaces labelled for them, so tests run side by
//! side; the tests that install as a user would (webhooks on every namespace) hold the
//! cluster alone.

mod cluster_env;
mod deployguard;
mod namespaces;
// The integration tests' OpenMetrics reader; its async scrape is theirs alone.
#[path = "../common/openmetrics.rs"]
#[allow(dead_code)]
mod openmetrics;
#[path = "../common/pki.rs"]
#[allow(dead_code)]
mod pki;
mod second_webhook;
#[path = "../common/tls_server.rs"]
mod tls_server;
#[path = "../common/volume.rs"]
mod volume;
#[path = "../common/wait.rs"]
#[allow(dead_code)]
mod wait;

mod audit;
mod install;
mod judging;
mod limits;
mod manifests;
mod reinvocation;
mod rotation;

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static CLUSTER_WIDE: RwLock<()> = RwLock::new(());

/// For a test whose webhooks only see its own namespaces.
pub fn shared_cluster() -> RwLockReadGuard<'static, ()> {
    CLUSTER_WIDE
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// For a test whose webhooks see every namespace: nothing else runs meanwhile.
pub fn whole_cluster() -> RwLockWriteGuard<'static, ()> {
    CLUSTER_WIDE
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
