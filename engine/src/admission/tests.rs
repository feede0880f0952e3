use serde_json::{Value, json};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::response::{MAX_WARNING_CHARS, MAX_WARNINGS_TOTAL, fit_warnings};
use super::*;

fn pod(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"}, "spec": {"containers": containers}})
}

fn request(
    api_version: &str,
    operation: &str,
    kind: &str,
    object: Value,
    old: Option<Value>,
) -> Vec<u8> {
    let mut review = json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": operation,
            "userInfo": {"username": "alice"},
            "object": object,
        }
    });
    if let Some(old) = old {
        review["request"]["oldObject"] = old;
    }
    serde_json::to_vec(&review).unwrap()
}

/// A fixed day, so that no test depends on the wall clock.
fn cluster() -> Cluster<'static> {
    Cluster::bare(jiff::civil::date(2026, 12, 2))
}

fn respond(endpoint: Endpoint, body: &[u8]) -> Value {
    let outcome = review(&Policy::default(), cluster(), endpoint, body).unwrap();
    serde_json::from_slice(&outcome.body).unwrap()
}

fn good_container() -> Value {
    json!({"name": "app", "ports": [{"name": "http", "containerPort": 8080}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}})
}

#[test]
fn denial_lists_every_enforced_finding_with_403() {
    let out = respond(
        Endpoint::Validate,
        &request(
            API_VERSION_V1,
            "CREATE",
            "Pod",
            pod(json!([{"name": "app"}])),
            None,
        ),
    );
    assert_eq!(out["apiVersion"], API_VERSION_V1);
    assert_eq!(out["kind"], "AdmissionReview");
    let response = &out["response"];
    assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(response["status"]["reason"], "Forbidden");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("deployguard denied Pod shop/web: container \"app\": no livenessProbe"),
        "{message}"
    );
    for rule in [
        "(liveness-probe)",
        "(readiness-probe)",
        "(cpu-limit)",
        "(memory-limit)",
    ] {
        assert!(message.contains(rule), "{rule} missing in {message}");
    }
    let warnings = response["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "cpu-request and memory-request warn");
    assert!(response.get("patch").is_none(), "validate never patches");
}

#[test]
fn v1beta1_is_answered_in_v1beta1() {
    let out = respond(
        Endpoint::Validate,
        &request(
            API_VERSION_V1BETA1,
            "CREATE",
            "Pod",
            pod(json!([good_container()])),
            None,
        ),
    );
    assert_eq!(out["apiVersion"], API_VERSION_V1BETA1);
    assert_eq!(out["response"]["allowed"], true);
    assert!(out["response"].get("status").is_none());
    assert!(out["response"].get("warnings").is_none());
}

#[test]
fn mutate_allows_and_carries_a_base64_patch() {
    let out = respond(
        Endpoint::Mutate,
        &request(
            API_VERSION_V1,
            "CREATE",
            "Pod",
            pod(json!([{"name": "app",
        "resources": {"limits": {"cpu": "2500m", "memory": "1Gi"}}}])),
            None,
        ),
    );
    let response = &out["response"];
    assert_eq!(
        response["allowed"], true,
        "mutate allows even a pod that validation denies"
    );
    assert_eq!(response["patchType"], "JSONPatch");
    let patch = BASE64.decode(response["patch"].as_str().unwrap()).unwrap();
    let ops: Value = serde_json::from_slice(&patch).unwrap();
    assert_eq!(
        ops[0]["value"],
        json!([{"name": "GOMAXPROCS", "value": "3"}, {"name": "GOMEMLIMIT", "value": "921MiB"}])
    );
}

#[test]
fn mutate_without_work_has_no_patch_fields() {
    let out = respond(
        Endpoint::Mutate,
        &request(
            API_VERSION_V1,
            "CREATE",
            "Pod",
            pod(json!([{"name": "app"}])),
            None,
        ),
    );
    assert!(out["response"].get("patch").is_none());
    assert!(out["response"].get("patchType").is_none());
}

#[test]
fn untouched_operations_kinds_and_subresources() {
    let bad = pod(json!([{"name": "app"}]));
    for (operation, kind) in [
        ("DELETE", "Pod"),
        ("CONNECT", "Pod"),
        ("CREATE", "Service"),
        ("CREATE", "ConfigMap"),
    ] {
        let out = respond(
            Endpoint::Validate,
            &request(API_VERSION_V1, operation, kind, bad.clone(), None),
        );
        assert_eq!(out["response"]["allowed"], true, "{operation} {kind}");
    }
    let mut status_update: Value =
        serde_json::from_slice(&request(API_VERSION_V1, "UPDATE", "Pod", bad.clone(), None))
            .unwrap();
    status_update["request"]["subResource"] = json!("status");
    let out = respond(
        Endpoint::Validate,
        &serde_json::to_vec(&status_update).unwrap(),
    );
    assert_eq!(out["response"]["allowed"], true);
    let mut delete = json!({"apiVersion": API_VERSION_V1, "kind": "AdmissionReview", "request": {
        "uid": "1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "operation": "DELETE",
        "userInfo": {}, "object": null, "oldObject": bad}});
    let out = respond(Endpoint::Validate, &serde_json::to_vec(&delete).unwrap());
    assert_eq!(out["response"]["allowed"], true);
    delete["request"]["operation"] = json!("CREATE");
    let out = respond(Endpoint::Validate, &serde_json::to_vec(&delete).unwrap());
    assert_eq!(
        out["response"]["allowed"], true,
        "no object: nothing to judge"
    );
}

#[test]
fn update_with_unchanged_pod_spec_is_allowed() {
    let deployment = |replicas: u32, image: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "legacy", "namespace": "shop"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}}})
    };
    let cases = [
        (
            "UPDATE",
            deployment(5, "a:1"),
            Some(deployment(1, "a:1")),
            true,
        ),
        (
            "UPDATE",
            deployment(1, "a:2"),
            Some(deployment(1, "a:1")),
            false,
        ),
        ("CREATE", deployment(1, "a:1"), None, false),
    ];
    for (operation, object, old, allowed) in cases {
        let body = request(API_VERSION_V1, operation, "Deployment", object, old);
        let out = respond(Endpoint::Validate, &body);
        assert_eq!(out["response"]["allowed"], allowed, "{operation}");
    }
}

#[test]
fn templates_are_mutated_only_when_enabled() {
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}}});
    let body = request(API_VERSION_V1, "CREATE", "Deployment", deployment, None);
    assert!(
        respond(Endpoint::Mutate, &body)["response"]
            .get("patch")
            .is_none()
    );
    let mut policy = Policy::default();
    policy.go_runtime.mutate_templates = true;
    let out: Value = serde_json::from_slice(
        &review(&policy, cluster(), Endpoint::Mutate, &body)
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(out["response"]["patchType"], "JSONPatch");
}

#[test]
fn unreadable_spec_is_denied_with_the_field() {
    let body = request(
        API_VERSION_V1,
        "CREATE",
        "Pod",
        pod(json!([{"name": "app", "resources": {"limits": {"cpu": "1,5"}}}])),
        None,
    );
    let out = respond(Endpoint::Validate, &body);
    assert_eq!(out["response"]["status"]["code"], 400);
    let message = out["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "spec.containers[0].resources.limits.cpu: \"1,5\" is not a Kubernetes quantity"
        ),
        "{message}"
    );
    let mutate = respond(Endpoint::Mutate, &body);
    assert_eq!(mutate["response"]["allowed"], true);
}

#[test]
fn input_errors() {
    let policy = Policy::default();
    let error = |body: &[u8]| review(&policy, cluster(), Endpoint::Validate, body).unwrap_err();
    assert!(matches!(error(b"not json"), ReviewError::NotJson(_)));
    assert!(matches!(error(b"[1,2]"), ReviewError::Shape(_)));
    assert_eq!(
        error(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
        ReviewError::MissingRequest
    );
    assert!(matches!(
        error(br#"{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":null}"#),
        ReviewError::ApiVersion(_)
    ));
    assert!(matches!(
        error(br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#),
        ReviewError::Kind(_)
    ));
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(matches!(
        error(deep_array.as_bytes()),
        ReviewError::Shape(_)
    ));
    // Fields no rule reads are skipped without recursion: deep nesting there costs no
    // stack, and the review is still refused for what it lacks.
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let nested = error(deep_object.as_bytes());
    assert!(
        nested.to_string().contains("missing field `apiVersion`"),
        "{nested}"
    );
    let deep_label = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"object":{{"metadata":{{"labels":{}1{}}}}}}}}}"#,
        r#"{"a":"#.repeat(10_000),
        "}".repeat(10_000)
    );
    assert!(matches!(
        error(deep_label.as_bytes()),
        ReviewError::Shape(_)
    ));
}

#[test]
fn warnings_fit_kubernetes_limits() {
    let many: Vec<String> = (0..100)
        .map(|i| format!("{i}: {}", "x".repeat(300)))
        .collect();
    let fitted = fit_warnings(many);
    assert!(
        fitted
            .iter()
            .all(|w| w.chars().count() <= MAX_WARNING_CHARS)
    );
    assert!(fitted.iter().map(String::len).sum::<usize>() <= MAX_WARNINGS_TOTAL);
    assert!(fitted.last().unwrap().contains("more warnings omitted"));
}

/// A `pods/resize` review of a pod mutated at 4 CPUs / 4Gi, resized to `limits`.
fn resize_request(limits: Value, owned: bool) -> Vec<u8> {
    let mut container = good_container();
    container["resources"]["limits"] = json!({"cpu": "4", "memory": "4Gi"});
    container["env"] =
        json!([{"name": "GOMAXPROCS", "value": "4"}, {"name": "GOMEMLIMIT", "value": "3686MiB"}]);
    // A legacy pod without probes: a resize is not the moment to demand them.
    container.as_object_mut().unwrap().remove("livenessProbe");
    let mut old = pod(json!([container]));
    old["metadata"]["annotations"] =
        json!({"deployguard.io/injected": "app: GOMAXPROCS=4 GOMEMLIMIT=3686MiB"});
    if owned {
        old["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "name": "web-1", "uid": "1", "controller": true}]);
    }
    let mut new = old.clone();
    new["spec"]["containers"][0]["resources"]["limits"] = limits;
    let mut body: Value =
        serde_json::from_slice(&request(API_VERSION_V1, "UPDATE", "Pod", new, Some(old))).unwrap();
    body["request"]["subResource"] = json!("resize");
    serde_json::to_vec(&body).unwrap()
}

#[test]
fn resizing_below_the_running_gomemlimit_is_denied_even_for_controller_owned_pods() {
    for owned in [false, true] {
        let out = respond(
            Endpoint::Validate,
            &resize_request(json!({"cpu": "1", "memory": "512Mi"}), owned),
        );
        let response = &out["response"];
        assert_eq!(response["allowed"], false, "owned: {owned}");
        let message = response["status"]["message"].as_str().unwrap();
        assert!(
            message.contains("env cannot change in a running pod"),
            "{message}"
        );
        assert!(message.contains("kubectl rollout restart"), "{message}");
        let warnings = response["warnings"].to_string();
        assert!(warnings.contains("CPU budget to 2"), "{warnings}");
    }
}

#[test]
fn resizes_within_bounds_are_allowed_and_never_mutated() {
    let within = respond(
        Endpoint::Validate,
        &resize_request(json!({"cpu": "4", "memory": "3800Mi"}), false),
    );
    assert_eq!(within["response"]["allowed"], true);
    assert!(
        within["response"].get("warnings").is_none(),
        "probes are not demanded of a resize"
    );
    let mutate = respond(
        Endpoint::Mutate,
        &resize_request(json!({"cpu": "1", "memory": "512Mi"}), false),
    );
    assert_eq!(mutate["response"]["allowed"], true);
    assert!(mutate["response"].get("patch").is_none());
}
