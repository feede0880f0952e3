//! The table of trusted and untrusted requesters (tests/fixtures/trusted_requesters.yaml)
//! through `/validate` with the default policy; the chart's CEL routing is checked against
//! the same table by .ci/chart-tests/check_routing.py.

use deployguard::admission::{Cluster, Endpoint, review};
use deployguard::policy::Policy;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
struct Table {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    user_info: Value,
    trusted: bool,
}

fn table() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/trusted_requesters.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str::<Table>(&text).unwrap().cases
}

/// (kind, group, the owner kind whose controller makes it): what the cap covers.
const OWNED: [(&str, &str, &str); 3] = [
    ("Pod", "", "ReplicaSet"),
    ("ReplicaSet", "apps", "Deployment"),
    ("Job", "batch", "CronJob"),
];

fn object(kind: &str, owner: &str) -> Value {
    let spec = json!({"containers": [{"name": "app", "image": "registry.example/app:1"}]});
    let spec = match kind {
        "Pod" => spec,
        _ => json!({"selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": spec}}),
    };
    json!({"kind": kind, "metadata": {"name": "w", "namespace": "apps", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": owner, "name": "o", "uid": "6f1c2f4e-0d7e-4c55-9a43-3d5e1c8b2a10", "controller": true}]},
        "spec": spec})
}

#[test]
fn the_default_policy_trusts_exactly_the_tables_controllers() {
    let policy = Policy::default();
    let cases = table();
    assert!(cases.len() >= 20);
    for case in cases {
        for (kind, group, owner) in OWNED {
            let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
                "uid": "t", "kind": {"group": group, "version": "v1", "kind": kind},
                "resource": {"group": group, "version": "v1", "resource": "x"}, "namespace": "apps",
                "operation": "CREATE", "userInfo": case.user_info, "object": object(kind, owner)}});
            let cluster = Cluster::bare(jiff::civil::date(2026, 12, 2));
            let body = serde_json::to_vec(&body).unwrap();
            let outcome = review(&policy, cluster, Endpoint::Validate, &body).unwrap();
            let denied = outcome.summary.decision.as_str() == "denied";
            assert_eq!(denied, !case.trusted, "{kind} from {}", case.user_info);
            assert_eq!(outcome.summary.untrusted_owner.is_some(), !case.trusted);
        }
    }
}
