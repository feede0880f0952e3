//! Go env plans → RFC 6902 operations relative to the object root.
//!
//! Pointers are built from tokens by `jsonptr`, which escapes `~` and `/` (`~0`, `~1`),
//! so `deployguard.io/injected` becomes `deployguard.io~1injected`.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::{Map, Value, json};

use crate::policy::{EnvChange, GoEnvPlan, INJECTED_ANNOTATION, RecordChange};
use crate::workload::Workload;

/// The operations that carry out `plan`: env entries added, replaced and removed, and
/// the `deployguard.io/injected` annotation rewritten to match. Empty for an empty plan,
/// so a reinvocation with unchanged limits changes nothing.
pub fn go_env_patch(workload: &Workload<'_>, plan: &GoEnvPlan<'_>) -> Vec<PatchOperation> {
    let mut ops = Vec::new();
    for container in &plan.containers {
        let env_tokens = || {
            workload.pod_spec_tokens().map(str::to_owned).chain([
                container.role.field().to_owned(),
                container.index.to_string(),
                "env".to_owned(),
            ])
        };
        let mut additions = Vec::new();
        for change in &container.changes {
            match change {
                EnvChange::Replace { index, value } => {
                    ops.push(PatchOperation::Replace(ReplaceOperation {
                        path: PointerBuf::from_tokens(
                            env_tokens().chain([index.to_string(), "value".to_owned()]),
                        ),
                        value: Value::String(value.clone()),
                    }))
                }
                EnvChange::Remove { index } => ops.push(PatchOperation::Remove(RemoveOperation {
                    path: PointerBuf::from_tokens(env_tokens().chain([index.to_string()])),
                })),
                EnvChange::Add { name, value } => {
                    additions.push(json!({"name": name, "value": value}))
                }
            }
        }
        if additions.is_empty() {
            continue;
        }
        if container.has_env {
            for entry in additions {
                ops.push(add(env_tokens().chain(["-".to_owned()]), entry));
            }
        } else {
            ops.push(add(env_tokens(), Value::Array(additions)));
        }
    }
    match &plan.record {
        RecordChange::Keep => {}
        RecordChange::Write(record) => ops.push(annotation_op(workload, record)),
        RecordChange::Remove => ops.push(PatchOperation::Remove(RemoveOperation {
            path: PointerBuf::from_tokens(
                metadata_tokens(workload)
                    .chain(["annotations".to_owned(), INJECTED_ANNOTATION.to_owned()]),
            ),
        })),
    }
    ops
}

/// Tokens from the object root to the pod's (or template's) `metadata`.
fn metadata_tokens(workload: &Workload<'_>) -> impl Iterator<Item = String> + use<> {
    workload
        .kind
        .template_tokens()
        .iter()
        .map(|t| (*t).to_owned())
        .chain(["metadata".to_owned()])
}

/// Sets the annotation, adding what is missing on the way: the `annotations` map, or the
/// whole `metadata` object.
fn annotation_op(workload: &Workload<'_>, record: &str) -> PatchOperation {
    let (metadata_present, annotations_present) = match &workload.template {
        None => (workload.has_metadata, workload.meta.annotations.is_some()),
        Some(template) => (template.present, template.has_annotations),
    };
    let value = Value::String(record.to_owned());
    let tokens = metadata_tokens(workload);
    match (metadata_present, annotations_present) {
        (true, true) => add(
            tokens.chain(["annotations".to_owned(), INJECTED_ANNOTATION.to_owned()]),
            value,
        ),
        (true, false) => add(
            tokens.chain(["annotations".to_owned()]),
            Value::Object(Map::from_iter([(INJECTED_ANNOTATION.to_owned(), value)])),
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
    use crate::evaluate::{Evaluation, Scene};
    use crate::object::Object;
    use crate::policy::Policy;
    use crate::policy::{LimitRanges, RequestContext};

    fn patch_for(kind: &str, object: &Value) -> Vec<PatchOperation> {
        let json = object.to_string();
        let object: Object<'_> = serde_json::from_str(&json).unwrap();
        let workload = Workload::locate(kind, &object).unwrap();
        let scene = Scene {
            namespace: None,
            default_namespace: "default",
            name: None,
            context: RequestContext::NONE,
            limit_ranges: &LimitRanges::new(),
        };
        Evaluation::of(&workload, scene)
            .unwrap()
            .patch(&Policy::default())
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
    fn a_stale_record_is_rewritten_to_what_is_owned() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "annotations": {INJECTED_ANNOTATION: "gone: GOMAXPROCS=2"}},
            "spec": {"containers": [limited(None)]}});
        let patched = apply(&pod, &patch_for("Pod", &pod));
        assert_eq!(
            patched["metadata"]["annotations"][INJECTED_ANNOTATION],
            "app: GOMAXPROCS=2 GOMEMLIMIT=921MiB"
        );
    }

    #[test]
    fn limits_changed_by_another_webhook_are_followed() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "app", "resources": {"limits": {"cpu": "4", "memory": "4Gi"}},
                "env": [{"name": "GOGC", "value": "50"}]}]}});
        let first = apply(&pod, &patch_for("Pod", &pod));
        let mut resized = first.clone();
        resized["spec"]["containers"][0]["resources"]["limits"] =
            json!({"cpu": "1", "memory": "512Mi"});
        let ops = patch_for("Pod", &resized);
        assert_eq!(
            serde_json::to_value(&ops).unwrap(),
            json!([
                {"op": "replace", "path": "/spec/containers/0/env/1/value", "value": "2"},
                {"op": "replace", "path": "/spec/containers/0/env/2/value", "value": "460MiB"},
                {"op": "add", "path": "/metadata/annotations/deployguard.io~1injected",
                 "value": "app: GOMAXPROCS=2 GOMEMLIMIT=460MiB"},
            ])
        );
        let mut unlimited = apply(&resized, &ops);
        unlimited["spec"]["containers"][0]["resources"] = json!({});
        let removed = apply(&unlimited, &patch_for("Pod", &unlimited));
        assert_eq!(
            removed["spec"]["containers"][0]["env"],
            json!([{"name": "GOGC", "value": "50"}])
        );
        assert_eq!(removed["metadata"]["annotations"], json!({}));
        assert_eq!(patch_for("Pod", &removed), []);
    }
}
