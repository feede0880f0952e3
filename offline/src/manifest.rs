//! The offline door: judging and mutating manifest documents with the same engine the
//! webhook uses, as a CREATE would be judged.

use serde_json::Value;
use thiserror::Error;

use deployguard_engine::evaluate::DEFAULT_NAMESPACE;
use deployguard_engine::evaluate::{Evaluation, Scene};
use deployguard_engine::object::Object;
use deployguard_engine::policy::limitrange::NO_LIMIT_RANGES;
use deployguard_engine::policy::podspec::without_position;
use deployguard_engine::policy::{
    Finding, Judgement, LimitRange, LimitRangeDefault, LimitRanges, Policy, RequestContext, Subject,
};
use deployguard_engine::workload::{Workload, WorkloadKind};

mod typos;

/// What the cluster around the documents holds.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// LimitRanges by namespace (from the inputs).
    pub limit_ranges: &'a LimitRanges,
    /// The namespace of documents that name none (`--namespace`).
    pub default_namespace: &'a str,
    /// Who applies the documents (`--as`), and on which date (`--at`).
    pub context: RequestContext<'a>,
}

impl Scope<'static> {
    /// No LimitRanges, no user, no date; documents without a namespace go to `default`.
    pub fn standalone() -> Scope<'static> {
        Scope {
            limit_ranges: &NO_LIMIT_RANGES,
            default_namespace: DEFAULT_NAMESPACE,
            context: RequestContext::NONE,
        }
    }
}

/// The judgement of one workload found in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadResult {
    /// Position inside a `kind: List`; `None` for a top-level object.
    pub item: Option<usize>,
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub findings: Vec<Finding>,
    /// Why the workload was judged less than fully, if it was (excluded namespace,
    /// exemptions, the controller-owned cap).
    pub skips: Vec<String>,
    /// Why it was judged more than it asked for (an owner claim from no controller, an
    /// expired grant).
    pub notes: Vec<String>,
    /// Limits and requests the namespace's LimitRanges gave it.
    pub limit_range_defaults: Vec<LimitRangeDefault>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ManifestError {
    #[error("{}{message}", item_prefix(*item))]
    Unreadable {
        item: Option<usize>,
        message: String,
    },
}

fn item_prefix(item: Option<usize>) -> String {
    item.map(|k| format!("item {k}: ")).unwrap_or_default()
}

/// Judges every workload in a document (each item of a `List` on its own, so one
/// unreadable item does not hide the judgement of the others), outside any cluster.
pub fn judge_document(
    policy: &Policy,
    document: &Value,
) -> Vec<Result<WorkloadResult, ManifestError>> {
    judge_document_in(policy, Scope::standalone(), document)
}

/// [`judge_document`] with the namespaces' LimitRanges applied.
pub fn judge_document_in(
    policy: &Policy,
    scope: Scope<'_>,
    document: &Value,
) -> Vec<Result<WorkloadResult, ManifestError>> {
    objects(document)
        .filter_map(|(item, object)| {
            if let Some(misspelt) =
                typos::misspelt_kind_result(policy, item, object, scope.default_namespace)
            {
                return Some(Ok(misspelt));
            }
            with_workload(item, object, scope, |workload, evaluation| {
                let subject = evaluation.subject();
                let pod_spec = workload
                    .pod_spec_tokens()
                    .try_fold(object, |value, token| value.get(token));
                // Misspelt keys are findings like the rules' own (grants and modes apply).
                let (key_typos, typo_findings) =
                    pod_spec.map_or_else(Default::default, typos::key_typo_findings);
                let mut judgement = policy.judge_with(&subject, typo_findings);
                typos::explain_key_typos(&key_typos, &mut judgement.findings);
                WorkloadResult {
                    item,
                    api_version: object
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    kind: workload.kind.as_str().to_owned(),
                    namespace: subject.namespace.to_owned(),
                    name: subject.name.to_owned(),
                    skips: skips(policy, &subject, &judgement),
                    notes: notes(&judgement),
                    findings: judgement.findings,
                    limit_range_defaults: judgement.limit_range_defaults,
                }
            })
            .transpose()
        })
        .collect()
}

/// Every reason a workload was judged more than its object asked for.
fn notes(judgement: &Judgement) -> Vec<String> {
    let expired = judgement.expired_grants.iter().map(|grant| {
        let last = grant.expires.map(|d| d.to_string()).unwrap_or_default();
        format!(
            "grant {} of the policy ({}) expired after {last}: not applied",
            grant.index,
            grant.rule_list()
        )
    });
    let owner = judgement
        .untrusted_owner
        .iter()
        .map(|o| format!("{o}: judged in full"));
    owner.chain(expired).collect()
}

/// Every reason a workload was judged less than fully.
fn skips(policy: &Policy, subject: &Subject<'_>, judgement: &Judgement) -> Vec<String> {
    let mut skips = Vec::new();
    if judgement.excluded {
        skips.push(format!(
            "namespace {:?} is excluded: not judged",
            subject.namespace
        ));
        return skips;
    }
    if !judgement.exempted.is_empty() {
        let rules: Vec<&str> = judgement.exempted.iter().map(|r| r.as_str()).collect();
        skips.push(format!("exempted by annotation from {}", rules.join(", ")));
    }
    if let Some(refusal) = &judgement.exemption_refused {
        skips.push(format!("exemption annotation ignored: {refusal}"));
    }
    skips.extend(
        judgement
            .granted
            .iter()
            .map(|grant| format!("exempted from {grant}")),
    );
    if !judgement.unknown_exemptions.is_empty() {
        skips.push(format!(
            "exemption annotation names unknown rules: {}",
            judgement.unknown_exemptions.join(", ")
        ));
    }
    let capped = subject.controller_owned && judgement.untrusted_owner.is_none();
    if capped && policy.controller_owned_max_mode < deployguard_engine::policy::Mode::Enforce {
        skips.push(format!(
            "controller-owned: judged at most in {}",
            policy.controller_owned_max_mode
        ));
    }
    skips
}

/// What [`mutate_document`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mutation {
    /// Patch operations applied.
    pub ops: usize,
    /// The operations applied, per object: the `List` item (`None` for the document
    /// itself) and its operations, relative to that object.
    pub patches: Vec<(Option<usize>, Vec<json_patch::PatchOperation>)>,
    /// Objects left unchanged because they could not be read.
    pub errors: Vec<ManifestError>,
}

/// Applies the Go runtime injection to every pod spec in a document, templates included
/// (so GitOps users can commit the result), outside any cluster.
pub fn mutate_document(policy: &Policy, document: &mut Value) -> Mutation {
    mutate_document_in(policy, Scope::standalone(), document)
}

/// [`mutate_document`] with the limits the namespaces' LimitRanges give templates.
pub fn mutate_document_in(policy: &Policy, scope: Scope<'_>, document: &mut Value) -> Mutation {
    let mut mutation = Mutation::default();
    let mut patches = Vec::new();
    for (item, object) in objects(document) {
        match with_workload(item, object, scope, |_, evaluation| {
            evaluation.patch(policy)
        }) {
            Ok(Some(ops)) if !ops.is_empty() => patches.push((item, ops)),
            Ok(_) => {}
            Err(error) => mutation.errors.push(error),
        }
    }
    for (item, ops) in patches {
        let target = match item {
            None => Some(&mut *document),
            Some(k) => document.get_mut("items").and_then(|items| items.get_mut(k)),
        };
        let Some(target) = target else { continue };
        match json_patch::patch(target, &ops) {
            Ok(()) => {
                mutation.ops += ops.len();
                mutation.patches.push((item, ops));
            }
            Err(e) => mutation.errors.push(ManifestError::Unreadable {
                item,
                message: format!("patch did not apply: {e}"),
            }),
        }
    }
    mutation
}

/// Adds the LimitRanges of a document (a `List`'s items too) to `ranges`, each in its
/// namespace or `default_namespace`.
pub fn collect_limit_ranges(
    document: &Value,
    default_namespace: &str,
    ranges: &mut LimitRanges,
) -> Vec<ManifestError> {
    let mut errors = Vec::new();
    for (item, object) in objects(document) {
        if object.get("kind").and_then(Value::as_str) != Some("LimitRange") {
            continue;
        }
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty())
            .unwrap_or(default_namespace);
        match LimitRange::from_json(object) {
            Ok(range) => ranges.insert(namespace, range),
            Err(error) => errors.push(ManifestError::Unreadable {
                item,
                message: format!("LimitRange: {error}"),
            }),
        }
    }
    errors
}

/// Runs `f` on the object's evaluation, if the object is a workload.
fn with_workload<R>(
    item: Option<usize>,
    object: &Value,
    scope: Scope<'_>,
    f: impl FnOnce(&Workload<'_>, &Evaluation<'_>) -> R,
) -> Result<Option<R>, ManifestError> {
    let unreadable = |message: String| ManifestError::Unreadable { item, message };
    let Some(kind) = object.get("kind").and_then(Value::as_str) else {
        return Ok(None);
    };
    if WorkloadKind::from_kind(kind).is_none() {
        return Ok(None);
    }
    // The engine reads JSON text, as the webhook receives it.
    let json = object.to_string();
    let parsed: Object<'_> = serde_json::from_str(&json)
        .map_err(|e| unreadable(format!("metadata cannot be read: {}", without_position(&e))))?;
    let Some(workload) = Workload::locate(kind, &parsed) else {
        return Ok(None);
    };
    let scene = Scene {
        namespace: None,
        default_namespace: scope.default_namespace,
        name: None,
        context: scope.context,
        limit_ranges: scope.limit_ranges,
    };
    let evaluation = Evaluation::of(&workload, scene).map_err(|e| unreadable(e.to_string()))?;
    Ok(Some(f(&workload, &evaluation)))
}

/// The objects of a document: itself, or each item of a `kind: List`.
fn objects(document: &Value) -> Box<dyn Iterator<Item = (Option<usize>, &Value)> + '_> {
    let is_list = document.get("kind").and_then(Value::as_str) == Some("List");
    match document
        .get("items")
        .and_then(Value::as_array)
        .filter(|_| is_list)
    {
        Some(items) => Box::new(items.iter().enumerate().map(|(k, item)| (Some(k), item))),
        None => Box::new(std::iter::once((None, document))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deployguard_engine::policy::RuleId;
    use serde_json::json;

    #[test]
    fn lists_are_walked_item_by_item() {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "shop"},
             "spec": {"template": {"spec": {"containers": [{"name": "app"}]}}}},
        ]});
        let results: Vec<WorkloadResult> = judge_document(&Policy::default(), &list)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].item, Some(1));
        assert_eq!(
            (results[0].namespace.as_str(), results[0].name.as_str()),
            ("shop", "d")
        );
        assert!(
            results[0]
                .findings
                .iter()
                .any(|f| f.rule == RuleId::LivenessProbe)
        );
    }

    #[test]
    fn a_grant_for_manifest_typo_covers_misspelt_keys() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "shop"},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "livenesProbe": {},
                "resources": {"limits": {"cpu": 1, "memory": "1Gi"}}}]}}}});
        let rules_of = |policy: &Policy| -> Vec<RuleId> {
            let result = judge_document(policy, &deployment).pop().unwrap().unwrap();
            result.findings.iter().map(|f| f.rule).collect()
        };
        let typo_and_probe = rules_of(&Policy::default());
        assert!(
            typo_and_probe.contains(&RuleId::ManifestTypo),
            "{typo_and_probe:?}"
        );
        let granted = deployguard_engine::config::parse_policy(
            "exemptions:\n  grants:\n  - namespace: shop\n    rules: [manifest-typo]\n    reason: renamed next sprint\n",
            "test",
        )
        .unwrap();
        let rules = rules_of(&granted);
        assert!(!rules.contains(&RuleId::ManifestTypo), "{rules:?}");
        // The misspelling still explains the finding it causes.
        let result = judge_document(&granted, &deployment)
            .pop()
            .unwrap()
            .unwrap();
        let liveness = result
            .findings
            .iter()
            .find(|f| f.rule == RuleId::LivenessProbe)
            .unwrap();
        assert!(
            liveness.message.contains("(found \"livenesProbe\")"),
            "{}",
            liveness.message
        );
    }

    #[test]
    fn no_namespace_means_default_and_workloads_without_findings_still_count() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "resources": {"limits": {"cpu": 1, "memory": "1Gi"}}}]}});
        let results = judge_document(&Policy::default(), &pod)
            .pop()
            .unwrap()
            .unwrap();
        assert_eq!(results.namespace, "default");
        assert_eq!(results.findings, []);
    }

    #[test]
    fn mutation_reaches_templates_inside_lists_and_is_idempotent() {
        let mut list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec":
                {"template": {"spec": {"containers": [{"name": "app", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}}}}},
        ]});
        let mutation = mutate_document(&Policy::default(), &mut list);
        assert_eq!((mutation.ops, mutation.errors), (2, vec![]));
        let items: Vec<_> = mutation
            .patches
            .iter()
            .map(|(item, ops)| (*item, ops.len()))
            .collect();
        assert_eq!(
            items,
            [(Some(0), 2)],
            "operations are kept relative to their item"
        );
        let env = &list["items"][0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
            [0]["env"];
        assert_eq!(
            env,
            &json!([{"name": "GOMAXPROCS", "value": "2"}, {"name": "GOMEMLIMIT", "value": "921MiB"}])
        );
        let once = list.clone();
        assert_eq!(mutate_document(&Policy::default(), &mut list).ops, 0);
        assert_eq!(list, once);
    }

    #[test]
    fn unreadable_fields_are_named() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "12Mb"}}}]}});
        let error = judge_document(&Policy::default(), &pod)
            .pop()
            .unwrap()
            .unwrap_err()
            .to_string();
        let expected =
            "spec.containers[0].resources.limits.memory: \"12Mb\" is not a Kubernetes quantity";
        assert!(error.contains(expected), "{error}");
        let labels = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"v": 1}}, "spec": {"containers": []}});
        let labels_error = judge_document(&Policy::default(), &labels)
            .pop()
            .unwrap()
            .unwrap_err();
        assert!(labels_error.to_string().contains("metadata"));
    }

    #[test]
    fn one_unreadable_list_item_does_not_hide_the_others() {
        let bad = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1,5"}}}]}});
        let good = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "good"},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        let mut list = json!({"apiVersion": "v1", "kind": "List", "items": [bad, good]});
        let judged = judge_document(&Policy::default(), &list);
        assert!(matches!(
            &judged[0],
            Err(ManifestError::Unreadable { item: Some(0), .. })
        ));
        assert_eq!(judged[1].as_ref().unwrap().name, "good");
        let mutation = mutate_document(&Policy::default(), &mut list);
        assert_eq!((mutation.ops, mutation.errors.len()), (2, 1));
        assert!(list["items"][1]["spec"]["containers"][0]["env"].is_array());
    }
}
