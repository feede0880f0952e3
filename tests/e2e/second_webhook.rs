//! A second mutating webhook for the reinvocation test: it lowers every container's
//! memory limit to 256Mi once, and records the env each Pod arrived with (to show that
//! deployguard's ran before it).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::pki::CertPair;
use crate::tls_server::{https_acceptor, serve_https};

pub const LOWERED_MEMORY: &str = "256Mi";

/// What the webhook saw: per call, each container's env variable names.
pub type Seen = Arc<Mutex<Vec<Vec<String>>>>;

pub struct SecondWebhook {
    pub port: u16,
    pub seen: Seen,
    _runtime: tokio::runtime::Runtime,
}

impl SecondWebhook {
    pub fn start(cert: &CertPair) -> SecondWebhook {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let seen: Seen = Arc::default();
        let router = Router::new()
            .route("/mutate", post(lower))
            .with_state(seen.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let acceptor = https_acceptor(cert);
        runtime.spawn(async move { serve_https(listener, router, acceptor).await });
        SecondWebhook {
            port,
            seen,
            _runtime: runtime,
        }
    }
}

async fn lower(
    State(seen): State<Seen>,
    axum::Json(review): axum::Json<Value>,
) -> axum::Json<Value> {
    let request = &review["request"];
    let containers = request["object"]["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut env_names = Vec::new();
    let mut patch = Vec::new();
    for (index, container) in containers.iter().enumerate() {
        for entry in container["env"].as_array().into_iter().flatten() {
            env_names.push(entry["name"].as_str().unwrap_or("").to_string());
        }
        let memory = &container["resources"]["limits"]["memory"];
        if memory.is_string() && memory != LOWERED_MEMORY {
            patch.push(json!({
                "op": "replace",
                "path": format!("/spec/containers/{index}/resources/limits/memory"),
                "value": LOWERED_MEMORY,
            }));
        }
    }
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(env_names);
    let mut response = json!({"uid": request["uid"], "allowed": true});
    if !patch.is_empty() {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(Value::Array(patch).to_string());
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(encoded);
    }
    axum::Json(
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}),
    )
}

/// Its MutatingWebhookConfiguration, named to sort after deployguard's, for the
/// namespaces labelled `scope`.
pub fn configuration(
    name: &str,
    port: u16,
    ca_pem: &str,
    scope_label: &str,
    scope: &str,
) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata:\n  name: {name}\n\
         webhooks:\n- name: lower-memory.e2e.deployguard.io\n  clientConfig:\n    url: https://127.0.0.1:{port}/mutate\n    caBundle: {ca}\n  \
         rules:\n  - {{apiGroups: [''], apiVersions: [v1], operations: [CREATE], resources: [pods], scope: Namespaced}}\n  \
         namespaceSelector:\n    matchLabels: {{{scope_label}: {scope}}}\n  \
         admissionReviewVersions: [v1]\n  sideEffects: None\n  failurePolicy: Fail\n  reinvocationPolicy: Never\n  timeoutSeconds: 5\n"
    )
}
