//! No route around the policy: every place a container can hide, every controller's
//! template, UPDATEs that change a template, forged owners, annotations the policy does not
//! allow and namespaces it does not exclude — each is denied through `/validate`.

use deployguard::admission::{Endpoint, review};
use deployguard::config::parse_policy;
use deployguard::policy::Policy;
use serde_json::{Value, json};

/// A container that breaks the enforced rules (no probes, no limits).
fn bad_container(name: &str) -> Value {
    json!({"name": name, "image": "registry.example.com/app:1"})
}

/// A container that passes every enforced rule.
fn good_container(name: &str) -> Value {
    json!({"name": name, "image": "registry.example.com/app:1",
        "livenessProbe": {"tcpSocket": {"port": 8080}}, "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}})
}

fn review_body(
    operation: &str,
    kind: &str,
    group: &str,
    namespace: &str,
    object: &Value,
    old: Option<&Value>,
) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "no-bypass", "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": format!("{}s", kind.to_lowercase())},
            "namespace": namespace, "operation": operation, "userInfo": {"username": "mallory"},
            "object": object, "oldObject": old,
        }
    }))
    .unwrap()
}

fn allowed_with(policy: &Policy, body: &[u8]) -> bool {
    let outcome = review(policy, Endpoint::Validate, body).expect("a valid review");
    let response: Value = serde_json::from_slice(&outcome.body).unwrap();
    response["response"]["allowed"].as_bool().unwrap()
}

fn allowed(body: &[u8]) -> bool {
    allowed_with(&Policy::default(), body)
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "apps"}, "spec": spec})
}

fn create_pod(spec: Value) -> Vec<u8> {
    review_body("CREATE", "Pod", "", "apps", &pod(spec), None)
}

#[test]
fn a_good_pod_is_allowed() {
    assert!(allowed(&create_pod(
        json!({"containers": [good_container("app")]})
    )));
}

#[test]
fn native_sidecars_are_judged_like_containers() {
    let mut sidecar = bad_container("proxy");
    sidecar["restartPolicy"] = json!("Always");
    sidecar["resources"] = json!({"limits": {"cpu": "1", "memory": "1Gi"}});
    assert!(!allowed(&create_pod(
        json!({"containers": [good_container("app")], "initContainers": [sidecar]})
    )));
}

#[test]
fn init_containers_need_limits() {
    let spec = json!({"containers": [good_container("app")], "initContainers": [bad_container("migrate")]});
    assert!(!allowed(&create_pod(spec)));
}

fn template_of(kind: &str, spec: Value) -> Value {
    let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": spec});
    let body = match kind {
        "CronJob" => {
            json!({"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}})
        }
        _ => json!({"selector": {"matchLabels": {"app": "x"}}, "template": template}),
    };
    json!({"kind": kind, "metadata": {"name": "w", "namespace": "apps"}, "spec": body})
}

const CONTROLLERS: [(&str, &str); 7] = [
    ("Deployment", "apps"),
    ("StatefulSet", "apps"),
    ("DaemonSet", "apps"),
    ("ReplicaSet", "apps"),
    ("ReplicationController", ""),
    ("Job", "batch"),
    ("CronJob", "batch"),
];

#[test]
fn every_controller_template_is_judged_on_create_and_update() {
    for (kind, group) in CONTROLLERS {
        let bad = template_of(
            kind,
            json!({"containers": [bad_container("app")], "restartPolicy": "Never"}),
        );
        let good = template_of(
            kind,
            json!({"containers": [good_container("app")], "restartPolicy": "Never"}),
        );
        assert!(
            !allowed(&review_body("CREATE", kind, group, "apps", &bad, None)),
            "{kind} CREATE"
        );
        assert!(
            allowed(&review_body("CREATE", kind, group, "apps", &good, None)),
            "{kind} good CREATE"
        );
        assert!(
            !allowed(&review_body(
                "UPDATE",
                kind,
                group,
                "apps",
                &bad,
                Some(&good)
            )),
            "{kind}: an UPDATE that changes the template to a bad one"
        );
    }
}

#[test]
fn cronjob_nested_template_is_found_in_old_api_versions() {
    let mut cron = template_of(
        "CronJob",
        json!({"containers": [bad_container("app")], "restartPolicy": "OnFailure"}),
    );
    cron["apiVersion"] = json!("batch/v1beta1");
    assert!(!allowed(&review_body(
        "CREATE", "CronJob", "batch", "apps", &cron, None
    )));
}

#[test]
fn forged_owner_references_only_lower_pods_to_audit() {
    // A Pod claiming a controller owner is judged at most in audit (DESIGN §3): the
    // garbage collector deletes it if the owner does not exist, and an existing owner
    // means its template was judged. SECURITY.md documents the residual risk.
    let mut forged = pod(json!({"containers": [bad_container("app")]}));
    forged["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": "00000000-0000-0000-0000-000000000000", "controller": true}]);
    assert!(allowed(&review_body(
        "CREATE", "Pod", "", "apps", &forged, None
    )));
    // The same claim on a Deployment lowers nothing: no built-in controller makes Deployments.
    let mut deployment = template_of("Deployment", json!({"containers": [bad_container("app")]}));
    deployment["metadata"]["ownerReferences"] = forged["metadata"]["ownerReferences"].clone();
    assert!(!allowed(&review_body(
        "CREATE",
        "Deployment",
        "apps",
        "apps",
        &deployment,
        None
    )));
    // A ReplicaSet claiming a non-Deployment owner is judged in full.
    let mut replicaset = template_of("ReplicaSet", json!({"containers": [bad_container("app")]}));
    replicaset["metadata"]["ownerReferences"] = json!([{"apiVersion": "example.com/v1", "kind": "Rollout", "name": "r", "uid": "1", "controller": true}]);
    assert!(!allowed(&review_body(
        "CREATE",
        "ReplicaSet",
        "apps",
        "apps",
        &replicaset,
        None
    )));
}

#[test]
fn exemption_annotations_need_the_policy_switch() {
    let mut exempted = pod(json!({"containers": [bad_container("app")]}));
    exempted["metadata"]["annotations"] = json!({"deployguard.io/exempt":
        "liveness-probe,readiness-probe,cpu-limit,memory-limit"});
    let body = review_body("CREATE", "Pod", "", "apps", &exempted, None);
    assert!(!allowed(&body), "the default policy ignores exemptions");
    let permissive = parse_policy("exemptions: {allowAnnotation: true}", "test").unwrap();
    assert!(allowed_with(&permissive, &body));
    // An exemption on the template only does not exempt the workload.
    let mut deployment = template_of("Deployment", json!({"containers": [bad_container("app")]}));
    deployment["spec"]["template"]["metadata"]["annotations"] =
        exempted["metadata"]["annotations"].clone();
    assert!(!allowed_with(
        &permissive,
        &review_body("CREATE", "Deployment", "apps", "apps", &deployment, None)
    ));
}

#[test]
fn only_configured_namespaces_are_excluded() {
    let bad = pod(json!({"containers": [bad_container("app")]}));
    for namespace in [
        "kube-systems",
        "kube",
        "default",
        "kube-system-2",
        "KUBE-SYSTEM",
    ] {
        let mut object = bad.clone();
        object["metadata"]["namespace"] = json!(namespace);
        assert!(
            !allowed(&review_body("CREATE", "Pod", "", namespace, &object, None)),
            "{namespace}"
        );
    }
    let mut system = bad.clone();
    system["metadata"]["namespace"] = json!("kube-system");
    assert!(allowed(&review_body(
        "CREATE",
        "Pod",
        "",
        "kube-system",
        &system,
        None
    )));
}

#[test]
fn request_namespace_wins_over_the_objects_own() {
    // The API server's request namespace is authoritative; an object claiming an excluded
    // namespace in its metadata does not escape.
    let mut object = pod(json!({"containers": [bad_container("app")]}));
    object["metadata"]["namespace"] = json!("kube-system");
    assert!(!allowed(&review_body(
        "CREATE", "Pod", "", "apps", &object, None
    )));
}

#[test]
fn ephemeral_containers_are_outside_what_a_webhook_sees_on_create() {
    // Ephemeral containers arrive through the pods/ephemeralcontainers subresource, which
    // is allowed untouched (they cannot carry probes or resources); SECURITY.md says so.
    let spec = json!({"containers": [good_container("app")], "ephemeralContainers": [bad_container("debug")]});
    assert!(allowed(&create_pod(spec)));
}
