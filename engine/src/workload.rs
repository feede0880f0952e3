//! Where a workload keeps its pod spec, found by kind and structure (so old API versions
//! such as `extensions/v1beta1` work too), and the context the policy needs about it.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use crate::object::{ControllerSpec, Meta, Object, Template, TemplateMeta, is_object};
use crate::policy::{
    EXEMPT_ANNOTATION, GO_RUNTIME_ANNOTATION, GO_RUNTIME_CONTAINERS_ANNOTATION,
    GO_RUNTIME_SKIP_ANNOTATION, INJECTED_ANNOTATION, LimitRange, PodSpecView, RequestContext,
    SpecError, Subject,
};
use crate::strict::Strict;
use crate::text::Text;
use crate::text::TextMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    Pod,
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    ReplicationController,
    Job,
    CronJob,
}

impl WorkloadKind {
    /// Every kind deployguard judges, in the order the docs list them.
    pub const ALL: [WorkloadKind; 8] = [
        WorkloadKind::Pod,
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::ReplicaSet,
        WorkloadKind::ReplicationController,
        WorkloadKind::Job,
        WorkloadKind::CronJob,
    ];

    pub fn from_kind(kind: &str) -> Option<WorkloadKind> {
        Some(match kind {
            "Pod" => WorkloadKind::Pod,
            "Deployment" => WorkloadKind::Deployment,
            "StatefulSet" => WorkloadKind::StatefulSet,
            "DaemonSet" => WorkloadKind::DaemonSet,
            "ReplicaSet" => WorkloadKind::ReplicaSet,
            "ReplicationController" => WorkloadKind::ReplicationController,
            "Job" => WorkloadKind::Job,
            "CronJob" => WorkloadKind::CronJob,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Pod => "Pod",
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
            WorkloadKind::ReplicaSet => "ReplicaSet",
            WorkloadKind::ReplicationController => "ReplicationController",
            WorkloadKind::Job => "Job",
            WorkloadKind::CronJob => "CronJob",
        }
    }

    /// JSON pointer tokens from the object root to the pod template (empty for a Pod).
    pub fn template_tokens(self) -> &'static [&'static str] {
        match self {
            WorkloadKind::Pod => &[],
            WorkloadKind::CronJob => &["spec", "jobTemplate", "spec", "template"],
            _ => &["spec", "template"],
        }
    }

    /// Job and CronJob pods run to completion: probe rules do not apply.
    pub fn is_batch(self) -> bool {
        matches!(self, WorkloadKind::Job | WorkloadKind::CronJob)
    }

    /// The owner kind whose controller creates this kind from a template it already
    /// judged (`None`: any controller). Kinds no built-in controller creates return
    /// `Some(&[])`: ownership never lowers their judgement.
    fn judged_by_owner(self) -> Option<&'static [&'static str]> {
        match self {
            WorkloadKind::Pod => None,
            WorkloadKind::ReplicaSet => Some(&["Deployment"]),
            WorkloadKind::Job => Some(&["CronJob"]),
            _ => Some(&[]),
        }
    }
}

/// A workload object and where its pod spec lives in it.
#[derive(Debug, Clone)]
pub struct Workload<'a> {
    pub kind: WorkloadKind,
    /// The object's own metadata.
    pub meta: &'a Meta<'a>,
    /// Whether the object has a `metadata` object (the patch adds it whole when not).
    pub has_metadata: bool,
    /// The pod spec (`spec` of a Pod or of a template), as JSON text.
    pub pod_spec: &'a RawValue,
    /// The pod template's metadata (templates only).
    pub template: Option<TemplateMetadata<'a>>,
}

/// What the patch and the Go runtime annotations need of a template's `metadata`.
#[derive(Debug, Clone, Default)]
pub struct TemplateMetadata<'a> {
    pub present: bool,
    /// Whether `annotations` is an object (the patch adds a key) or absent (it adds one).
    pub has_annotations: bool,
    /// The string-valued annotations (others are not deployguard's).
    pub annotations: TextMap<'a>,
}

static NO_META: Meta<'static> = Meta {
    name: None,
    generate_name: None,
    namespace: None,
    labels: None,
    annotations: None,
    owner_references: None,
};

impl<'a> Workload<'a> {
    /// Finds the pod spec of an object of `kind`; `None` for kinds without one, or an
    /// object whose structure has no pod spec where the kind keeps it.
    pub fn locate(kind: &str, object: &'a Object<'a>) -> Option<Workload<'a>> {
        let kind = WorkloadKind::from_kind(kind)?;
        let spec = object.spec.filter(|raw| is_object(raw))?;
        let (pod_spec, template) = match kind {
            WorkloadKind::Pod => (spec, None),
            WorkloadKind::CronJob => {
                let job = serde_json::from_str::<Strict<ControllerSpec<'a>>>(spec.get()).ok()?;
                let job =
                    serde_json::from_str::<Strict<Template<'a>>>(job.job_template?.get()).ok()?;
                pod_template(job.spec?)?
            }
            _ => pod_template(spec)?,
        };
        Some(Workload {
            kind,
            meta: object.metadata.as_deref().unwrap_or(&NO_META),
            has_metadata: object.metadata.is_some(),
            pod_spec,
            template,
        })
    }

    /// JSON pointer tokens from the object root to the pod spec.
    pub fn pod_spec_tokens(&self) -> impl Iterator<Item = &'static str> + use<> {
        self.kind.template_tokens().iter().copied().chain(["spec"])
    }

    /// Dotted path of the pod spec, for messages: `spec.template.spec`.
    pub fn pod_spec_path(&self) -> String {
        self.pod_spec_tokens().collect::<Vec<_>>().join(".")
    }

    pub fn read_spec(&self) -> Result<PodSpecView<'a>, SpecError> {
        PodSpecView::from_json(self.pod_spec.get(), &self.pod_spec_path())
    }

    /// An annotation of the pods this workload makes: the Pod's own, or the template's.
    pub fn pod_annotation(&self, key: &str) -> Option<&str> {
        match &self.template {
            None => self.meta.annotation(key),
            Some(template) => template.annotations.get(key).map(|v| &**v),
        }
    }

    /// Whether a controller made this object from a template deployguard judged already.
    pub fn controller_owned(&self) -> bool {
        let owners = self.meta.owner_references.iter().flatten();
        let mut controllers = owners.filter(|owner| owner.controller == Some(true));
        match self.kind.judged_by_owner() {
            None => controllers.next().is_some(),
            Some(kinds) => controllers.any(|owner| kinds.contains(&&*owner.kind)),
        }
    }

    /// The object's name, or its generateName before the API server picked one.
    pub fn name(&self) -> Option<&str> {
        self.meta
            .name
            .as_deref()
            .or(self.meta.generate_name.as_deref())
    }

    /// The policy's view of this workload, requested in `context`.
    pub fn subject<'s>(
        &'s self,
        placement: Placement<'s>,
        spec: &'s PodSpecView<'s>,
        context: RequestContext<'s>,
        limit_ranges: &'s [LimitRange],
    ) -> Subject<'s> {
        Subject {
            namespace: placement.namespace,
            kind: self.kind.as_str(),
            name: placement.name,
            labels: self.meta.labels.as_ref(),
            context,
            spec,
            batch: self.kind.is_batch(),
            controller_owned: self.controller_owned(),
            exempt_annotation: self.meta.annotation(EXEMPT_ANNOTATION),
            go_runtime_annotation: self.pod_annotation(GO_RUNTIME_ANNOTATION),
            go_runtime_skip_annotation: self.pod_annotation(GO_RUNTIME_SKIP_ANNOTATION),
            go_runtime_containers_annotation: self.pod_annotation(GO_RUNTIME_CONTAINERS_ANNOTATION),
            injected_annotation: self.pod_annotation(INJECTED_ANNOTATION),
            limit_ranges,
        }
    }
}

/// Where a workload stands: its namespace and the name it is reported by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The pod spec and metadata of a template object (`{metadata, spec}`).
fn pod_template(holder: &RawValue) -> Option<(&RawValue, Option<TemplateMetadata<'_>>)> {
    let template = serde_json::from_str::<Strict<ControllerSpec<'_>>>(holder.get())
        .ok()?
        .template?;
    let Strict(template) = serde_json::from_str::<Strict<Template<'_>>>(template.get()).ok()?;
    let pod_spec = template.spec.filter(|raw| is_object(raw))?;
    Some((pod_spec, Some(template_metadata(template.metadata))))
}

fn template_metadata(metadata: Option<&RawValue>) -> TemplateMetadata<'_> {
    let Some(metadata) = metadata.filter(|raw| is_object(raw)) else {
        return TemplateMetadata::default();
    };
    let annotations = serde_json::from_str::<Strict<TemplateMeta<'_>>>(metadata.get())
        .ok()
        .and_then(|meta| meta.0.annotations)
        .filter(|raw| is_object(raw));
    let strings = annotations
        .and_then(|raw| serde_json::from_str::<BTreeMap<Text<'_>, &RawValue>>(raw.get()).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(key, value)| Some((key, serde_json::from_str::<Text<'_>>(value.get()).ok()?)))
        .collect();
    TemplateMetadata {
        present: true,
        has_annotations: annotations.is_some(),
        annotations: strings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: serde_json::Value) -> Object<'static> {
        let text: &'static str = Box::leak(value.to_string().into_boxed_str());
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn pod_spec_locations() {
        let pod = object(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}),
        );
        let found = Workload::locate("Pod", &pod).unwrap();
        assert_eq!(found.pod_spec_path(), "spec");
        let cron = object(
            json!({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"jobTemplate": {"spec": {"template": {"metadata": {"annotations": {"deployguard.io/go-runtime": "off"}},
                "spec": {"containers": []}}}}}}),
        );
        let found = Workload::locate("CronJob", &cron).unwrap();
        assert_eq!(found.pod_spec_path(), "spec.jobTemplate.spec.template.spec");
        assert_eq!(found.pod_annotation(GO_RUNTIME_ANNOTATION), Some("off"));
        for kind in [
            "Deployment",
            "StatefulSet",
            "DaemonSet",
            "ReplicaSet",
            "ReplicationController",
            "Job",
        ] {
            let obj = object(
                json!({"kind": kind, "metadata": {}, "spec": {"template": {"spec": {"containers": []}}}}),
            );
            assert_eq!(
                Workload::locate(kind, &obj).unwrap().pod_spec_path(),
                "spec.template.spec",
                "{kind}"
            );
        }
    }

    #[test]
    fn kinds_and_structures_without_pod_spec() {
        let service = object(json!({"kind": "Service", "metadata": {}, "spec": {"ports": []}}));
        assert!(Workload::locate("Service", &service).is_none());
        let volcano_job = object(json!({"kind": "Job", "metadata": {}, "spec": {"tasks": []}}));
        assert!(Workload::locate("Job", &volcano_job).is_none());
    }

    #[test]
    fn controller_ownership_by_kind() {
        let owned = |kind: &str, owner: &str| {
            let obj = object(json!({"kind": kind, "metadata": {"ownerReferences": [
                {"apiVersion": "apps/v1", "kind": owner, "name": "o", "uid": "1", "controller": true}]},
                "spec": {"containers": [], "template": {"spec": {"containers": []}}}}));
            Workload::locate(kind, &obj).unwrap().controller_owned()
        };
        assert!(owned("Pod", "ReplicaSet"));
        assert!(owned("Pod", "MyOperatorThing"));
        assert!(owned("ReplicaSet", "Deployment"));
        assert!(!owned("ReplicaSet", "Rollout"));
        assert!(owned("Job", "CronJob"));
        assert!(!owned("Deployment", "MyOperatorThing"));
        let not_controller = object(json!({"kind": "Pod", "metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "ReplicaSet", "name": "o", "uid": "1"}]}, "spec": {"containers": []}}));
        assert!(
            !Workload::locate("Pod", &not_controller)
                .unwrap()
                .controller_owned()
        );
    }
}
