//! Misspellings only the offline door can see: the API server rejects an unknown kind and
//! drops (or, with strict field validation, rejects) unknown keys before any webhook is
//! called, so a manifest with `kind: Deploymnet` or `livenesProbe:` fails or loses its
//! probe in the cluster while `check` would otherwise see nothing wrong.

use serde_json::{Map, Value};

use super::WorkloadResult;
use deployguard_engine::policy::{Finding, Mode, Policy, RuleId};
use deployguard_engine::workload::WorkloadKind;

/// Every field of a core/v1 Container: none of them is a misspelling.
const CONTAINER_FIELDS: [&str; 25] = [
    "name",
    "image",
    "command",
    "args",
    "workingDir",
    "ports",
    "envFrom",
    "env",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "restartPolicyRules",
    "volumeMounts",
    "volumeDevices",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "securityContext",
    "stdin",
    "stdinOnce",
    "tty",
];

/// A key that is probably a misspelling of a field the rules look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTypo {
    pub container: String,
    /// The path of the key as written, from the container: `resources.limit`.
    pub found: String,
    /// The same path spelt right: `resources.limits`.
    pub meant: String,
    /// The rules whose findings the misspelling explains.
    pub explains: &'static [RuleId],
}

/// The workload kind `kind` was probably meant to be, when it is none itself.
pub fn misspelt_kind(kind: &str) -> Option<&'static str> {
    if WorkloadKind::from_kind(kind).is_some() {
        return None;
    }
    WorkloadKind::ALL
        .into_iter()
        .map(WorkloadKind::as_str)
        .find(|known| close(kind, known))
}

/// Misspelt probe and resources keys in the containers of a pod spec, where the field
/// they stand for is missing.
pub fn key_typos(pod_spec: &Value) -> Vec<KeyTypo> {
    let containers = ["containers", "initContainers"]
        .into_iter()
        .filter_map(|list| pod_spec.get(list)?.as_array())
        .flatten()
        .filter_map(Value::as_object);
    let mut typos = Vec::new();
    for container in containers {
        let name = container
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut found = |found: String, meant: String, explains| {
            typos.push(KeyTypo {
                container: name.to_owned(),
                found,
                meant,
                explains,
            })
        };
        let container_targets: [(&str, &'static [RuleId]); 3] = [
            ("livenessProbe", &[RuleId::LivenessProbe]),
            ("readinessProbe", &[RuleId::ReadinessProbe]),
            ("resources", &RESOURCE_RULES),
        ];
        for (key, target, explains) in misspelt(container, &CONTAINER_FIELDS, &container_targets) {
            found(key, target.to_owned(), explains);
        }
        let Some(resources) = container.get("resources").and_then(Value::as_object) else {
            continue;
        };
        let resource_targets: [(&str, &'static [RuleId]); 2] = [
            ("limits", &[RuleId::CpuLimit, RuleId::MemoryLimit]),
            ("requests", &[RuleId::CpuRequest, RuleId::MemoryRequest]),
        ];
        let resource_fields = ["limits", "requests", "claims"];
        for (key, target, explains) in misspelt(resources, &resource_fields, &resource_targets) {
            found(
                format!("resources.{key}"),
                format!("resources.{target}"),
                explains,
            );
        }
        for (list, cpu, memory) in [
            ("limits", RuleId::CpuLimit, RuleId::MemoryLimit),
            ("requests", RuleId::CpuRequest, RuleId::MemoryRequest),
        ] {
            let Some(values) = resources.get(list).and_then(Value::as_object) else {
                continue;
            };
            let targets: [(&str, &'static [RuleId]); 2] =
                [("cpu", rule_slice(cpu)), ("memory", rule_slice(memory))];
            for (key, target, explains) in misspelt(values, &["ephemeral-storage"], &targets) {
                found(
                    format!("resources.{list}.{key}"),
                    format!("resources.{list}.{target}"),
                    explains,
                );
            }
        }
    }
    typos
}

const RESOURCE_RULES: [RuleId; 4] = [
    RuleId::CpuLimit,
    RuleId::MemoryLimit,
    RuleId::CpuRequest,
    RuleId::MemoryRequest,
];

fn rule_slice(rule: RuleId) -> &'static [RuleId] {
    match rule {
        RuleId::CpuLimit => &[RuleId::CpuLimit],
        RuleId::MemoryLimit => &[RuleId::MemoryLimit],
        RuleId::CpuRequest => &[RuleId::CpuRequest],
        _ => &[RuleId::MemoryRequest],
    }
}

/// The keys of `object` that are not `known` and are close to a target that is missing.
fn misspelt(
    object: &Map<String, Value>,
    known: &[&str],
    targets: &[(&'static str, &'static [RuleId])],
) -> Vec<(String, &'static str, &'static [RuleId])> {
    let unknown = object
        .keys()
        .filter(|key| !known.contains(&key.as_str()) && !key.contains('/'));
    let mut found = Vec::new();
    for key in unknown {
        let target = targets
            .iter()
            .find(|(target, _)| !object.contains_key(*target) && close(key, target));
        if let Some((target, explains)) = target {
            found.push((key.clone(), *target, *explains));
        }
    }
    found
}

/// Whether `written` is a likely misspelling of `meant`: the same but for case, or within
/// one edit for short words and two for longer ones (a swap of neighbours is one edit).
fn close(written: &str, meant: &str) -> bool {
    if written == meant {
        return false;
    }
    let budget = if meant.len() <= 4 { 1 } else { 2 };
    strsim::damerau_levenshtein(&written.to_lowercase(), &meant.to_lowercase()) <= budget
}

/// The finding for a document whose kind is a misspelt workload kind (not judged
/// otherwise: nothing says where its pod spec would be), unless the rule is off.
pub(super) fn misspelt_kind_result(
    policy: &Policy,
    item: Option<usize>,
    object: &Value,
    default_namespace: &str,
) -> Option<WorkloadResult> {
    let kind = object.get("kind").and_then(Value::as_str)?;
    let meant = misspelt_kind(kind)?;
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
    let namespace = text("/metadata/namespace")
        .filter(|ns| !ns.is_empty())
        .unwrap_or(default_namespace);
    let mode = policy.mode_for(RuleId::ManifestTypo, namespace);
    if mode == Mode::Off || policy.is_excluded(namespace) {
        return None;
    }
    Some(WorkloadResult {
        item,
        api_version: text("/apiVersion").unwrap_or_default().to_owned(),
        kind: kind.to_owned(),
        namespace: namespace.to_owned(),
        name: text("/metadata/name").unwrap_or_default().to_owned(),
        findings: vec![Finding {
            rule: RuleId::ManifestTypo,
            mode,
            container: String::new(),
            message: format!(
                "kind {kind:?} is not a Kubernetes kind: did you mean {meant}? — the API server \
                 refuses the document; nothing in it was judged"
            ),
        }],
        skips: Vec::new(),
        notes: Vec::new(),
        limit_range_defaults: Vec::new(),
    })
}

/// The `manifest-typo` findings of a pod spec's misspelt keys, raw (the policy settles
/// their mode with the rules' findings).
pub(super) fn key_typo_findings(pod_spec: &Value) -> (Vec<KeyTypo>, Vec<Finding>) {
    let typos = key_typos(pod_spec);
    let findings = typos
        .iter()
        .map(|typo| Finding {
            rule: RuleId::ManifestTypo,
            mode: Mode::Enforce,
            container: typo.container.clone(),
            message: format!(
                "unknown key {:?}: did you mean {:?}? — the API server drops or refuses \
                 unknown keys, so the field is missing in the cluster",
                typo.found, typo.meant
            ),
        })
        .collect();
    (typos, findings)
}

/// Names each misspelt key in the findings it explains (`no livenessProbe (found
/// "livenesProbe") — …`).
pub(super) fn explain_key_typos(typos: &[KeyTypo], findings: &mut [Finding]) {
    for typo in typos {
        for finding in findings.iter_mut() {
            if finding.container == typo.container && typo.explains.contains(&finding.rule) {
                let (wrong, fix) = finding
                    .message
                    .split_once(" — ")
                    .unwrap_or((&finding.message, ""));
                let hint = format!("{wrong} (found {:?})", typo.found);
                finding.message = if fix.is_empty() {
                    hint
                } else {
                    format!("{hint} — {fix}")
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_near_a_workload_kind() {
        assert_eq!(misspelt_kind("Deploymnet"), Some("Deployment"));
        assert_eq!(misspelt_kind("deployment"), Some("Deployment"));
        assert_eq!(misspelt_kind("Statefulset"), Some("StatefulSet"));
        assert_eq!(misspelt_kind("CronJobs"), Some("CronJob"));
        assert_eq!(misspelt_kind("Pods"), Some("Pod"));
        for real in [
            "Deployment",
            "Service",
            "Node",
            "Role",
            "ConfigMap",
            "PodTemplate",
            "Secret",
        ] {
            assert_eq!(misspelt_kind(real), None, "{real}");
        }
    }

    #[test]
    fn misspelt_keys_where_the_field_is_missing() {
        let spec = json!({"containers": [
            {"name": "a", "livenesProbe": {}, "readinessProbe": {}, "resource": {}},
            {"name": "b", "LivenessProbe": {}, "livenessProbe": {}, "resources": {"limit": {"cpu": "1"},
                "requests": {"memroy": "1Gi", "cpu": "1", "example.com/gpu": 1}}}],
            "initContainers": [{"name": "i", "resources": {"limits": {"cpus": "1", "memory": "1Gi"}}}]});
        let found: Vec<(String, String, String)> = key_typos(&spec)
            .into_iter()
            .map(|t| (t.container, t.found, t.meant))
            .collect();
        let expected = [
            ("a", "livenesProbe", "livenessProbe"),
            ("a", "resource", "resources"),
            ("b", "resources.limit", "resources.limits"),
            (
                "b",
                "resources.requests.memroy",
                "resources.requests.memory",
            ),
            ("i", "resources.limits.cpus", "resources.limits.cpu"),
        ];
        let expected: Vec<(String, String, String)> = expected
            .iter()
            .map(|(c, f, m)| (c.to_string(), f.to_string(), m.to_string()))
            .collect();
        assert_eq!(found, expected);
    }
}
