//! Workload manifests the scenarios apply: the repository's examples (their namespace
//! left to `kubectl -n`) and small objects written here.

use std::path::Path;

/// examples/NAME without its `namespace:` line, so `kubectl -n` places it.
pub fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|line| !line.trim_start().starts_with("namespace:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A container that passes the default policy; `resources` is a YAML flow mapping.
pub fn compliant_container(name: &str, resources: &str) -> String {
    format!(
        "- name: {name}\n  image: registry.example.com/{name}:1\n  ports: [{{name: http, containerPort: 8080}}]\n  \
         livenessProbe: {{httpGet: {{path: /healthz, port: http}}}}\n  \
         readinessProbe: {{httpGet: {{path: /readyz, port: http}}}}\n  resources: {resources}\n"
    )
}

/// A Deployment of `replicas` pods running `containers` (a YAML list).
pub fn deployment(name: &str, replicas: u32, containers: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  \
         selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    \
         spec:\n      containers:\n{}",
        indent(containers, 6)
    )
}

/// A bare Pod running `containers`; `extra_metadata` is added under metadata.
pub fn pod(name: &str, extra_metadata: &str, containers: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n{}spec:\n  containers:\n{}",
        indent(extra_metadata, 2),
        indent(containers, 2)
    )
}

pub fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| format!("{pad}{line}\n"))
        .collect()
}

/// A container with no probes and no limits: everything the policy enforces is missing.
pub const BARE_CONTAINER: &str = "- name: app\n  image: registry.example.com/app:1\n";
