//! Engine benchmarks: (a) judge + patch of a parsed 3-container Deployment,
//! (b) `review` bytes in → bytes out on a real ~5 KB Pod AdmissionReview from the corpus.
//! Run: `cargo bench --bench engine`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use deployguard::admission::{Cluster, Endpoint, review};
use deployguard::patch::go_env_patch;
use deployguard::policy::{Policy, RequestContext};
use deployguard::workload::Workload;
use kube::core::DynamicObject;
use serde_json::json;

fn three_container_deployment() -> DynamicObject {
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
    serde_json::from_value(object).expect("benchmark object")
}

fn engine(c: &mut Criterion) {
    let policy = Policy::default();
    let deployment = three_container_deployment();
    c.bench_function("judge+patch 3-container Deployment", |b| {
        b.iter(|| {
            let workload =
                Workload::locate("Deployment", black_box(&deployment)).expect("workload");
            let spec = workload.read_spec().expect("spec");
            let subject = workload.subject("shop", &spec, RequestContext::NONE);
            let judgement = policy.judge(&subject);
            let ops = go_env_patch(&workload, &policy.go_env_plan(&subject));
            black_box((judgement, ops))
        })
    });

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/kubewarden_policy-server__tests__data__pod_without_privileged_containers.json"
    );
    let body = std::fs::read(path).expect("corpus file (../shared/corpus beside the repo)");
    let cluster = Cluster::bare(deployguard::clock::today_utc());
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
