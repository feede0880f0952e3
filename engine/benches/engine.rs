//! Engine benchmarks: (a) judge + patch of a 3-container Deployment from its JSON text,
//! (b) `review` bytes in → bytes out on a real ~5 KB Pod AdmissionReview from the corpus.
//! Run: `cargo bench -p deployguard-engine --bench engine` (or `cargo bench --bench engine`
//! at the root).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use deployguard_engine::admission::{Cluster, Endpoint, review};
use deployguard_engine::evaluate::{Evaluation, Scene};
use deployguard_engine::object::Object;
use deployguard_engine::policy::{LimitRanges, Policy, RequestContext};
use deployguard_engine::workload::Workload;
use serde_json::json;

fn three_container_deployment() -> String {
    let container = |name: &str, cpu: &str, memory: &str| {
        json!({"name": name, "image": format!("registry.example.com/{name}:1.0"),
            "ports": [{"name": "http", "containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
            "env": [{"name": "LOG_LEVEL", "value": "info"}],
            "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"cpu": cpu, "memory": memory}}})
    };
    let object = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "shop", "namespace": "shop", "labels": {"app": "shop"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "shop"}}, "template": {
            "metadata": {"labels": {"app": "shop"}},
            "spec": {"containers": [container("api", "2", "1Gi"), container("worker", "1500m", "768Mi"),
                container("proxy", "500m", "128Mi")]}}}});
    object.to_string()
}

static NO_LIMIT_RANGES: LimitRanges = LimitRanges::new();

fn engine(c: &mut Criterion) {
    let policy = Policy::default();
    let deployment = three_container_deployment();
    c.bench_function("judge+patch 3-container Deployment", |b| {
        b.iter(|| {
            let object: Object<'_> =
                serde_json::from_str(black_box(&deployment)).expect("benchmark object");
            let workload = Workload::locate("Deployment", &object).expect("workload");
            let scene = Scene {
                namespace: None,
                default_namespace: "shop",
                name: None,
                context: RequestContext::NONE,
                limit_ranges: &NO_LIMIT_RANGES,
            };
            let evaluation = Evaluation::of(&workload, scene).expect("spec");
            black_box((evaluation.judge(&policy), evaluation.patch(&policy)))
        })
    });

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/kubewarden_policy-server__tests__data__pod_without_privileged_containers.json"
    );
    let body = std::fs::read(path).expect("corpus file (../shared/corpus beside the repo)");
    let cluster = Cluster::bare(jiff::civil::date(2026, 12, 8));
    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
        c.bench_function(
            &format!("review {} 5 KB Pod AdmissionReview", endpoint.as_str()),
            |b| {
                b.iter(|| {
                    black_box(review(&policy, cluster, endpoint, black_box(&body)).expect("review"))
                })
            },
        );
    }
}

criterion_group!(benches, engine);
criterion_main!(benches);
