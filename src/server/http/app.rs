//! What every request handler shares: the policy in force, the cluster's LimitRanges,
//! readiness and the metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;

use crate::policy::{LimitRanges, Policy};
use crate::server::limit_ranges::LimitRangeView;
use crate::server::metrics::Metrics;

#[derive(Debug)]
pub(crate) struct App {
    /// Swapped whole by the reloader; a request judges with the policy it loaded first.
    pub policy: ArcSwap<Policy>,
    ready: AtomicBool,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    /// `None` under `--limit-ranges off`.
    pub limit_ranges: Option<Arc<LimitRangeView>>,
}

impl App {
    pub fn new(policy: Policy, metrics: Arc<Metrics>, max_body_bytes: usize) -> App {
        App {
            policy: ArcSwap::from_pointee(policy),
            ready: AtomicBool::new(true),
            metrics,
            max_body_bytes,
            limit_ranges: None,
        }
    }

    pub fn with_limit_ranges(mut self, view: Arc<LimitRangeView>) -> App {
        self.limit_ranges = Some(view);
        self
    }

    /// The LimitRanges to judge a request with (`None`: none, as under
    /// `--limit-ranges off`); one load per request, like the policy.
    pub fn limit_ranges_snapshot(&self) -> Option<Arc<LimitRanges>> {
        self.limit_ranges.as_ref().map(|view| view.snapshot())
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// From here on /readyz answers 503 so that endpoints stop routing here.
    pub fn set_not_ready(&self) {
        self.ready.store(false, Ordering::SeqCst);
    }
}
