//! The LimitRange watch's metrics. Registered only with `--limit-ranges watch`, so that a
//! server that never reads LimitRanges does not report itself as unsynced.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// How a live read of one namespace's LimitRanges (before a denial) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveRead {
    /// LimitRanges found; the review was made again with them.
    Found,
    /// The namespace has none; the denial stands.
    None,
    /// The API answered with an error or could not be reached; the denial stands.
    Failed,
    /// No answer within the live-read timeout; the denial stands.
    TimedOut,
}

impl LiveRead {
    pub const ALL: [LiveRead; 4] = [
        LiveRead::Found,
        LiveRead::None,
        LiveRead::Failed,
        LiveRead::TimedOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LiveRead::Found => "found",
            LiveRead::None => "none",
            LiveRead::Failed => "failed",
            LiveRead::TimedOut => "timeout",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LiveReadLabels {
    outcome: &'static str,
}

#[derive(Debug, Default)]
pub struct LimitRangeMetrics {
    /// 1 once a complete list arrived (stays 1 while the watch reconnects: the last
    /// complete view is still served).
    pub synced: Gauge,
    pub ranges: Gauge,
    pub invalid: Gauge,
    pub watch_errors: Counter,
    live_reads: Family<LiveReadLabels, Counter>,
}

impl LimitRangeMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "limit_ranges_synced",
            "1 once the LimitRange watch has completed its first list, 0 while waiting or after --limit-ranges-sync-timeout passed without one",
            self.synced.clone(),
        );
        registry.register(
            "limit_ranges",
            "LimitRanges in the watch's current view (those that could be read)",
            self.ranges.clone(),
        );
        registry.register(
            "limit_ranges_invalid",
            "LimitRanges in the cluster that could not be read and are left out of the view",
            self.invalid.clone(),
        );
        registry.register(
            "limit_range_watch_errors",
            "Errors of the LimitRange watch (API errors, 410 Gone, failed reconnects); it retries with backoff",
            self.watch_errors.clone(),
        );
        registry.register(
            "limit_range_live_reads",
            "Live reads of a namespace's LimitRanges before denying a template for a missing limit, by outcome",
            self.live_reads.clone(),
        );
        // Present from the start, so that the first failure is an increase Prometheus sees.
        for outcome in LiveRead::ALL {
            let _ = self.live_reads.get_or_create(&labels(outcome));
        }
    }

    pub fn record_live_read(&self, outcome: LiveRead) {
        self.live_reads.get_or_create(&labels(outcome)).inc();
    }
}

fn labels(outcome: LiveRead) -> LiveReadLabels {
    LiveReadLabels {
        outcome: outcome.as_str(),
    }
}
