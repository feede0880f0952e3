//! Laws of the mutation, checked on generated pods and templates:
//! the patch applies to the object it was computed from, a second review adds nothing,
//! injected GOMEMLIMIT parses under Go's grammar within 1 MiB below floor(0.9 × limit),
//! any sequence of limit changes between mutations ends in the env a fresh mutation of
//! the final object gives, no input shape makes the engine panic, and the YAML text
//! `mutate` edits in place keeps every line of its input and mutates once.

use base64::Engine as _;
use deployguard::admission::{Cluster, Endpoint, review};
use deployguard::manifest::{judge_document, mutate_document};
use deployguard::policy::gomemlimit::{GoMemLimit, parse_go_memlimit};
use deployguard::policy::quantity::Quantity;
use deployguard::policy::{INJECTED_ANNOTATION, InjectedRecord, Policy};
use deployguard::yaml_edit::edit_mutated;
use proptest::prelude::*;
use serde_json::{Value, json};

fn quantity() -> impl Strategy<Value = Value> {
    prop_oneof![
        (1u64..64).prop_map(|n| json!(format!("{}m", n * 125))),
        (1u64..4096).prop_map(|n| json!(format!("{n}Mi"))),
        (1u64..16).prop_map(|n| json!(format!("{n}.5Gi"))),
        (1u64..8).prop_map(|n| json!(format!("{n}G"))),
        (1u64..64).prop_map(|n| json!(n)),
        (1u64..8).prop_map(|n| json!(n as f64 / 4.0)),
        (64u64..4096).prop_map(|n| json!(n * 1024 * 1024)),
        (1u64..9).prop_map(|n| json!(format!("{n}e8"))),
    ]
}

fn limits() -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(
        (
            proptest::option::of(quantity()),
            proptest::option::of(quantity()),
        )
            .prop_map(|(cpu, memory)| {
                let mut map = serde_json::Map::new();
                if let Some(cpu) = cpu {
                    map.insert("cpu".into(), cpu);
                }
                if let Some(memory) = memory {
                    map.insert("memory".into(), memory);
                }
                json!({"limits": map})
            }),
    )
}

fn env() -> impl Strategy<Value = Option<Value>> {
    let entry = prop_oneof![
        Just(json!({"name": "GOMAXPROCS", "value": "1"})),
        Just(
            json!({"name": "GOMEMLIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}})
        ),
        "[A-Z_]{1,8}".prop_map(|name| json!({"name": name, "value": "x"})),
    ];
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        proptest::collection::vec(entry, 0..3).prop_map(|v| Some(json!(v)))
    ]
}

fn container(index: usize) -> impl Strategy<Value = Value> {
    (limits(), env(), any::<bool>()).prop_map(move |(resources, env, sidecar)| {
        let mut c = json!({"name": format!("c{index}"), "image": "app"});
        if let Some(resources) = resources {
            c["resources"] = resources;
        }
        if let Some(env) = env {
            c["env"] = env;
        }
        if sidecar {
            c["restartPolicy"] = json!("Always");
        }
        c
    })
}

fn pod_spec() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(container(0), 0..3),
        proptest::collection::vec(container(10), 0..2),
        proptest::option::of(limits()),
    )
        .prop_map(|(containers, init, pod_resources)| {
            let rename = |list: Vec<Value>, base: usize| -> Vec<Value> {
                list.into_iter()
                    .enumerate()
                    .map(|(i, mut c)| {
                        c["name"] = json!(format!("c{}", base + i));
                        c
                    })
                    .collect()
            };
            let mut spec = json!({"containers": rename(containers, 0)});
            if !init.is_empty() {
                spec["initContainers"] = json!(rename(init, 10));
            }
            if let Some(Some(resources)) = pod_resources {
                spec["resources"] = resources;
            }
            spec
        })
}

fn metadata() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(json!({"name": "x"}))),
        Just(Some(json!({"name": "x", "annotations": {"a/b": "c"}}))),
        Just(Some(
            json!({"name": "x", "annotations": {"deployguard.io/injected": "old: GOMAXPROCS=2"}})
        )),
        Just(Some(json!({"name": "x", "annotations": null}))),
    ]
}

fn workload() -> impl Strategy<Value = Value> {
    (prop_oneof![Just("Pod"), Just("Deployment"), Just("CronJob")], pod_spec(), metadata(), metadata()).prop_map(
        |(kind, spec, meta, template_meta)| {
            let mut template = json!({"spec": spec});
            if let Some(m) = template_meta {
                template["metadata"] = m;
            }
            let mut object = match kind {
                "Pod" => json!({"apiVersion": "v1", "kind": "Pod", "spec": template["spec"].clone()}),
                "CronJob" => json!({"apiVersion": "batch/v1", "kind": "CronJob",
                    "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": template}}}}),
                _ => json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": template}}),
            };
            if let Some(m) = meta {
                object["metadata"] = m;
            }
            object
        },
    )
}

fn mutate_policy() -> Policy {
    let mut policy = Policy::default();
    policy.go_runtime.mutate_templates = true;
    policy
}

/// The ops `/mutate` answers for a CREATE of `object`.
fn mutate_ops(policy: &Policy, object: &Value) -> Vec<json_patch::PatchOperation> {
    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": "", "version": "v1", "kind": object["kind"]},
        "resource": {"group": "", "version": "v1", "resource": "x"}, "namespace": "default",
        "operation": "CREATE", "userInfo": {}, "object": object}});
    let outcome = review(
        policy,
        Cluster::bare(jiff::civil::date(2026, 12, 2)),
        Endpoint::Mutate,
        &serde_json::to_vec(&body).unwrap(),
    )
    .unwrap();
    let response: Value = serde_json::from_slice(&outcome.body).unwrap();
    match response["response"]["patch"].as_str() {
        None => Vec::new(),
        Some(b64) => serde_json::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap(),
    }
}

fn memory_limits(object: &Value) -> Vec<(String, Option<u128>)> {
    let spec = object
        .pointer("/spec/containers")
        .map(|_| &object["spec"])
        .or_else(|| object.pointer("/spec/template/spec"))
        .or_else(|| object.pointer("/spec/jobTemplate/spec/template/spec"))
        .unwrap();
    let pod = spec
        .pointer("/resources/limits/memory")
        .map(|q| Quantity::from_json(q).unwrap().units_ceil());
    ["containers", "initContainers"]
        .iter()
        .flat_map(|field| spec[field].as_array().cloned().unwrap_or_default())
        .map(|c| {
            let own = c
                .pointer("/resources/limits/memory")
                .map(|q| Quantity::from_json(q).unwrap().units_ceil());
            (c["name"].as_str().unwrap().to_owned(), own.or(pod))
        })
        .collect()
}

/// Where the pod spec of a generated workload is.
fn spec_pointer(object: &Value) -> &'static str {
    [
        "/spec/jobTemplate/spec/template/spec",
        "/spec/template/spec",
        "/spec",
    ]
    .into_iter()
    .find(|p| object.pointer(&format!("{p}/containers")).is_some())
    .unwrap()
}

/// Where the pod's (or template's) metadata is.
fn metadata_pointer(object: &Value) -> String {
    match spec_pointer(object).strip_suffix("/spec") {
        Some("") | None => "/metadata".to_owned(),
        Some(template) => format!("{template}/metadata"),
    }
}

fn containers_mut(object: &mut Value) -> Vec<&mut Value> {
    let spec = object.pointer_mut(spec_pointer(&object.clone())).unwrap();
    let spec = spec.as_object_mut().unwrap();
    let mut all = Vec::new();
    for (field, list) in spec.iter_mut() {
        if field == "containers" || field == "initContainers" {
            all.extend(list.as_array_mut().into_iter().flatten());
        }
    }
    all
}

fn injected_annotation(object: &Value) -> Option<String> {
    object
        .pointer(&format!("{}/annotations", metadata_pointer(object)))
        .and_then(|a| a.get(INJECTED_ANNOTATION))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The object without deployguard's own env entries and its annotation.
fn strip_owned(object: &Value) -> Value {
    let mut stripped = without_owned_env(object);
    if let Some(annotations) = stripped
        .pointer_mut(&format!("{}/annotations", metadata_pointer(object)))
        .and_then(Value::as_object_mut)
    {
        annotations.remove(INJECTED_ANNOTATION);
    }
    stripped
}

/// The object without the env entries deployguard's annotation says it owns.
fn without_owned_env(object: &Value) -> Value {
    let annotation = injected_annotation(object).unwrap_or_default();
    let record = InjectedRecord::parse(&annotation).unwrap_or_default();
    let mut stripped = object.clone();
    for container in containers_mut(&mut stripped) {
        let name = container["name"].as_str().unwrap_or_default().to_owned();
        if let Some(env) = container.get_mut("env").and_then(Value::as_array_mut) {
            env.retain(|entry| {
                let var = entry["name"].as_str().unwrap_or_default();
                record.value(&name, var).is_none()
                    || entry["value"].as_str() != record.value(&name, var)
            });
        }
    }
    stripped
}

/// Each container's env as a sorted list of entries: compared variable by variable.
fn env_by_name(object: &Value) -> Vec<(String, Vec<String>)> {
    let mut copy = object.clone();
    let mut out: Vec<(String, Vec<String>)> = containers_mut(&mut copy)
        .into_iter()
        .map(|c| {
            let mut entries: Vec<String> = c["env"]
                .as_array()
                .into_iter()
                .flatten()
                .map(Value::to_string)
                .collect();
            entries.sort();
            (c["name"].as_str().unwrap_or_default().to_owned(), entries)
        })
        .collect();
    out.sort();
    out
}

fn mutate_and_apply(policy: &Policy, object: &Value) -> Result<Value, TestCaseError> {
    let ops = mutate_ops(policy, object);
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &ops)
        .map_err(|e| TestCaseError::fail(format!("{e}: {ops:?} on {object}")))?;
    Ok(patched)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn owned_env_follows_every_limit_change(
        object in workload(),
        steps in proptest::collection::vec((proptest::collection::vec(limits(), 4), any::<bool>()), 1..5),
    ) {
        let policy = mutate_policy();
        let user_env = env_by_name(&object);
        let mut current = mutate_and_apply(&policy, &object)?;
        for (limits, another_webhook_drops_ours) in steps {
            // Another mutating webhook sets new limits (VPA, Kyverno), and may drop the
            // env entries deployguard wrote; deployguard is then reinvoked.
            if another_webhook_drops_ours {
                current = without_owned_env(&current);
            }
            for (container, resources) in containers_mut(&mut current).into_iter().zip(limits) {
                match resources {
                    Some(resources) => container["resources"] = resources,
                    None => { container.as_object_mut().unwrap().remove("resources"); }
                }
            }
            current = mutate_and_apply(&policy, &current)?;
            prop_assert_eq!(mutate_ops(&policy, &current), vec![], "idempotent after {}", current);
        }
        let fresh = mutate_and_apply(&policy, &strip_owned(&current))?;
        prop_assert_eq!(env_by_name(&current), env_by_name(&fresh));
        prop_assert_eq!(injected_annotation(&current), injected_annotation(&fresh));
        // The user's entries are those the object came with (none were ours at first).
        prop_assert_eq!(env_by_name(&strip_owned(&current)), user_env, "the user's env changed");
    }

    #[test]
    fn yaml_edited_in_place_keeps_its_lines_and_mutates_once(
        object in workload(),
        crlf in any::<bool>(),
    ) {
        let policy = Policy::default();
        let yaml = serde_saphyr::to_string(&object).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // A comment on every line of the document.
        let lines: Vec<String> = yaml.lines().map(|line| format!("{line} # c")).collect();
        let newline = if crlf { "\r\n" } else { "\n" };
        let text = format!("# header{newline}{}{newline}", lines.join(newline));
        let mut value: Value = serde_saphyr::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assume!(value == object, "the commented text reads differently: {}", text);
        let mutation = mutate_document(&policy, &mut value);
        prop_assume!(mutation.ops > 0);
        // Emptying a collection whose key line has a comment (every line here has one) is
        // refused: the CLI then re-serialises. Whatever only adds must be edited in place.
        let removes = mutation.patches.iter().flat_map(|(_, ops)| ops).any(|op| matches!(op, json_patch::PatchOperation::Remove(_)));
        let edited = match edit_mutated(&text, &mutation, &value) {
            Ok(edited) => edited,
            Err(_) if removes => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("{e}: {text}"))),
        };
        // Every input line is in the output, in order, unless it holds a flow collection
        // or a null it fills, or a value deployguard wrote before (the record, an env value).
        let kept = |line: &&str| {
            !line.contains(['{', '}', '[', ']'])
                && !line.contains(": null")
                && !line.contains(INJECTED_ANNOTATION)
                && !line.trim_start().starts_with("value:")
        };
        let mut output = edited.split_inclusive('\n');
        for line in text.split_inclusive('\n').filter(kept) {
            prop_assert!(output.any(|out| out == line), "{line:?} lost from {edited}");
        }
        let mut again: Value = serde_saphyr::from_str(&edited).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&again, &value);
        prop_assert_eq!(mutate_document(&policy, &mut again).ops, 0);
    }

    #[test]
    fn patch_applies_and_a_second_review_adds_nothing(object in workload()) {
        let policy = mutate_policy();
        let ops = mutate_ops(&policy, &object);
        let mut patched = object.clone();
        json_patch::patch(&mut patched, &ops).map_err(|e| TestCaseError::fail(format!("{e}: {ops:?}")))?;
        prop_assert_eq!(mutate_ops(&policy, &patched), vec![]);
        // The CLI's `mutate` gives the same object.
        let mut mutated = object.clone();
        assert!(mutate_document(&Policy::default(), &mut mutated).errors.is_empty());
        prop_assert_eq!(&mutated, &patched);
    }

    #[test]
    fn injected_gomemlimit_is_go_syntax_just_below_ninety_percent(object in workload()) {
        let mut patched = object.clone();
        assert!(mutate_document(&Policy::default(), &mut patched).errors.is_empty());
        let limits = memory_limits(&object);
        let spec_path = ["/spec", "/spec/template/spec", "/spec/jobTemplate/spec/template/spec"]
            .into_iter().find(|p| patched.pointer(&format!("{p}/containers")).is_some()).unwrap();
        for field in ["containers", "initContainers"] {
            for c in patched.pointer(&format!("{spec_path}/{field}")).and_then(Value::as_array).cloned().unwrap_or_default() {
                let name = c["name"].as_str().unwrap();
                let injected = c["env"].as_array().into_iter().flatten()
                    .filter(|e| e["name"] == "GOMEMLIMIT").filter_map(|e| e["value"].as_str()).next_back();
                let original_sets = object.to_string().contains("GOMEMLIMIT");
                let Some(value) = injected else { continue };
                if original_sets { continue; }
                let Ok(GoMemLimit::Bytes(bytes)) = parse_go_memlimit(value) else {
                    return Err(TestCaseError::fail(format!("{value} is not Go syntax")));
                };
                let limit = limits.iter().find(|(n, _)| n == name).and_then(|(_, l)| *l).unwrap();
                let ceiling = limit * 9 / 10;
                prop_assert!(u128::from(bytes) <= ceiling && ceiling - u128::from(bytes) <= 1 << 20, "{value} for limit {limit}");
            }
        }
    }

    #[test]
    fn no_field_shape_makes_the_engine_panic(
        field in prop_oneof![Just("resources"), Just("env"), Just("livenessProbe"), Just("ports"), Just("name"), Just("readinessProbe"), Just("restartPolicy")],
        value in arbitrary_json(),
        spec_field in prop_oneof![Just("containers"), Just("initContainers"), Just("resources"), Just("restartPolicy")],
        spec_value in arbitrary_json(),
    ) {
        let mut container = json!({"name": "c", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}});
        container[field] = value;
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [container.clone(), container]}});
        let _ = judge_document(&Policy::default(), &pod);
        let _ = mutate_document(&Policy::default(), &mut pod.clone());
        let _ = mutate_ops(&mutate_policy(), &pod);
        pod["spec"][spec_field] = spec_value;
        let _ = judge_document(&Policy::default(), &pod);
        let _ = mutate_ops(&mutate_policy(), &pod);
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        Just(json!(u64::MAX)),
        "\\PC{0,12}".prop_map(Value::String),
        Just(json!("")),
        Just(json!("GOMEMLIMIT")),
        Just(json!("1e3m")),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("name".to_owned()),
                    Just("value".to_owned()),
                    Just("cpu".to_owned()),
                    Just("memory".to_owned()),
                    Just("limits".to_owned()),
                    Just("port".to_owned()),
                    Just("httpGet".to_owned()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..4,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
