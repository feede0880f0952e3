//! What every request handler shares: the policy in force, readiness and the metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;

use super::metrics::Metrics;
use crate::policy::Policy;

#[derive(Debug)]
pub(crate) struct App {
    /// Swapped whole by the reloader; a request judges with the policy it loaded first.
    pub policy: ArcSwap<Policy>,
    ready: AtomicBool,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
}

impl App {
    pub fn new(policy: Policy, metrics: Arc<Metrics>, max_body_bytes: usize) -> App {
        App {
            policy: ArcSwap::from_pointee(policy),
            ready: AtomicBool::new(true),
            metrics,
            max_body_bytes,
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// From here on /readyz answers 503 so that endpoints stop routing here.
    pub fn set_not_ready(&self) {
        self.ready.store(false, Ordering::SeqCst);
    }
}
