//! AdmissionReview in, AdmissionReview out: the one evaluation path behind `/validate`,
//! `/mutate` and `deployguard review`.

mod request;
mod response;

use serde_json::Value;
use thiserror::Error;

use crate::evaluate::{DEFAULT_NAMESPACE, Evaluation, Scene};
use crate::policy::limitrange::NO_LIMIT_RANGES;
use crate::policy::{
    Finding, GrantUse, LimitRanges, Policy, RequestContext, RuleId, UntrustedOwner,
};
use crate::workload::{Workload, WorkloadKind};
pub use request::{API_VERSION_V1, API_VERSION_V1BETA1, Operation, Request};
use response::{ResponseOut, settle_validation, truncate};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Judges; never patches.
    Validate,
    /// Always allows; carries the Go runtime patch.
    Mutate,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Validate => "validate",
            Endpoint::Mutate => "mutate",
        }
    }
}

/// Why there is no AdmissionReview to answer (the server answers 400).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReviewError {
    #[error("request body is not valid JSON: {0}")]
    NotJson(String),
    #[error("request body is not an AdmissionReview: {0}")]
    Shape(String),
    #[error(
        "unsupported AdmissionReview apiVersion {0:?}: expected admission.k8s.io/v1 or admission.k8s.io/v1beta1"
    )]
    ApiVersion(String),
    #[error("unexpected kind {0:?}: expected AdmissionReview")]
    Kind(String),
    #[error("AdmissionReview has no request")]
    MissingRequest,
}

/// What happened, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewSummary {
    pub uid: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub operation: &'static str,
    pub decision: Decision,
    /// Findings reported (every mode but off).
    pub findings: Vec<Finding>,
    pub patch_ops: usize,
    /// Rules the object's `deployguard.io/exempt` annotation switched off (to log and count).
    pub exempted: Vec<RuleId>,
    /// Grants of the policy that exempted the object (to log and count).
    pub granted: Vec<GrantUse>,
    /// A controller owner the requester is not trusted to claim (judged in full).
    pub untrusted_owner: Option<UntrustedOwner>,
    /// Why the object was let through unjudged, if it was.
    pub skipped: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Denied,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Denied => "denied",
        }
    }
}

/// The serialised response and its summary.
#[derive(Debug, Clone)]
pub struct ReviewOutcome {
    pub body: Vec<u8>,
    pub summary: ReviewSummary,
}

/// What the cluster and the clock say about a review, beside the request itself.
#[derive(Debug, Clone, Copy)]
pub struct Cluster<'a> {
    /// The LimitRanges by namespace: their defaults and bounds apply to templates.
    pub limit_ranges: &'a LimitRanges,
    /// Today's date (UTC): grants expire by it.
    pub today: jiff::civil::Date,
}

impl Cluster<'static> {
    /// A cluster without LimitRanges (as `deployguard review` sees it), on `today`.
    pub fn bare(today: jiff::civil::Date) -> Cluster<'static> {
        Cluster {
            limit_ranges: &NO_LIMIT_RANGES,
            today,
        }
    }
}

/// Parses an AdmissionReview and answers it for `endpoint`.
pub fn review(
    policy: &Policy,
    cluster: Cluster<'_>,
    endpoint: Endpoint,
    body: &[u8],
) -> Result<ReviewOutcome, ReviewError> {
    let parsed = request::parse(body)?;
    let (response, summary) = answer(policy, cluster, endpoint, &parsed.request);
    Ok(ReviewOutcome {
        body: response.into_review(parsed.api_version),
        summary,
    })
}

fn answer(
    policy: &Policy,
    cluster: Cluster<'_>,
    endpoint: Endpoint,
    request: &Request<'_>,
) -> (ResponseOut, ReviewSummary) {
    let scene = Scene {
        namespace: request.namespace.as_deref(),
        default_namespace: DEFAULT_NAMESPACE,
        name: request.name.as_deref(),
        context: RequestContext {
            requester: request.user_info.username.as_deref(),
            today: Some(cluster.today),
        },
        limit_ranges: cluster.limit_ranges,
    };
    let placement = scene.place(request.object.as_ref().and_then(|o| o.metadata.as_deref()));
    let mut response = ResponseOut::allowing(&request.uid);
    let mut summary = ReviewSummary {
        uid: request.uid.to_string(),
        kind: request.kind.kind.to_string(),
        namespace: placement.namespace.to_owned(),
        name: placement.name.to_owned(),
        operation: request.operation.as_str(),
        decision: Decision::Allowed,
        findings: Vec::new(),
        patch_ops: 0,
        exempted: Vec::new(),
        granted: Vec::new(),
        untrusted_owner: None,
        skipped: None,
    };
    if is_resize(request) {
        if endpoint == Endpoint::Validate {
            judge_resize(policy, scene, request, &mut response, &mut summary);
        } else {
            summary.skipped = Some("subresource");
        }
        return (response, summary);
    }
    let workload = match locate(request) {
        Ok(workload) => workload,
        Err(reason) => {
            summary.skipped = Some(reason);
            return (response, summary);
        }
    };
    let evaluation = match Evaluation::of(&workload, scene) {
        Ok(evaluation) => evaluation,
        Err(error) => {
            // The API server never sends such an object; say what is wrong rather than guess.
            let message = format!(
                "deployguard cannot read {}: {error}",
                workload.kind.as_str()
            );
            match endpoint {
                Endpoint::Validate => {
                    response.deny(400, "BadRequest", message);
                    summary.decision = Decision::Denied;
                }
                Endpoint::Mutate => response.warnings.push(truncate(&message)),
            }
            summary.skipped = Some("unreadable pod spec");
            return (response, summary);
        }
    };
    match endpoint {
        Endpoint::Validate => {
            if request.operation == Operation::Update && pod_spec_unchanged(request, &workload) {
                summary.skipped = Some("pod spec unchanged");
                return (response, summary);
            }
            let judgement = evaluation.judge(policy);
            settle_validation(&mut response, &mut summary, judgement, workload.kind);
        }
        Endpoint::Mutate => {
            let mutable = request.operation == Operation::Create
                || (request.operation == Operation::Update && workload.kind != WorkloadKind::Pod);
            if workload.kind != WorkloadKind::Pod && !policy.go_runtime.mutate_templates {
                summary.skipped = Some("template mutation disabled");
            } else if !mutable {
                summary.skipped = Some("pods are mutated on CREATE only");
            } else {
                let ops = evaluation.patch(policy);
                response.set_patch(&ops);
                summary.patch_ops = ops.len();
            }
        }
    }
    (response, summary)
}

/// An in-place resize: `UPDATE` of `pods/resize`, carrying the whole Pod before and after.
fn is_resize(request: &Request<'_>) -> bool {
    request.operation == Operation::Update
        && *request.kind.kind == *WorkloadKind::Pod.as_str()
        && request.sub_resource.as_deref() == Some("resize")
}

/// Judges a resize for Go env only: the env of a running pod cannot follow its limits.
fn judge_resize(
    policy: &Policy,
    scene: Scene<'_>,
    request: &Request<'_>,
    response: &mut ResponseOut,
    summary: &mut ReviewSummary,
) {
    let pods = request
        .object
        .as_ref()
        .zip(request.old_object.as_ref())
        .and_then(|(new, old)| Workload::locate("Pod", new).zip(Workload::locate("Pod", old)));
    let Some((new, old)) = pods else {
        summary.skipped = Some("resize without both pods");
        return;
    };
    let (new, old) = match (Evaluation::of(&new, scene), Evaluation::of(&old, scene)) {
        (Ok(new), Ok(old)) => (new, old),
        // The API server validated both; an unreadable one is not ours to block.
        _ => {
            summary.skipped = Some("unreadable pod spec");
            return;
        }
    };
    let judgement = new.judge_resize(policy, &old);
    settle_validation(response, summary, judgement, WorkloadKind::Pod);
}

fn locate<'r>(request: &'r Request<'r>) -> Result<Workload<'r>, &'static str> {
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return Err("operation not judged");
    }
    if request
        .sub_resource
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err("subresource");
    }
    let object = request.object.as_ref().ok_or("no object")?;
    Workload::locate(&request.kind.kind, object).ok_or("not a workload")
}

/// An UPDATE that leaves the pod spec as it was is never blocked: scaling or relabelling
/// a legacy workload must keep working.
fn pod_spec_unchanged(request: &Request<'_>, workload: &Workload<'_>) -> bool {
    let Some(old) = request
        .old_object
        .as_ref()
        .and_then(|old| Workload::locate(&request.kind.kind, old))
    else {
        return false;
    };
    let (old, new) = (old.pod_spec.get(), workload.pod_spec.get());
    // The API server writes both with one encoder: equal text is the common case; else
    // compare as JSON, where key order and spacing do not count.
    old == new
        || serde_json::from_str::<Value>(old)
            .ok()
            .zip(serde_json::from_str::<Value>(new).ok())
            .is_some_and(|(old, new)| old == new)
}

#[cfg(test)]
mod tests;
