//! Prometheus metrics (`deployguard_` prefix) and the plain-HTTP `/metrics` endpoint.
//!
//! Every label value comes from a fixed set: the object kind is one of the workload kinds
//! or `other`, so that a client cannot grow the series without bound.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::admission::{Endpoint, ReviewSummary};
use crate::workload::WorkloadKind;

mod limit_ranges;

pub use limit_ranges::{LimitRangeMetrics, LiveRead};

/// OpenMetrics text, which Prometheus negotiates and parses.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets in seconds: a review takes tens of microseconds; the tail is the body upload.
const LATENCY_BUCKETS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewLabels {
    pub endpoint: &'static str,
    pub kind: &'static str,
    pub operation: &'static str,
    pub decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct FindingLabels {
    pub rule: &'static str,
    pub mode: &'static str,
    /// Only when the policy names namespaces (`metrics.findingsNamespaces`): the object's
    /// namespace if named, else `other`, so that every replica reports the same series.
    /// Not `namespace`: Prometheus sets that to the scraped pod's (ours), and would rename
    /// this one `exported_namespace`.
    pub object_namespace: Option<String>,
}

impl EncodeLabelSet for FindingLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        let mut labels = vec![("rule", self.rule), ("mode", self.mode)];
        if let Some(namespace) = &self.object_namespace {
            labels.push(("object_namespace", namespace));
        }
        labels.encode(encoder)
    }
}

/// The `object_namespace` label of a finding in `namespace`, given the policy's list.
fn namespace_label(named: &BTreeSet<String>, namespace: &str) -> Option<String> {
    if named.is_empty() {
        return None;
    }
    let label = if named.contains(namespace) {
        namespace
    } else {
        "other"
    };
    Some(label.to_owned())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ExemptionLabels {
    pub rule: &'static str,
    /// `annotation` (the object's own) or `grant` (the policy's).
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SerialLabels {
    /// The serving certificate's serial number, lower-case hex: one series per certificate
    /// served since start (a rotation adds one).
    pub serial: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reviews: Family<ReviewLabels, Counter>,
    findings: Family<FindingLabels, Counter>,
    exemptions: Family<ExemptionLabels, Counter>,
    duration: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    rejected: Family<RejectLabels, Counter>,
    pub in_flight: Gauge,
    pub panics: Counter,
    tls_reloads: Family<OutcomeLabels, Counter>,
    config_reloads: Family<OutcomeLabels, Counter>,
    pub cert_not_after: Gauge,
    pub handshake_failures: Counter,
    handshakes: Family<SerialLabels, Counter>,
    pub open_connections: Gauge,
    pub limit_ranges: LimitRangeMetrics,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

fn outcome(ok: bool) -> OutcomeLabels {
    OutcomeLabels {
        outcome: if ok { "ok" } else { "failed" },
    }
}

impl Metrics {
    /// The metrics of a server that watches LimitRanges: [`Metrics::new`]'s and the watch's.
    pub fn with_limit_range_watch() -> Metrics {
        let mut metrics = Metrics::new();
        metrics.limit_ranges.register(&mut metrics.registry);
        metrics
    }

    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("deployguard");
        let reviews = Family::default();
        let findings = Family::default();
        let exemptions = Family::default();
        let duration = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let rejected = Family::default();
        let in_flight = Gauge::default();
        let panics = Counter::default();
        let tls_reloads = Family::default();
        let config_reloads = Family::default();
        let cert_not_after = Gauge::default();
        let handshake_failures = Counter::default();
        let handshakes = Family::default();
        let open_connections = Gauge::default();
        registry.register(
            "reviews",
            "AdmissionReviews answered, by endpoint, object kind, operation and decision",
            reviews.clone(),
        );
        registry.register(
            "findings",
            "Policy findings reported, by rule and mode",
            findings.clone(),
        );
        registry.register(
            "exemptions",
            "Rules switched off for an object, by rule and source (annotation: deployguard.io/exempt; grant: the policy's exemptions.grants)",
            exemptions.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request headers to answer on /validate and /mutate",
            duration.clone(),
        );
        registry.register(
            "rejected_requests",
            "Requests answered with a 4xx, by route and status",
            rejected.clone(),
        );
        registry.register(
            "in_flight_requests",
            "Requests being handled on the TLS port",
            in_flight.clone(),
        );
        registry.register(
            "panics",
            "Requests that panicked and were answered 500",
            panics.clone(),
        );
        registry.register(
            "tls_reloads",
            "Serving certificate reloads, by outcome (a failed one keeps the old certificate)",
            tls_reloads.clone(),
        );
        registry.register(
            "config_reloads",
            "Policy file reloads, by outcome (a failed one keeps the old policy)",
            config_reloads.clone(),
        );
        registry.register(
            "tls_certificate_not_after_seconds",
            "Expiry of the serving certificate in use, in seconds since the Unix epoch",
            cert_not_after.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out (including refused client certificates)",
            handshake_failures.clone(),
        );
        registry.register(
            "tls_handshakes",
            "TLS handshakes completed, by the serial number of the serving certificate presented",
            handshakes.clone(),
        );
        registry.register(
            "open_connections",
            "TLS connections open",
            open_connections.clone(),
        );
        // Present from the start, so that the first failure is an increase Prometheus sees.
        for ok in [true, false] {
            let _ = tls_reloads.get_or_create(&outcome(ok));
            let _ = config_reloads.get_or_create(&outcome(ok));
        }
        Metrics {
            registry,
            reviews,
            findings,
            exemptions,
            duration,
            rejected,
            in_flight,
            panics,
            tls_reloads,
            config_reloads,
            cert_not_after,
            handshake_failures,
            handshakes,
            open_connections,
            limit_ranges: LimitRangeMetrics::default(),
        }
    }

    /// Counts a review; findings carry an `object_namespace` label when `named_namespaces` (the
    /// policy's `metrics.findingsNamespaces`) is not empty.
    pub fn record_review(
        &self,
        endpoint: Endpoint,
        summary: &ReviewSummary,
        named_namespaces: &BTreeSet<String>,
    ) {
        let namespace = namespace_label(named_namespaces, &summary.namespace);
        self.reviews
            .get_or_create(&ReviewLabels {
                endpoint: endpoint.as_str(),
                kind: kind_label(&summary.kind),
                operation: summary.operation,
                decision: summary.decision.as_str(),
            })
            .inc();
        for finding in &summary.findings {
            self.findings
                .get_or_create(&FindingLabels {
                    rule: finding.rule.as_str(),
                    mode: finding.mode.as_str(),
                    object_namespace: namespace.clone(),
                })
                .inc();
        }
        let granted = summary.granted.iter().flat_map(|grant| &grant.rules);
        let exempted = (summary.exempted.iter().map(|rule| (rule, "annotation")))
            .chain(granted.map(|rule| (rule, "grant")));
        for (rule, source) in exempted {
            self.exemptions
                .get_or_create(&ExemptionLabels {
                    rule: rule.as_str(),
                    source,
                })
                .inc();
        }
    }

    pub fn observe_duration(&self, endpoint: Endpoint, elapsed: Duration) {
        self.duration
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.as_str(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn record_rejection(&self, route: &'static str, status: StatusCode) {
        self.rejected
            .get_or_create(&RejectLabels {
                route,
                status: status.as_u16(),
            })
            .inc();
    }

    pub fn record_tls_reload(&self, ok: bool) {
        self.tls_reloads.get_or_create(&outcome(ok)).inc();
    }

    pub fn record_handshake(&self, serial: &Arc<str>) {
        self.handshakes
            .get_or_create(&SerialLabels {
                serial: serial.clone(),
            })
            .inc();
    }

    pub fn record_config_reload(&self, ok: bool) {
        self.config_reloads.get_or_create(&outcome(ok)).inc();
    }

    /// The OpenMetrics text exposition, `# EOF` included.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Object kinds are client input: anything but a workload kind is counted as `other`.
fn kind_label(kind: &str) -> &'static str {
    WorkloadKind::from_kind(kind).map_or("other", WorkloadKind::as_str)
}

/// The router of the metrics port.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics)
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> Response {
    match metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {error}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::Decision;
    use crate::policy::{Finding, Mode, RuleId};

    fn denied_in(namespace: &str) -> ReviewSummary {
        ReviewSummary {
            uid: "u".into(),
            kind: "Pod".into(),
            namespace: namespace.into(),
            name: "p".into(),
            operation: "CREATE",
            decision: Decision::Denied,
            findings: vec![Finding {
                rule: RuleId::CpuLimit,
                mode: Mode::Enforce,
                container: "app".into(),
                message: "m".into(),
            }],
            patch_ops: 0,
            exempted: Vec::new(),
            granted: Vec::new(),
            untrusted_owner: None,
            skipped: None,
        }
    }

    fn findings_lines(metrics: &Metrics) -> Vec<String> {
        let text = metrics.encode().unwrap();
        let lines = text
            .lines()
            .filter(|l| l.starts_with("deployguard_findings_total"));
        lines.map(str::to_owned).collect()
    }

    #[test]
    fn findings_have_an_object_namespace_label_only_when_the_policy_names_namespaces() {
        let metrics = Metrics::new();
        metrics.record_review(Endpoint::Validate, &denied_in("team-a"), &BTreeSet::new());
        assert_eq!(
            findings_lines(&metrics),
            [r#"deployguard_findings_total{rule="cpu-limit",mode="enforce"} 1"#]
        );
        let named = BTreeSet::from(["team-a".to_owned()]);
        let metrics = Metrics::new();
        for namespace in ["team-a", "team-b", "team-c"] {
            metrics.record_review(Endpoint::Validate, &denied_in(namespace), &named);
        }
        let mut lines = findings_lines(&metrics);
        lines.sort();
        assert_eq!(
            lines,
            [
                r#"deployguard_findings_total{rule="cpu-limit",mode="enforce",object_namespace="other"} 2"#,
                r#"deployguard_findings_total{rule="cpu-limit",mode="enforce",object_namespace="team-a"} 1"#,
            ]
        );
    }
}
