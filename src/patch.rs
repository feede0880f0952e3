//! Injections → RFC 6902 operations relative to the object root.
//!
//! Pointers are built from tokens by `jsonptr`, which escapes `~` and `/` (`~0`, `~1`),
//! so `deployguard.io/injected` becomes `deployguard.io~1injected`.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use serde_json::{Map, Value, json};

use crate::policy::{ContainerInjection, INJECTED_ANNOTATION};
use crate::workload::{Workload, WorkloadKind};

/// The operations that add the injected variables and record them in the
/// `deployguard.io/injected` annotation. Empty when there is nothing to inject, so a
/// reinvocation adds nothing.
pub fn injection_patch(
    workload: &Workload<'_>,
    injections: &[ContainerInjection<'_>],
) -> Vec<PatchOperation> {
    if injections.is_empty() {
        return Vec::new();
    }
    let mut ops = Vec::new();
    for injection in injections {
        let env_tokens = || {
            workload.pod_spec_tokens().map(str::to_owned).chain([
                injection.role.field().to_owned(),
                injection.index.to_string(),
                "env".to_owned(),
            ])
        };
        let entries = injection
            .vars
            .iter()
            .map(|var| json!({"name": var.name, "value": var.value}));
        if injection.has_env {
            for entry in entries {
                ops.push(add(env_tokens().chain(["-".to_owned()]), entry));
            }
        } else {
            ops.push(add(env_tokens(), Value::Array(entries.collect())));
        }
    }
    ops.push(annotation_op(workload, &record(injections)));
    ops
}

/// `app: GOMAXPROCS=2 GOMEMLIMIT=921MiB; sidecar: GOMEMLIMIT=115MiB`
fn record(injections: &[ContainerInjection<'_>]) -> String {
    injections
        .iter()
        .map(|injection| {
            let vars: Vec<String> = injection
                .vars
                .iter()
                .map(|var| format!("{}={}", var.name, var.value))
                .collect();
            format!("{}: {}", injection.name, vars.join(" "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Adds the annotation where it is missing: the key, the `annotations` map, or the
/// whole `metadata` object. An earlier record (from a reinvocation that injected into
/// containers another webhook added) is kept in front.
fn annotation_op(workload: &Workload<'_>, record: &str) -> PatchOperation {
    let metadata_tokens: Vec<&str> = workload
        .kind
        .template_tokens()
        .iter()
        .copied()
        .chain(["metadata"])
        .collect();
    let (metadata_present, annotations) = match workload.kind {
        WorkloadKind::Pod => {
            let meta = workload.meta();
            // Typed metadata cannot tell `{}` from absent; adding the whole object is right for both.
            let present = *meta != Default::default();
            let annotations = meta.annotations.as_ref().map(|map| {
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect::<Map<String, Value>>()
            });
            (present, annotations)
        }
        _ => {
            let metadata = workload.template_metadata.filter(|m| m.is_object());
            let annotations = metadata
                .and_then(|m| m.get("annotations"))
                .and_then(Value::as_object)
                .cloned();
            (metadata.is_some(), annotations)
        }
    };
    let value = match annotations
        .as_ref()
        .and_then(|map| map.get(INJECTED_ANNOTATION))
        .and_then(Value::as_str)
    {
        Some(earlier) if !earlier.is_empty() => format!("{earlier}; {record}"),
        _ => record.to_owned(),
    };
    let tokens = metadata_tokens.iter().map(|t| (*t).to_owned());
    match (metadata_present, annotations.is_some()) {
        (true, true) => add(
            tokens.chain(["annotations".to_owned(), INJECTED_ANNOTATION.to_owned()]),
            Value::String(value),
        ),
        (true, false) => add(
            tokens.chain(["annotations".to_owned()]),
            json!({ INJECTED_ANNOTATION: value }),
        ),
        (false, _) => add(
            tokens,
            json!({"annotations": { INJECTED_ANNOTATION: value }}),
        ),
    }
}

fn add(tokens: impl Iterator<Item = String>, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(tokens),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use kube::core::DynamicObject;

    fn patch_for(kind: &str, object: &Value) -> Vec<PatchOperation> {
        let dynamic: DynamicObject = serde_json::from_value(object.clone()).unwrap();
        let workload = Workload::locate(kind, &dynamic).unwrap();
        let spec = workload.read_spec().unwrap();
        let subject = workload.subject("default", &spec);
        injection_patch(&workload, &Policy::default().injections(&subject))
    }

    fn apply(object: &Value, ops: &[PatchOperation]) -> Value {
        let mut doc = object.clone();
        json_patch::patch(&mut doc, ops).unwrap();
        doc
    }

    fn limited(env: Option<Value>) -> Value {
        let mut container =
            json!({"name": "app", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}});
        if let Some(env) = env {
            container["env"] = env;
        }
        container
    }

    #[test]
    fn adds_env_array_and_annotations_map() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [limited(None)]}});
        let ops = patch_for("Pod", &pod);
        let text = serde_json::to_value(&ops).unwrap();
        assert_eq!(
            text,
            json!([
                {"op": "add", "path": "/spec/containers/0/env", "value": [
                    {"name": "GOMAXPROCS", "value": "2"}, {"name": "GOMEMLIMIT", "value": "921MiB"}]},
                {"op": "add", "path": "/metadata/annotations",
                 "value": {"deployguard.io/injected": "app: GOMAXPROCS=2 GOMEMLIMIT=921MiB"}},
            ])
        );
        let patched = apply(&pod, &ops);
        assert_eq!(
            patch_for("Pod", &patched),
            [],
            "a reinvocation adds nothing"
        );
    }

    #[test]
    fn appends_to_env_and_escapes_the_annotation_key() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": {"a": "b"}},
            "spec": {"containers": [{"name": "side"}], "initContainers": [limited(Some(json!([{"name": "X", "value": "1"}])))]}});
        let ops = serde_json::to_value(patch_for("Pod", &pod)).unwrap();
        assert_eq!(ops[0]["path"], "/spec/initContainers/0/env/-");
        assert_eq!(ops[1]["path"], "/spec/initContainers/0/env/-");
        assert_eq!(
            ops[2]["path"],
            "/metadata/annotations/deployguard.io~1injected"
        );
    }

    #[test]
    fn pod_without_metadata_gets_it() {
        let pod =
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [limited(None)]}});
        let ops = patch_for("Pod", &pod);
        let patched = apply(&pod, &ops);
        assert_eq!(
            patched["metadata"]["annotations"][INJECTED_ANNOTATION],
            "app: GOMAXPROCS=2 GOMEMLIMIT=921MiB"
        );
    }

    #[test]
    fn templates_record_on_the_template() {
        let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [limited(None)]}}}}}});
        let ops = patch_for("CronJob", &cron);
        let text = serde_json::to_value(&ops).unwrap();
        assert_eq!(
            text[0]["path"],
            "/spec/jobTemplate/spec/template/spec/containers/0/env"
        );
        assert_eq!(text[1]["path"], "/spec/jobTemplate/spec/template/metadata");
        let patched = apply(&cron, &ops);
        assert_eq!(patch_for("CronJob", &patched), []);
    }

    #[test]
    fn earlier_record_is_kept() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "annotations": {INJECTED_ANNOTATION: "old: GOMAXPROCS=2"}},
            "spec": {"containers": [limited(None)]}});
        let patched = apply(&pod, &patch_for("Pod", &pod));
        assert_eq!(
            patched["metadata"]["annotations"][INJECTED_ANNOTATION],
            "old: GOMAXPROCS=2; app: GOMAXPROCS=2 GOMEMLIMIT=921MiB"
        );
    }
}
