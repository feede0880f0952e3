//! No route around the policy: every place a container can hide, every controller's
//! template, UPDATEs that change a template, owner references from anyone but a trusted
//! controller, annotations the policy does not allow (or not from this requester), expired
//! grants and namespaces it does not exclude — each is denied through `/validate`.

use deployguard::admission::{Cluster, Endpoint, review};
use deployguard::config::parse_policy;
use deployguard::policy::{DEFAULT_TRUSTED_REQUESTERS, Policy};
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
    let user = json!({"username": "mallory"});
    review_body_from(user, operation, kind, group, namespace, object, old)
}

/// A review of a request made by `user_info` (`Value::Null`: the field left out).
fn review_body_from(
    user_info: Value,
    operation: &str,
    kind: &str,
    group: &str,
    namespace: &str,
    object: &Value,
    old: Option<&Value>,
) -> Vec<u8> {
    let mut body = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "no-bypass", "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": format!("{}s", kind.to_lowercase())},
            "namespace": namespace, "operation": operation, "userInfo": user_info,
            "object": object, "oldObject": old,
        }
    });
    if body["request"]["userInfo"].is_null() {
        body["request"].as_object_mut().unwrap().remove("userInfo");
    }
    serde_json::to_vec(&body).unwrap()
}

/// The day every review here is made on.
fn cluster() -> Cluster<'static> {
    Cluster::bare(jiff::civil::date(2026, 12, 2))
}

fn response_with(policy: &Policy, body: &[u8]) -> Value {
    let outcome = review(policy, cluster(), Endpoint::Validate, body).expect("a valid review");
    serde_json::from_slice(&outcome.body).unwrap()
}

fn allowed_with(policy: &Policy, body: &[u8]) -> bool {
    response_with(policy, body)["response"]["allowed"]
        .as_bool()
        .unwrap()
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

fn owned_pod() -> Value {
    let mut owned = pod(json!({"containers": [bad_container("app")]}));
    // A real ReplicaSet's uid is readable by anyone who can `get replicasets`.
    owned["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f8", "uid": "6f1c2f4e-0d7e-4c55-9a43-3d5e1c8b2a10", "controller": true}]);
    owned
}

fn owned_pod_from(user_info: Value) -> Vec<u8> {
    review_body_from(user_info, "CREATE", "Pod", "", "apps", &owned_pod(), None)
}

#[test]
fn owner_references_from_users_are_judged_in_full() {
    // Not garbage-collected when the owner exists, and released (not deleted) by the
    // ReplicaSet controller when the labels do not match: a permanent bare pod.
    for user_info in [
        json!({"username": "alice"}),
        json!({"username": "alice", "groups": ["system:masters", "system:authenticated"]}),
        json!({"username": "system:serviceaccount:kube-system:default", "groups": ["system:serviceaccounts:kube-system"]}),
        json!({"username": "system:serviceaccount:kube-system:replicaset-controller-2"}),
        json!({"username": "system:nodes"}),
    ] {
        let response = response_with(&Policy::default(), &owned_pod_from(user_info.clone()));
        assert_eq!(response["response"]["allowed"], false, "{user_info}");
        let message = response["response"]["status"]["message"].as_str().unwrap();
        let user = user_info["username"].as_str().unwrap();
        assert!(
            message.ends_with(&format!(
                "(owner reference claims a controller, but the request comes from {user:?})"
            )),
            "{message}"
        );
    }
}

#[test]
fn owner_references_without_a_user_are_judged_in_full() {
    for user_info in [json!({}), json!({"username": ""})] {
        let response = response_with(&Policy::default(), &owned_pod_from(user_info.clone()));
        assert_eq!(response["response"]["allowed"], false, "{user_info}");
        let message = response["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.ends_with("but the request names no user)"),
            "{message}"
        );
    }
    // The API server always sends userInfo: a review without one is not answered at all.
    let missing = owned_pod_from(Value::Null);
    let error = review(&Policy::default(), cluster(), Endpoint::Validate, &missing);
    assert!(error.is_err());
}

#[test]
fn the_built_in_controllers_get_the_cap_in_both_credential_modes() {
    assert_eq!(DEFAULT_TRUSTED_REQUESTERS.len(), 9);
    let mut controllers: Vec<String> = [
        "replicaset-controller",
        "replication-controller",
        "deployment-controller",
        "job-controller",
        "cronjob-controller",
        "daemon-set-controller",
        "statefulset-controller",
    ]
    .iter()
    .map(|sa| format!("system:serviceaccount:kube-system:{sa}"))
    .collect();
    controllers.push("system:kube-controller-manager".into());
    controllers.push("system:node:worker-1".into());
    for user in controllers {
        let body = owned_pod_from(json!({"username": user, "groups": ["system:serviceaccounts"]}));
        let response = response_with(&Policy::default(), &body);
        assert_eq!(response["response"]["allowed"], true, "{user}");
        let audited = response["response"]["auditAnnotations"]["audit-findings"].as_str();
        assert!(
            audited.is_some_and(|a| a.contains("app:liveness-probe")),
            "{user}: {response}"
        );
    }
}

#[test]
fn a_third_party_controller_is_trusted_only_when_listed() {
    let rollouts = json!({"username": "system:serviceaccount:argo-rollouts:argo-rollouts"});
    assert!(!allowed(&owned_pod_from(rollouts.clone())));
    let policy = parse_policy(
        "controllerOwnedPods:\n  trustedRequesters: [\"system:serviceaccount:argo-rollouts:*\"]\n",
        "test",
    )
    .unwrap();
    assert!(allowed_with(&policy, &owned_pod_from(rollouts)));
    // The list replaces the defaults: the built-in controllers are no longer trusted.
    let rs = json!({"username": "system:serviceaccount:kube-system:replicaset-controller"});
    assert!(!allowed_with(&policy, &owned_pod_from(rs)));
}

#[test]
fn owner_claims_lower_nothing_on_kinds_no_controller_makes() {
    let controller = json!({"username": "system:serviceaccount:kube-system:deployment-controller"});
    let owners = owned_pod()["metadata"]["ownerReferences"].clone();
    // The same claim on a Deployment lowers nothing: no built-in controller makes Deployments.
    let mut deployment = template_of("Deployment", json!({"containers": [bad_container("app")]}));
    deployment["metadata"]["ownerReferences"] = owners;
    let body = review_body_from(
        controller.clone(),
        "CREATE",
        "Deployment",
        "apps",
        "apps",
        &deployment,
        None,
    );
    assert!(!allowed(&body));
    // A ReplicaSet claiming a non-Deployment owner is judged in full.
    let mut replicaset = template_of("ReplicaSet", json!({"containers": [bad_container("app")]}));
    replicaset["metadata"]["ownerReferences"] = json!([{"apiVersion": "example.com/v1", "kind": "Rollout", "name": "r", "uid": "1", "controller": true}]);
    let body = review_body_from(
        controller,
        "CREATE",
        "ReplicaSet",
        "apps",
        "apps",
        &replicaset,
        None,
    );
    assert!(!allowed(&body));
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

fn exempt_annotated_pod() -> Value {
    let mut exempted = pod(json!({"containers": [bad_container("app")]}));
    exempted["metadata"]["annotations"] = json!({"deployguard.io/exempt":
        "liveness-probe,readiness-probe,cpu-limit,memory-limit"});
    exempted
}

#[test]
fn annotation_requesters_decide_who_may_self_exempt() {
    let policy = parse_policy(
        "exemptions:\n  allowAnnotation: true\n  annotationRequesters: [\"system:serviceaccount:platform:*\"]\n",
        "test",
    )
    .unwrap();
    let from = |user: &str| {
        let body = review_body_from(
            json!({"username": user}),
            "CREATE",
            "Pod",
            "",
            "apps",
            &exempt_annotated_pod(),
            None,
        );
        response_with(&policy, &body)
    };
    assert_eq!(
        from("system:serviceaccount:platform:argocd")["response"]["allowed"],
        true
    );
    let refused = from("mallory");
    assert_eq!(refused["response"]["allowed"], false);
    let warnings = refused["response"]["warnings"].to_string();
    assert!(
        warnings.contains(
            r#"annotation deployguard.io/exempt ignored: \"mallory\" may not exempt objects"#
        ),
        "{warnings}"
    );
}

const GRANTS: &str = "exemptions:
  grants:
  - namespace: \"ap*\"
    kind: Pod
    name: p
    labels: {team: billing}
    rules: [liveness-probe, readiness-probe, cpu-limit, memory-limit]
    reason: probes land with the v2 rewrite
    expires: 2026-12-31
";

#[test]
fn grants_exempt_with_their_reason_until_they_expire() {
    let policy = parse_policy(GRANTS, "test").unwrap();
    let mut labelled = pod(json!({"containers": [bad_container("app")]}));
    labelled["metadata"]["labels"] = json!({"team": "billing"});
    let body = review_body("CREATE", "Pod", "", "apps", &labelled, None);
    let response = response_with(&policy, &body);
    assert_eq!(response["response"]["allowed"], true, "{response}");
    let warnings = response["response"]["warnings"].to_string();
    assert!(
        warnings.contains("deployguard: exempted from liveness-probe, readiness-probe, cpu-limit, memory-limit by grant 0 of the policy: probes land with the v2 rewrite (until 2026-12-31)"),
        "{warnings}"
    );
    // The day after its last day, the grant is gone.
    let january = Cluster::bare(jiff::civil::date(2027, 1, 1));
    let outcome = review(&policy, january, Endpoint::Validate, &body).unwrap();
    assert_eq!(outcome.summary.decision.as_str(), "denied");
    // The object's labels count, not those a pod author can put anywhere else.
    let unlabelled = review_body(
        "CREATE",
        "Pod",
        "",
        "apps",
        &pod(json!({"containers": [bad_container("app")]})),
        None,
    );
    assert!(!allowed_with(&policy, &unlabelled));
}

#[test]
fn an_allowed_forged_owner_is_told_why_it_was_judged_in_full() {
    let warn_only = parse_policy("defaultMode: warn", "test").unwrap();
    let response = response_with(&warn_only, &owned_pod_from(json!({"username": "alice"})));
    assert_eq!(response["response"]["allowed"], true);
    let warnings = response["response"]["warnings"].to_string();
    assert!(
        warnings.contains(r#"deployguard: owner reference claims a controller, but the request comes from \"alice\": judged in full"#),
        "{warnings}"
    );
    let controller = json!({"username": "system:serviceaccount:kube-system:replicaset-controller"});
    let trusted = response_with(&warn_only, &owned_pod_from(controller));
    assert!(
        !trusted["response"]["warnings"]
            .to_string()
            .contains("owner reference")
    );
}
