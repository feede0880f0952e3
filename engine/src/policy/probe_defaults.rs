//! A probe as the API server stores it: `SetDefaults_Probe` (timeoutSeconds 1,
//! periodSeconds 10, successThreshold 1, failureThreshold 3, each when 0 or unset),
//! `SetDefaults_HTTPGetAction` (path `/`, scheme `HTTP`), the gRPC `service` default
//! (`""`), and `omitempty` (a zero, empty or null field is the same as an absent one).
//! Comparing stored forms lets `deployguard check` on raw YAML and the webhook, which
//! receives defaulted objects, agree.

use serde_json::{Map, Value, json};

/// The probe's timings after defaulting, in the order the kubelet applies them.
pub const PROBE_DEFAULTS: [(&str, i64); 4] = [
    ("timeoutSeconds", 1),
    ("periodSeconds", 10),
    ("successThreshold", 1),
    ("failureThreshold", 3),
];

/// The stored form of a probe object (anything else is returned as it is).
pub fn stored_probe(probe: &Value) -> Value {
    let Some(map) = probe.as_object() else {
        return probe.clone();
    };
    let mut stored = without_empty(map);
    for (field, default) in PROBE_DEFAULTS {
        if !stored.contains_key(field) {
            stored.insert(field.to_owned(), json!(default));
        }
    }
    if let Some(Value::Object(http)) = stored.get_mut("httpGet") {
        http.entry("path").or_insert_with(|| json!("/"));
        http.entry("scheme").or_insert_with(|| json!("HTTP"));
    }
    if let Some(Value::Object(grpc)) = stored.get_mut("grpc") {
        grpc.entry("service").or_insert_with(|| json!(""));
    }
    Value::Object(stored)
}

/// The map with `omitempty` applied, recursively: no null, zero, `""`, `[]` or `{}`.
fn without_empty(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter_map(|(key, value)| {
            let value = match value {
                Value::Object(inner) => Value::Object(without_empty(inner)),
                Value::Array(items) => Value::Array(
                    items
                        .iter()
                        .map(|item| match item {
                            Value::Object(inner) => Value::Object(without_empty(inner)),
                            other => other.clone(),
                        })
                        .collect(),
                ),
                other => other.clone(),
            };
            let empty = match &value {
                Value::Null => true,
                Value::Number(n) => n.as_f64() == Some(0.0),
                Value::String(s) => s.is_empty(),
                Value::Array(items) => items.is_empty(),
                Value::Object(inner) => inner.is_empty(),
                Value::Bool(_) => false,
            };
            (!empty).then(|| (key.clone(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cartservice_probes_are_identical_once_defaulted() {
        // microservices-demo's cartservice: readiness leaves periodSeconds to its default.
        let liveness =
            json!({"initialDelaySeconds": 15, "periodSeconds": 10, "grpc": {"port": 7070}});
        let readiness = json!({"initialDelaySeconds": 15, "grpc": {"port": 7070}});
        assert_ne!(liveness, readiness);
        assert_eq!(stored_probe(&liveness), stored_probe(&readiness));
    }

    #[test]
    fn handler_defaults_and_omitempty() {
        let written = json!({"httpGet": {"port": 80, "host": "", "httpHeaders": []}, "initialDelaySeconds": 0,
            "timeoutSeconds": 0, "terminationGracePeriodSeconds": null});
        let stored = json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
            "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3});
        assert_eq!(stored_probe(&written), stored);
        assert_eq!(stored_probe(&stored), stored, "defaulting is idempotent");
        let other_path = json!({"httpGet": {"port": 80, "path": "/ready"}});
        assert_ne!(stored_probe(&other_path), stored);
        assert_eq!(
            stored_probe(&json!({"grpc": {"port": 1}}))["grpc"],
            json!({"port": 1, "service": ""})
        );
    }
}
