//! The resources an audit lists: every kind with a pod spec, and LimitRanges.

use kube::api::{ApiResource, GroupVersionKind};

/// One listable resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
) -> Kind {
    Kind {
        group,
        version,
        kind,
        plural,
    }
}

pub const LIMIT_RANGES: Kind = kind("", "v1", "LimitRange", "limitranges");

/// Owners before the objects they own, so that a report lists a Deployment before its
/// ReplicaSets would be (they are represented by it, not listed).
pub const WORKLOADS: [Kind; 8] = [
    kind("apps", "v1", "Deployment", "deployments"),
    kind("apps", "v1", "StatefulSet", "statefulsets"),
    kind("apps", "v1", "DaemonSet", "daemonsets"),
    kind("apps", "v1", "ReplicaSet", "replicasets"),
    kind("", "v1", "ReplicationController", "replicationcontrollers"),
    kind("batch", "v1", "CronJob", "cronjobs"),
    kind("batch", "v1", "Job", "jobs"),
    kind("", "v1", "Pod", "pods"),
];

impl Kind {
    pub fn api_version(self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn resource(self) -> ApiResource {
        let gvk = GroupVersionKind::gvk(self.group, self.version, self.kind);
        ApiResource::from_gvk_with_plural(&gvk, self.plural)
    }
}

/// Listed only when the cluster-wide list of a resource is forbidden, to try each
/// namespace in turn.
pub const NAMESPACES: Kind = kind("", "v1", "Namespace", "namespaces");
