//! The one evaluation seam: both doors (the webhook and the manifest CLI) hand a located
//! [`Workload`] and the [`Scene`] around it to [`Evaluation::of`], which reads its pod
//! spec and places it by one rule; the engine then judges it or patches it from the one
//! [`Subject`] built here.

use json_patch::PatchOperation;

use crate::object::Meta;
use crate::patch::go_env_patch;
use crate::policy::{
    Judgement, LimitRanges, PodSpecView, Policy, RequestContext, SpecError, Subject,
};
use crate::workload::{Placement, Workload};

/// Where a document without a namespace lands when no request names one, as `kubectl
/// apply` would place it.
pub const DEFAULT_NAMESPACE: &str = "default";

/// What a door knows about a workload besides the object itself.
#[derive(Debug, Clone, Copy)]
pub struct Scene<'a> {
    /// The request's namespace: it wins over the object's (the API server's word).
    pub namespace: Option<&'a str>,
    /// The namespace of an object that names none and comes without a request's.
    pub default_namespace: &'a str,
    /// The request's name, for an object with neither name nor generateName.
    pub name: Option<&'a str>,
    /// Who asks, and on which date.
    pub context: RequestContext<'a>,
    /// LimitRanges by namespace: their defaults and bounds apply to the pod spec.
    pub limit_ranges: &'a LimitRanges,
}

impl<'a> Scene<'a> {
    /// The one rule for where an object stands: the request's namespace, else the
    /// object's, else the door's default; the object's name, else its generateName,
    /// else the request's name.
    pub fn place(&self, meta: Option<&'a Meta<'a>>) -> Placement<'a> {
        let namespace = self
            .namespace
            .filter(|ns| !ns.is_empty())
            .or_else(|| meta.and_then(Meta::namespace))
            .unwrap_or(self.default_namespace);
        let name = meta
            .and_then(|meta| meta.name.as_deref().or(meta.generate_name.as_deref()))
            .or(self.name)
            .unwrap_or_default();
        Placement { namespace, name }
    }
}

/// One workload read and placed, ready for the engine: the whole decision about it is
/// [`Evaluation::judge`] (validation, `check`) or [`Evaluation::patch`] (mutation).
#[derive(Debug)]
pub struct Evaluation<'a> {
    workload: &'a Workload<'a>,
    spec: PodSpecView<'a>,
    scene: Scene<'a>,
    pub placement: Placement<'a>,
}

impl<'a> Evaluation<'a> {
    /// Reads the workload's pod spec (the only step that can fail) and places it.
    pub fn of(workload: &'a Workload<'a>, scene: Scene<'a>) -> Result<Evaluation<'a>, SpecError> {
        Ok(Evaluation {
            workload,
            spec: workload.read_spec()?,
            placement: scene.place(Some(workload.meta)),
            scene,
        })
    }

    /// The policy's view of the workload.
    pub fn subject(&self) -> Subject<'_> {
        let limit_ranges = self.scene.limit_ranges.namespace(self.placement.namespace);
        self.workload
            .subject(self.placement, &self.spec, self.scene.context, limit_ranges)
    }

    /// Findings, exemptions and the rest of a judgement.
    pub fn judge(&self, policy: &Policy) -> Judgement {
        policy.judge(&self.subject())
    }

    /// The Go runtime patch (RFC 6902, relative to the object root).
    pub fn patch(&self, policy: &Policy) -> Vec<PatchOperation> {
        go_env_patch(self.workload, &policy.go_env_plan(&self.subject()))
    }

    /// The judgement of an in-place resize from `old`: the Go env of a running pod
    /// cannot follow its new limits.
    pub fn judge_resize(&self, policy: &Policy, old: &Evaluation<'_>) -> Judgement {
        // A running pod's limits are set: LimitRanges default nothing on a resize.
        let old = old
            .workload
            .subject(self.placement, &old.spec, self.scene.context, &[]);
        let new = self
            .workload
            .subject(self.placement, &self.spec, self.scene.context, &[]);
        policy.judge_resize(&old, &new)
    }
}
