//! A second look before denying a template for a missing limit: a LimitRange applied in
//! the same sync as the Deployment (one `kubectl apply -f dir/`) may be stored but not yet
//! delivered by the watch. The namespace's LimitRanges are read live, bounded in time, and
//! the review made again with them; a failed or slow read keeps the first answer.

use kube::api::{Api, DynamicObject, ListParams};
use tracing::{info, warn};

use super::{LimitRangeView, read_object, resource};
use crate::admission::{Cluster, Decision, Endpoint, ReviewOutcome, ReviewSummary, review};
use crate::policy::{LimitRange, LimitRanges, Mode, Policy, RuleId};
use crate::server::metrics::LiveRead;
use crate::workload::WorkloadKind;

/// `first` (the review with `snapshot`), or the review with the namespace's LimitRanges as
/// read live, when `first` denies a template for a limit that a LimitRange unknown to the
/// snapshot could default.
pub async fn second_look(
    view: &LimitRangeView,
    policy: &Policy,
    cluster: Cluster<'_>,
    endpoint: Endpoint,
    body: &[u8],
    first: ReviewOutcome,
) -> ReviewOutcome {
    let snapshot = cluster.limit_ranges;
    if !worth_a_look(&first.summary, snapshot) {
        return first;
    }
    let namespace = first.summary.namespace.clone();
    let (outcome, found) = read_namespace(view, &namespace).await;
    view.metrics.limit_ranges.record_live_read(outcome);
    if found.is_empty() {
        return first;
    }
    let mut with_found = snapshot.clone();
    for range in found {
        with_found.insert(&namespace, range);
    }
    let cluster = Cluster {
        limit_ranges: &with_found,
        ..cluster
    };
    match review(policy, cluster, endpoint, body) {
        Ok(second) => {
            info!(
                uid = %first.summary.uid,
                namespace = %namespace,
                decision = second.summary.decision.as_str(),
                "judged again with LimitRanges read live: the watch had not delivered them yet"
            );
            second
        }
        // The body parsed the first time; it parses again. Were it not so, the first
        // answer is still right for what was known.
        Err(_) => first,
    }
}

/// A denied template (not a Pod: LimitRanger has already filled a pod's limits before any
/// webhook sees it) with an enforced missing limit, in a namespace the snapshot holds no
/// LimitRange for. Namespaces that are not DNS labels never come from an API server and
/// would not make a sound URL path.
fn worth_a_look(summary: &ReviewSummary, snapshot: &LimitRanges) -> bool {
    let template = WorkloadKind::from_kind(&summary.kind).is_some_and(|k| k != WorkloadKind::Pod);
    let missing_limit = summary.findings.iter().any(|finding| {
        finding.mode == Mode::Enforce
            && matches!(finding.rule, RuleId::CpuLimit | RuleId::MemoryLimit)
    });
    summary.decision == Decision::Denied
        && template
        && missing_limit
        && is_dns_label(&summary.namespace)
        && snapshot.namespace(&summary.namespace).is_empty()
}

fn is_dns_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// How the read went, and the readable LimitRanges it found.
async fn read_namespace(view: &LimitRangeView, namespace: &str) -> (LiveRead, Vec<LimitRange>) {
    let api = Api::<DynamicObject>::namespaced_with(view.client.clone(), namespace, &resource());
    let params = ListParams::default();
    let list = match tokio::time::timeout(view.live_read_timeout, api.list(&params)).await {
        Ok(Ok(list)) => list,
        Ok(Err(error)) => {
            warn!(namespace, %error, "live read of the namespace's LimitRanges failed; the denial stands");
            return (LiveRead::Failed, Vec::new());
        }
        Err(_) => {
            warn!(
                namespace,
                timeout_ms = u64::try_from(view.live_read_timeout.as_millis()).unwrap_or(u64::MAX),
                "live read of the namespace's LimitRanges timed out; the denial stands"
            );
            return (LiveRead::TimedOut, Vec::new());
        }
    };
    let mut found = Vec::new();
    for object in list.items {
        match read_object(&object) {
            Ok(range) => found.push(range),
            Err(error) => warn!(
                namespace,
                name = object.metadata.name.as_deref().unwrap_or(""),
                %error,
                "LimitRange cannot be read; left out, so its defaults and bounds do not apply"
            ),
        }
    }
    let outcome = if found.is_empty() {
        LiveRead::None
    } else {
        LiveRead::Found
    };
    (outcome, found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Finding;

    fn summary(kind: &str, namespace: &str, rule: RuleId, mode: Mode) -> ReviewSummary {
        ReviewSummary {
            uid: "u".into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: "n".into(),
            operation: "CREATE",
            decision: Decision::Denied,
            findings: vec![Finding {
                rule,
                mode,
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

    #[test]
    fn only_denied_templates_missing_an_enforced_limit_are_looked_at_again() {
        let none = LimitRanges::new();
        let look = |s: &ReviewSummary| worth_a_look(s, &none);
        assert!(look(&summary(
            "Deployment",
            "team",
            RuleId::MemoryLimit,
            Mode::Enforce
        )));
        assert!(look(&summary(
            "CronJob",
            "team",
            RuleId::CpuLimit,
            Mode::Enforce
        )));
        assert!(!look(&summary(
            "Pod",
            "team",
            RuleId::CpuLimit,
            Mode::Enforce
        )));
        assert!(!look(&summary(
            "Deployment",
            "team",
            RuleId::LimitRange,
            Mode::Enforce
        )));
        assert!(!look(&summary(
            "Deployment",
            "team",
            RuleId::CpuLimit,
            Mode::Warn
        )));
        assert!(!look(&summary(
            "Deployment",
            "../x",
            RuleId::CpuLimit,
            Mode::Enforce
        )));
        let mut allowed = summary("Deployment", "team", RuleId::CpuLimit, Mode::Enforce);
        allowed.decision = Decision::Allowed;
        assert!(!look(&allowed));
    }

    #[test]
    fn a_namespace_the_snapshot_knows_is_not_read_again() {
        let mut known = LimitRanges::new();
        let range = LimitRange::from_json(&serde_json::json!({
            "metadata": {"name": "lr"},
            "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}}]}
        }))
        .unwrap();
        known.insert("team", range);
        let denied = summary("Deployment", "team", RuleId::CpuLimit, Mode::Enforce);
        assert!(!worth_a_look(&denied, &known));
        let elsewhere = summary("Deployment", "other", RuleId::CpuLimit, Mode::Enforce);
        assert!(worth_a_look(&elsewhere, &known));
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("team-a1"));
        assert!(!is_dns_label(""));
        assert!(!is_dns_label("Team"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("a-"));
        assert!(!is_dns_label("a/b"));
        assert!(!is_dns_label(&"a".repeat(64)));
    }
}
