//! Where a workload keeps its pod spec, found by kind and structure (so old API versions
//! such as `extensions/v1beta1` work too), and the context the policy needs about it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::DynamicObject;
use serde_json::Value;

use crate::policy::{
    EXEMPT_ANNOTATION, GO_RUNTIME_ANNOTATION, GO_RUNTIME_CONTAINERS_ANNOTATION,
    GO_RUNTIME_SKIP_ANNOTATION, INJECTED_ANNOTATION, PodSpecView, RequestContext, SpecError,
    Subject,
};

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
#[derive(Debug, Clone, Copy)]
pub struct Workload<'a> {
    pub kind: WorkloadKind,
    pub object: &'a DynamicObject,
    /// The pod spec (`spec` of a Pod or of a template).
    pub pod_spec: &'a Value,
    /// The template's `metadata` (templates only; a Pod's is `object.metadata`).
    pub template_metadata: Option<&'a Value>,
}

impl<'a> Workload<'a> {
    /// Finds the pod spec of an object of `kind`; `None` for kinds without one, or an
    /// object whose structure has no pod spec where the kind keeps it.
    pub fn locate(kind: &str, object: &'a DynamicObject) -> Option<Workload<'a>> {
        let kind = WorkloadKind::from_kind(kind)?;
        let mut template = &object.data;
        for token in kind.template_tokens() {
            template = template.get(token)?;
        }
        let pod_spec = template.get("spec").filter(|spec| spec.is_object())?;
        let template_metadata = (kind != WorkloadKind::Pod)
            .then(|| template.get("metadata"))
            .flatten();
        Some(Workload {
            kind,
            object,
            pod_spec,
            template_metadata,
        })
    }

    pub fn meta(&self) -> &'a ObjectMeta {
        &self.object.metadata
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
        PodSpecView::read(self.pod_spec, &self.pod_spec_path())
    }

    /// An annotation of the pods this workload makes: the Pod's own, or the template's.
    pub fn pod_annotation(&self, key: &str) -> Option<&'a str> {
        match self.template_metadata {
            None if self.kind == WorkloadKind::Pod => object_annotation(self.meta(), key),
            None => None,
            Some(metadata) => metadata.get("annotations")?.get(key)?.as_str(),
        }
    }

    /// Whether a controller made this object from a template deployguard judged already.
    pub fn controller_owned(&self) -> bool {
        let owners = self.meta().owner_references.iter().flatten();
        let mut controllers = owners.filter(|owner| owner.controller == Some(true));
        match self.kind.judged_by_owner() {
            None => controllers.next().is_some(),
            Some(kinds) => controllers.any(|owner| kinds.contains(&owner.kind.as_str())),
        }
    }

    /// The object's name, or its generateName before the API server picked one.
    pub fn name(&self) -> &'a str {
        let meta = self.meta();
        meta.name
            .as_deref()
            .or(meta.generate_name.as_deref())
            .unwrap_or_default()
    }

    /// The policy's view of this workload, requested in `context`.
    pub fn subject<'s>(
        &self,
        namespace: &'s str,
        spec: &'s PodSpecView<'s>,
        context: RequestContext<'s>,
    ) -> Subject<'s>
    where
        'a: 's,
    {
        Subject {
            namespace,
            kind: self.kind.as_str(),
            name: self.name(),
            labels: self.meta().labels.as_ref(),
            context,
            spec,
            batch: self.kind.is_batch(),
            controller_owned: self.controller_owned(),
            exempt_annotation: object_annotation(self.meta(), EXEMPT_ANNOTATION),
            go_runtime_annotation: self.pod_annotation(GO_RUNTIME_ANNOTATION),
            go_runtime_skip_annotation: self.pod_annotation(GO_RUNTIME_SKIP_ANNOTATION),
            go_runtime_containers_annotation: self.pod_annotation(GO_RUNTIME_CONTAINERS_ANNOTATION),
            injected_annotation: self.pod_annotation(INJECTED_ANNOTATION),
            limit_ranges: &[],
        }
    }
}

fn object_annotation<'m>(meta: &'m ObjectMeta, key: &str) -> Option<&'m str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> DynamicObject {
        serde_json::from_value(value).unwrap()
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
