//! `deployguard audit`: the audit core's kube-rs client against an in-process HTTP server
//! speaking the API's documented list JSON (tests/common/fake_kube_lists.rs) — no real
//! cluster. Pagination, 403 per namespace, 410 on an expired continue token, owner
//! resolution, LimitRanges, server-side apply of the reports, and the binary's exit codes
//! through a kubeconfig.

#[allow(dead_code)]
mod common;

use std::collections::BTreeSet;

use common::fake_kube_lists::FakeLists;
use deployguard::cli::audit::{Options, Progress, Targets, apply_reports, audit};
use deployguard::cli::{Format, Report, cluster_reports};
use deployguard::policy::{Policy, RequestContext};
use serde_json::{Value, json};

fn meta(name: &str, namespace: &str, labels: Value, owner: Option<(&str, &str)>) -> Value {
    let mut meta = json!({"name": name, "namespace": namespace, "uid": format!("uid-{name}"), "labels": labels});
    if let Some((kind, name)) = owner {
        meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": format!("uid-{name}"), "controller": true}]);
    }
    meta
}

/// A pod spec whose one container has probes and `resources`.
fn pod_spec(resources: Value) -> Value {
    json!({"containers": [{
        "name": "app",
        "ports": [{"name": "http", "containerPort": 8080}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
        "resources": resources
    }]})
}

fn pod(name: &str, namespace: &str, labels: Value, owner: Option<(&str, &str)>) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, namespace, labels, owner), "spec": pod_spec(json!({}))})
}

/// `shop`: Deployment `web` (no limits) → ReplicaSet `web-1` → pods `web-1-a`, `web-1-b`;
/// a pod claiming a missing ReplicaSet, one claiming `web-1` without its labels, a
/// Deployment `sized` whose missing limits a LimitRange defaults. `secret`: one pod.
/// `batch`: a CronJob without limits (enforce findings).
fn cluster() -> Vec<Value> {
    let web = json!({"app": "web"});
    vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("web", "shop", web.clone(), None),
            "spec": {"selector": {"matchLabels": web}, "template": {"metadata": {"labels": web}, "spec": pod_spec(json!({}))}}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("sized", "shop", json!({"app": "sized"}), None),
            "spec": {"selector": {"matchLabels": {"app": "sized"}}, "template": {"metadata": {"labels": {"app": "sized"}}, "spec": pod_spec(json!({}))}}}),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta("web-1", "shop", web.clone(), Some(("Deployment", "web"))),
            "spec": {"selector": {"matchLabels": web}, "template": {"metadata": {"labels": web}, "spec": pod_spec(json!({}))}}}),
        pod(
            "web-1-a",
            "shop",
            web.clone(),
            Some(("ReplicaSet", "web-1")),
        ),
        pod(
            "web-1-b",
            "shop",
            web.clone(),
            Some(("ReplicaSet", "web-1")),
        ),
        pod("orphan", "shop", web.clone(), Some(("ReplicaSet", "gone"))),
        pod(
            "stray",
            "shop",
            json!({"app": "other"}),
            Some(("ReplicaSet", "web-1")),
        ),
        pod("hidden", "secret", json!({}), None),
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("nightly", "batch", json!({}), None),
            "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": pod_spec(json!({}))}}}}}),
        json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": meta("defaults", "shop", json!({}), None),
            "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"}}]}}),
    ]
}

fn client(api: &FakeLists) -> kube::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    kube::Client::try_from(kube::Config::new(api.url.parse().unwrap())).unwrap()
}

async fn run(api: &FakeLists, targets: Targets, page_size: u32) -> Report {
    let options = Options {
        targets,
        context: RequestContext::NONE,
        page_size,
    };
    audit(
        &client(api),
        &Policy::default(),
        &options,
        &mut Progress::off(),
    )
    .await
    .unwrap()
}

fn shop_and_secret() -> Targets {
    Targets::Namespaces(vec!["shop".into(), "secret".into()])
}

/// `Kind/namespace/name` of every result.
fn judged(report: &Report) -> BTreeSet<String> {
    report
        .results
        .iter()
        .map(|r| format!("{}/{}/{}", r.result.kind, r.result.namespace, r.result.name))
        .collect()
}

fn result<'r>(report: &'r Report, name: &str) -> &'r deployguard::manifest::WorkloadResult {
    &report
        .results
        .iter()
        .find(|r| r.result.name == name)
        .unwrap()
        .result
}

#[tokio::test]
async fn owned_objects_are_represented_by_their_owners_and_false_claims_are_judged() {
    let api = FakeLists::start(cluster()).await;
    let report = run(&api, Targets::Namespaces(vec!["shop".into()]), 500).await;
    let expected: BTreeSet<String> = [
        "Deployment/shop/web",
        "Deployment/shop/sized",
        "Pod/shop/orphan",
        "Pod/shop/stray",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(
        judged(&report),
        expected,
        "ReplicaSet web-1 and its pods are represented by Deployment web"
    );
    for name in ["orphan", "stray"] {
        let notes = &result(&report, name).notes;
        assert!(
            notes.iter().any(|n| n.contains("judged in full")),
            "{name}: {notes:?}"
        );
    }
    let source = &report
        .results
        .iter()
        .find(|r| r.result.name == "orphan")
        .unwrap()
        .source;
    assert_eq!(source, "cluster:shop/Pod/orphan");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[tokio::test]
async fn limit_ranges_are_applied_per_namespace() {
    let api = FakeLists::start(cluster()).await;
    let report = run(&api, Targets::Namespaces(vec!["shop".into()]), 500).await;
    let sized = result(&report, "sized");
    assert!(!sized.limit_range_defaults.is_empty(), "{sized:?}");
    let rules: Vec<&str> = sized.findings.iter().map(|f| f.rule.as_str()).collect();
    assert!(
        !rules.contains(&"cpu-limit") && !rules.contains(&"memory-limit"),
        "{rules:?}"
    );
}

#[tokio::test]
async fn lists_are_read_in_pages_with_continue_tokens() {
    let api = FakeLists::start(cluster()).await;
    let report = run(&api, Targets::Namespaces(vec!["shop".into()]), 2).await;
    assert_eq!(judged(&report).len(), 4);
    let pods = api.lists_of("pods");
    assert_eq!(
        pods,
        [
            "/api/v1/namespaces/shop/pods?limit=2",
            "/api/v1/namespaces/shop/pods?limit=2&continue=2",
        ],
        "4 pods in pages of 2"
    );
    assert_eq!(
        report.summary.documents,
        9 - 1,
        "every object of shop read once"
    );
}

#[tokio::test]
async fn an_expired_continue_token_falls_back_to_one_full_list() {
    let api = FakeLists::start(cluster()).await;
    api.expire_next_continue();
    let report = run(&api, Targets::Namespaces(vec!["shop".into()]), 1).await;
    let expected = run(
        &FakeLists::start(cluster()).await,
        Targets::Namespaces(vec!["shop".into()]),
        500,
    )
    .await;
    assert_eq!(judged(&report), judged(&expected));
    assert!(report.errors.is_empty());
    // The first list to page (LimitRanges: one object, no continue) is not it; Deployments are.
    let deployments = api.lists_of("deployments");
    assert_eq!(
        deployments,
        [
            "/apis/apps/v1/namespaces/shop/deployments?limit=1",
            "/apis/apps/v1/namespaces/shop/deployments?limit=1&continue=1",
            "/apis/apps/v1/namespaces/shop/deployments?",
        ]
    );
}

#[tokio::test]
async fn a_forbidden_namespace_is_reported_and_the_others_judged() {
    let api = FakeLists::start(cluster()).await;
    api.forbid_namespace("secret");
    let report = run(&api, shop_and_secret(), 500).await;
    assert_eq!(judged(&report).len(), 4);
    let sources: BTreeSet<&str> = report.errors.iter().map(|e| e.source.as_str()).collect();
    assert!(sources.contains("cluster:secret/pods"), "{sources:?}");
    assert!(
        sources.contains("cluster:secret/limitranges"),
        "{sources:?}"
    );
    assert_eq!(
        report.errors.len(),
        9,
        "LimitRanges and the eight workload kinds"
    );
    let pods = report
        .errors
        .iter()
        .find(|e| e.source == "cluster:secret/pods")
        .unwrap();
    assert!(
        pods.message
            .starts_with("cannot list pods in namespace \"secret\": "),
        "{}",
        pods.message
    );
    assert!(pods.message.contains("forbidden"), "{}", pods.message);
    assert_eq!(report.summary.errors, 9);
}

#[tokio::test]
async fn all_namespaces_falls_back_to_each_namespace_when_cluster_lists_are_forbidden() {
    let api = FakeLists::start(cluster()).await;
    let open = run(&api, Targets::AllNamespaces, 500).await;
    assert!(judged(&open).contains("Pod/secret/hidden"));
    assert!(open.errors.is_empty());

    let api = FakeLists::start(cluster()).await;
    api.forbid_cluster_wide();
    api.forbid_namespace("secret");
    let report = run(&api, Targets::AllNamespaces, 500).await;
    assert_eq!(
        judged(&report).len(),
        5,
        "shop and batch, read namespace by namespace"
    );
    assert!(
        report
            .errors
            .iter()
            .all(|e| e.source.starts_with("cluster:secret/")),
        "{:?}",
        report.errors
    );
    assert_eq!(
        api.lists_of("namespaces").len(),
        1,
        "namespaces listed once"
    );
}

#[tokio::test]
async fn reports_are_written_by_server_side_apply() {
    let api = FakeLists::start(cluster()).await;
    let report = run(&api, Targets::Namespaces(vec!["shop".into()]), 500).await;
    let objects = cluster_reports(&report, Format::Policyreport);
    assert_eq!(
        apply_reports(&client(&api), &objects).await,
        Vec::<String>::new()
    );
    let patches: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 1);
    let patch = &patches[0];
    assert_eq!(
        patch.path,
        "/apis/wgpolicyk8s.io/v1alpha2/namespaces/shop/policyreports/deployguard"
    );
    let params: BTreeSet<&str> = patch.query.split('&').collect();
    assert_eq!(
        params,
        BTreeSet::from(["fieldManager=deployguard", "force=true"])
    );
    assert_eq!(patch.content_type, "application/apply-patch+yaml");
    let body: Value = serde_json::from_slice(&patch.body).unwrap();
    assert_eq!(body["kind"], "PolicyReport");
    assert_eq!(body["metadata"]["namespace"], "shop");

    let open = cluster_reports(&report, Format::Openreports);
    assert_eq!(
        apply_reports(&client(&api), &open).await,
        Vec::<String>::new()
    );
    let last = api.requests().pop().unwrap();
    assert_eq!(
        last.path,
        "/apis/openreports.io/v1alpha1/namespaces/shop/reports/deployguard"
    );
}

/// Runs the binary with a kubeconfig (context `fake`) for `api`; exit code and stdout.
async fn binary(api: &FakeLists, args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"{}\"}}\nusers:\n- name: dev\n  user: {{}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: dev, namespace: shop}}\ncurrent-context: fake\n",
        api.url
    );
    std::fs::write(&kubeconfig, text).unwrap();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_deployguard"))
            .arg("audit")
            .args(&args)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    (output.status.code().unwrap(), stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reads_the_kubeconfig_and_exits_as_check_does() {
    let api = FakeLists::start(cluster()).await;
    api.forbid_namespace("secret");
    // The context's namespace (shop), where the LimitRange gives every container limits.
    let (code, stdout) = binary(&api, &["--output", "json"]).await;
    assert_eq!(code, 0, "{stdout}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["summary"]["workloads"], 4);
    assert!(
        api.lists_of("pods")
            .iter()
            .all(|p| p.contains("/namespaces/shop/"))
    );

    let (code, stdout) = binary(
        &api,
        &[
            "--context",
            "fake",
            "-n",
            "shop",
            "-n",
            "secret",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(code, 2, "a list that cannot be read is an input error");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        json["summary"]["workloads"], 4,
        "the readable namespace is still judged"
    );
    assert_eq!(json["errors"][0]["source"], "cluster:secret/limitranges");

    let (code, _) = binary(&api, &["--context", "nowhere"]).await;
    assert_eq!(code, 2, "an unknown context is a config error");

    let (code, stdout) = binary(&api, &["-n", "batch"]).await;
    assert_eq!(code, 1, "the CronJob has no limits: {stdout}");
    let first = "cluster:batch/CronJob/nightly:1 CronJob/batch/nightly container \"app\": ";
    assert!(stdout.starts_with(first), "{stdout}");

    let apply = ["-n", "batch", "--output", "policyreport", "--apply-reports"];
    let (code, _) = binary(&api, &apply).await;
    assert_eq!(code, 1);
    let patches: Vec<String> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.path)
        .collect();
    assert_eq!(
        patches,
        ["/apis/wgpolicyk8s.io/v1alpha2/namespaces/batch/policyreports/deployguard"]
    );
}
