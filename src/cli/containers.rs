//! The containers of a judged object, each with its role and its line, so the reports can
//! say `init container "x"` and point at the container. Roles come from the engine's own
//! pod spec view, so "sidecar" means here what it means to the rules. Kubernetes requires
//! container names to be unique across a pod's lists, so a finding's container name finds
//! its entry.

use serde_json::Value;

use super::locate::{Lines, Step};
use crate::policy::{ContainerRole, PodSpecView};
use crate::workload::WorkloadKind;

/// A container found in an object's pod spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    pub role: ContainerRole,
    /// 1-based line of the file where its entry starts.
    pub line: usize,
}

/// How text output names a container of this role: `init container "x"`.
pub fn noun(role: ContainerRole) -> &'static str {
    match role {
        ContainerRole::Main => "container",
        ContainerRole::Init => "init container",
        ContainerRole::Sidecar => "sidecar container",
    }
}

/// The containers of `object` (a document's root, or the List item found at `at`).
/// Objects whose pod spec cannot be read have none: the engine reports those as errors.
pub fn containers_of(object: &Value, at: &[Step<'_>], lines: &Lines) -> Vec<Container> {
    let Some(kind) = object
        .get("kind")
        .and_then(Value::as_str)
        .and_then(WorkloadKind::from_kind)
    else {
        return Vec::new();
    };
    let tokens: Vec<&str> = kind
        .template_tokens()
        .iter()
        .copied()
        .chain(["spec"])
        .collect();
    let Some(spec) = tokens
        .iter()
        .try_fold(object, |value, token| value.get(token))
    else {
        return Vec::new();
    };
    let json = spec.to_string();
    let Ok(view) = PodSpecView::from_json(&json, &tokens.join(".")) else {
        return Vec::new();
    };
    let mut path: Vec<Step<'_>> = at.to_vec();
    path.extend(tokens.iter().map(|token| Step::Key(token)));
    view.containers
        .iter()
        .map(|container| {
            let mut entry = path.clone();
            entry.extend([
                Step::Key(container.role.field()),
                Step::Index(container.index),
            ]);
            Container {
                name: container.name.to_string(),
                role: container.role,
                line: lines.line_of(&entry),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::parse_documents;

    #[test]
    fn roles_and_lines_of_a_cronjobs_containers() {
        let text = "apiVersion: batch/v1\nkind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          initContainers:\n          - name: setup\n          - name: proxy\n            restartPolicy: Always\n          containers:\n          - name: job\n";
        let docs = parse_documents(text, false);
        let doc = docs[0].as_ref().unwrap();
        let found = containers_of(doc.value.as_ref().unwrap(), &[], &Lines::of(doc));
        let mut summary: Vec<(&str, ContainerRole, usize)> = found
            .iter()
            .map(|c| (c.name.as_str(), c.role, c.line))
            .collect();
        summary.sort_by_key(|c| c.2);
        assert_eq!(
            summary,
            [
                ("setup", ContainerRole::Init, 9),
                ("proxy", ContainerRole::Sidecar, 10),
                ("job", ContainerRole::Main, 13)
            ]
        );
    }

    #[test]
    fn objects_without_readable_pod_specs_have_no_containers() {
        let text = "kind: Service\nspec: {}\n---\nkind: Job\nspec: {}\n---\nkind: Pod\nspec: {containers: 3}\n";
        for doc in parse_documents(text, false).iter().flatten() {
            let value = doc.value.as_ref().unwrap();
            assert_eq!(containers_of(value, &[], &Lines::of(doc)), []);
        }
    }
}
