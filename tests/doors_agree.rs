//! The two doors give one judgement: `deployguard check` on manifests and the webhook on
//! the AdmissionReviews of the same objects, with the same LimitRanges, report the same
//! findings — rule, mode, container and message.

use deployguard::admission::{Cluster, Endpoint, review};
use deployguard::documents::parse_documents;
use deployguard::manifest::{Scope, collect_limit_ranges, judge_document_in};
use deployguard::policy::{LimitRanges, Policy, RequestContext};
use serde_json::{Value, json};

fn documents(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    parse_documents(&text, false)
        .into_iter()
        .filter_map(|d| d.unwrap().value)
        .collect()
}

fn admission_review(object: &Value) -> Vec<u8> {
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "doors", "kind": {"group": "apps", "version": "v1", "kind": object["kind"]},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "namespace": namespace, "operation": "CREATE", "userInfo": {"username": "alice"}, "object": object}}))
    .unwrap()
}

/// The findings of the webhook's answer, as `rule/mode: container "NAME": message` lines.
fn webhook_findings(policy: &Policy, ranges: &LimitRanges, object: &Value) -> Vec<String> {
    let cluster = Cluster {
        limit_ranges: ranges,
        today: jiff::civil::date(2026, 12, 2),
    };
    let outcome = review(
        policy,
        cluster,
        Endpoint::Validate,
        &admission_review(object),
    )
    .unwrap();
    outcome
        .summary
        .findings
        .iter()
        .map(|f| format!("{}/{}: {}", f.rule, f.mode, f.describe()))
        .collect()
}

#[test]
fn check_and_the_webhook_agree_with_limit_ranges() {
    let policy = Policy::default();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/limitrange-team.yaml");
    let docs = documents(path);
    let mut ranges = LimitRanges::default();
    for doc in &docs {
        assert!(collect_limit_ranges(doc, "default", &mut ranges).is_empty());
    }
    let scope = Scope {
        limit_ranges: &ranges,
        default_namespace: "default",
        context: RequestContext {
            requester: Some("alice"),
            today: Some(jiff::civil::date(2026, 12, 2)),
        },
    };
    let mut compared = 0;
    for doc in docs.iter().filter(|d| d["kind"] == "Deployment") {
        let cli: Vec<String> = judge_document_in(&policy, scope, doc)
            .into_iter()
            .flat_map(|r| r.unwrap().findings)
            .map(|f| format!("{}/{}: {}", f.rule, f.mode, f.describe()))
            .collect();
        assert_eq!(
            cli,
            webhook_findings(&policy, &ranges, doc),
            "{}",
            doc["metadata"]["name"]
        );
        compared += 1;
    }
    assert_eq!(compared, 2);
    // Without the LimitRange the webhook denies the Deployment the LimitRange would fill in.
    let web = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "web")
        .unwrap();
    let alone = webhook_findings(&policy, &LimitRanges::default(), web);
    assert!(
        alone.iter().any(|f| f.starts_with("cpu-limit/enforce")),
        "{alone:?}"
    );
}
