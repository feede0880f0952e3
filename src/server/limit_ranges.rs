//! The cluster's LimitRanges, for judging templates as the pods they make will be admitted
//! (`--limit-ranges watch`).
//!
//! kube-rs's watcher lists every LimitRange, then watches from the list's resourceVersion;
//! it relists after `410 Gone`, resumes after a dropped connection, and is polled through
//! the default backoff after errors. Each change rebuilds a [`LimitRanges`] snapshot that
//! requests load whole (there are few LimitRanges). `/readyz` waits for the first complete
//! list, but not for ever: after `--limit-ranges-sync-timeout` the server is ready without
//! LimitRange data, and says so.

mod live_read;
mod store;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::http::Uri;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::LimitRange as LimitRangeObject;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use thiserror::Error;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

pub use live_read::second_look;

use crate::policy::{LimitRange, LimitRanges};
use crate::server::metrics::Metrics;
use store::{Applied, Store};

/// Longest wait for a live read of one namespace's LimitRanges: well inside the webhook's
/// timeout (5 s in the chart), as it only ever delays a denial.
const LIVE_READ_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause before watching again should the watch stream ever end (kube's never does).
const RESTART_PAUSE: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum LimitRangeError {
    #[error(
        "--limit-ranges watch: no Kubernetes API to watch (neither KUBECONFIG nor an in-cluster service account is usable; use --limit-ranges off or --kube-api-url): {0}"
    )]
    Config(kube::config::InferConfigError),
    #[error("--limit-ranges watch: cannot set up the Kubernetes client: {0}")]
    Client(kube::Error),
}

/// Whether the first complete list has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SyncState {
    /// Not yet, and the sync timeout has not passed: not ready.
    Waiting = 0,
    /// A complete list arrived; the view follows the watch from there.
    Synced = 1,
    /// The sync timeout passed first: ready, judging without LimitRange data until a list
    /// completes.
    GaveUp = 2,
}

impl SyncState {
    fn from_u8(value: u8) -> SyncState {
        match value {
            1 => SyncState::Synced,
            2 => SyncState::GaveUp,
            _ => SyncState::Waiting,
        }
    }
}

/// The current LimitRanges and the client that keeps them, shared by every request.
pub struct LimitRangeView {
    snapshot: ArcSwap<LimitRanges>,
    sync: AtomicU8,
    client: kube::Client,
    sync_timeout: Duration,
    live_read_timeout: Duration,
    metrics: Arc<Metrics>,
}

impl fmt::Debug for LimitRangeView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitRangeView")
            .field("sync", &self.sync())
            .field("sync_timeout", &self.sync_timeout)
            .finish_non_exhaustive()
    }
}

/// Stops the watch when dropped.
pub struct WatchHandle {
    tasks: [JoinHandle<()>; 2],
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A client for `api_url` (reached without credentials: `kubectl proxy`, tests), or, without
/// it, for the API that KUBECONFIG or the in-cluster service account names.
pub async fn client(api_url: Option<&Uri>) -> Result<kube::Client, LimitRangeError> {
    let config = match api_url {
        Some(url) => kube::Config::new(url.clone()),
        None => kube::Config::infer()
            .await
            .map_err(LimitRangeError::Config)?,
    };
    kube::Client::try_from(config).map_err(LimitRangeError::Client)
}

impl LimitRangeView {
    /// An empty, unsynced view. Live reads get at most half of `request_timeout`, so that a
    /// slow API never turns a denial into a 408.
    pub fn new(
        client: kube::Client,
        sync_timeout: Duration,
        request_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> LimitRangeView {
        LimitRangeView {
            snapshot: ArcSwap::from_pointee(LimitRanges::new()),
            sync: AtomicU8::new(SyncState::Waiting as u8),
            client,
            sync_timeout,
            live_read_timeout: LIVE_READ_TIMEOUT.min(request_timeout / 2),
            metrics,
        }
    }

    /// The LimitRanges to judge a request with.
    pub fn snapshot(&self) -> Arc<LimitRanges> {
        self.snapshot.load_full()
    }

    pub fn sync(&self) -> SyncState {
        SyncState::from_u8(self.sync.load(Ordering::SeqCst))
    }

    /// `/readyz`: whether to report ready, and the detail for its body.
    pub fn readiness(&self) -> (bool, String) {
        let timeout = self.sync_timeout.as_secs();
        match self.sync() {
            SyncState::Waiting => (
                false,
                format!(
                    "not ready: waiting for the first list of LimitRanges (at most {timeout} s, --limit-ranges-sync-timeout)"
                ),
            ),
            SyncState::Synced => (true, "ok: LimitRanges synced".to_owned()),
            SyncState::GaveUp => (
                true,
                format!(
                    "ok, without LimitRange data: no complete list of LimitRanges within {timeout} s (--limit-ranges-sync-timeout); templates are judged without LimitRange defaults and bounds until the watch lists them"
                ),
            ),
        }
    }

    /// Starts the watch and the sync timeout.
    pub fn spawn_watch(self: &Arc<Self>) -> WatchHandle {
        let api = Api::<DynamicObject>::all_with(self.client.clone(), &resource());
        WatchHandle {
            tasks: [
                tokio::spawn(self.clone().watch(api)),
                tokio::spawn(self.clone().give_up_after_timeout()),
            ],
        }
    }

    async fn watch(self: Arc<Self>, api: Api<DynamicObject>) {
        let mut store = Store::default();
        loop {
            let events = watcher(api.clone(), watcher::Config::default()).default_backoff();
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                match event {
                    Ok(event) => match store.apply(event) {
                        Applied::Nothing => {}
                        Applied::Changed => {
                            self.publish(&store);
                        }
                        Applied::Listed => {
                            let (ranges, invalid) = self.publish(&store);
                            self.mark_synced(ranges, invalid);
                        }
                    },
                    Err(error) => {
                        self.metrics.limit_ranges.watch_errors.inc();
                        if is_gone(&error) {
                            // Routine: the API compacted past our resourceVersion.
                            info!("LimitRange watch expired (410 Gone); listing again");
                        } else {
                            warn!(
                                %error,
                                "LimitRange watch failed; retrying with backoff (the last complete list, if any, stays in use)"
                            );
                        }
                    }
                }
            }
            error!(
                pause_s = RESTART_PAUSE.as_secs(),
                "the LimitRange watch ended; starting it again"
            );
            tokio::time::sleep(RESTART_PAUSE).await;
        }
    }

    /// Swaps in the store's view; returns how many LimitRanges it holds and how many
    /// were left out as unreadable.
    fn publish(&self, store: &Store) -> (usize, usize) {
        let (snapshot, ranges, invalid) = store.snapshot();
        self.snapshot.store(Arc::new(snapshot));
        let metrics = &self.metrics.limit_ranges;
        metrics
            .ranges
            .set(i64::try_from(ranges).unwrap_or(i64::MAX));
        metrics
            .invalid
            .set(i64::try_from(invalid).unwrap_or(i64::MAX));
        (ranges, invalid)
    }

    fn mark_synced(&self, ranges: usize, invalid: usize) {
        self.metrics.limit_ranges.synced.set(1);
        let before = self.sync.swap(SyncState::Synced as u8, Ordering::SeqCst);
        match SyncState::from_u8(before) {
            SyncState::Waiting => info!(
                ranges,
                invalid, "LimitRanges listed; their defaults and bounds apply; ready"
            ),
            SyncState::GaveUp => info!(
                ranges,
                invalid,
                "LimitRanges listed after --limit-ranges-sync-timeout; their defaults and bounds apply from now on"
            ),
            SyncState::Synced => debug!(ranges, invalid, "LimitRanges listed again"),
        }
    }

    async fn give_up_after_timeout(self: Arc<Self>) {
        tokio::time::sleep(self.sync_timeout).await;
        let gave_up = self
            .sync
            .compare_exchange(
                SyncState::Waiting as u8,
                SyncState::GaveUp as u8,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok();
        if gave_up {
            warn!(
                timeout_s = self.sync_timeout.as_secs(),
                "no complete list of LimitRanges within --limit-ranges-sync-timeout; ready, serving without LimitRange data: templates that rely on LimitRange defaults may be denied and LimitRange bounds are not checked until the watch lists them"
            );
        }
    }
}

fn is_gone(error: &watcher::Error) -> bool {
    matches!(error, watcher::Error::WatchError(status) if status.code == 410)
}

/// One LimitRange object, read with the API server's defaulting.
fn read_object(object: &DynamicObject) -> Result<LimitRange, String> {
    let value = serde_json::to_value(object).map_err(|error| error.to_string())?;
    LimitRange::from_json(&value).map_err(|error| error.to_string())
}

/// LimitRanges as untyped objects: one that the compiled API version cannot decode must
/// not fail the whole list; [`crate::policy::LimitRange::from_json`] reads each instead.
fn resource() -> ApiResource {
    ApiResource::erase::<LimitRangeObject>(&())
}
