//! AdmissionReview in, AdmissionReview out: the one evaluation path behind `/validate`,
//! `/mutate` and `deployguard review`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use json_patch::PatchOperation;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview, Operation};
use serde::Serialize;
use thiserror::Error;

use crate::patch::go_env_patch;
use crate::policy::{
    Finding, GrantUse, Judgement, LimitRanges, Mode, Policy, RequestContext, RuleId, Subject,
    UntrustedOwner,
};
use crate::workload::{Workload, WorkloadKind};

pub const API_VERSION_V1: &str = "admission.k8s.io/v1";
pub const API_VERSION_V1BETA1: &str = "admission.k8s.io/v1beta1";

/// Kubernetes truncates each warning past 256 characters and drops warnings past 4096 in total.
const MAX_WARNING_CHARS: usize = 256;
const MAX_WARNINGS_TOTAL: usize = 4096;

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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'a str,
    kind: &'static str,
    response: ResponseOut,
}

/// kube's `AdmissionResponse` writes `patch` as an array of numbers; the API documents
/// a base64 string, so the response is built here.
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct ResponseOut {
    uid: String,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    audit_annotations: std::collections::BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct StatusOut {
    status: &'static str,
    code: u16,
    reason: &'static str,
    message: String,
}

/// What the cluster and the clock say about a review, beside the request itself.
#[derive(Debug, Clone, Copy)]
pub struct Cluster<'a> {
    /// The LimitRanges by namespace: their defaults and bounds apply to templates.
    pub limit_ranges: &'a LimitRanges,
    /// Today's date (UTC): grants expire by it.
    pub today: jiff::civil::Date,
}

static NO_LIMIT_RANGES: LimitRanges = LimitRanges::new();

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
    let parsed: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(|error| match error.classify() {
            serde_json::error::Category::Data => ReviewError::Shape(error.to_string()),
            _ => ReviewError::NotJson(error.to_string()),
        })?;
    let api_version = match parsed.types.api_version.as_str() {
        API_VERSION_V1 => API_VERSION_V1,
        API_VERSION_V1BETA1 => API_VERSION_V1BETA1,
        other => return Err(ReviewError::ApiVersion(other.to_owned())),
    };
    if parsed.types.kind != "AdmissionReview" {
        return Err(ReviewError::Kind(parsed.types.kind));
    }
    let request = parsed.request.ok_or(ReviewError::MissingRequest)?;
    let (response, summary) = answer(policy, cluster, endpoint, &request);
    let out = ReviewOut {
        api_version,
        kind: "AdmissionReview",
        response,
    };
    // Serialising plain strings, numbers and maps cannot fail.
    let body = serde_json::to_vec(&out).unwrap_or_default();
    Ok(ReviewOutcome { body, summary })
}

fn operation_name(operation: &Operation) -> &'static str {
    match operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

fn answer(
    policy: &Policy,
    cluster: Cluster<'_>,
    endpoint: Endpoint,
    request: &AdmissionRequest<DynamicObject>,
) -> (ResponseOut, ReviewSummary) {
    let context = RequestContext {
        requester: request.user_info.username.as_deref(),
        today: Some(cluster.today),
    };
    let namespace = request
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .or_else(|| {
            request
                .object
                .as_ref()
                .and_then(|o| o.metadata.namespace.clone())
        })
        .unwrap_or_else(|| "default".to_owned());
    let name = request
        .object
        .as_ref()
        .and_then(|o| {
            o.metadata
                .name
                .clone()
                .or_else(|| o.metadata.generate_name.clone())
        })
        .unwrap_or_else(|| request.name.clone());
    let mut response = ResponseOut {
        uid: request.uid.clone(),
        allowed: true,
        ..ResponseOut::default()
    };
    let mut summary = ReviewSummary {
        uid: request.uid.clone(),
        kind: request.kind.kind.clone(),
        namespace,
        name,
        operation: operation_name(&request.operation),
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
            judge_resize(policy, context, request, &mut response, &mut summary);
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
    let spec = match workload.read_spec() {
        Ok(spec) => spec,
        Err(error) => {
            // The API server never sends such an object; say what is wrong rather than guess.
            let message = format!(
                "deployguard cannot read {}: {error}",
                workload.kind.as_str()
            );
            match endpoint {
                Endpoint::Validate => {
                    response.allowed = false;
                    response.status = Some(StatusOut {
                        status: "Failure",
                        code: 400,
                        reason: "BadRequest",
                        message,
                    });
                    summary.decision = Decision::Denied;
                }
                Endpoint::Mutate => response.warnings.push(truncate(&message)),
            }
            summary.skipped = Some("unreadable pod spec");
            return (response, summary);
        }
    };
    let subject = Subject {
        name: &summary.name,
        limit_ranges: cluster.limit_ranges.namespace(&summary.namespace),
        ..workload.subject(&summary.namespace, &spec, context)
    };
    match endpoint {
        Endpoint::Validate => {
            if request.operation == Operation::Update && pod_spec_unchanged(request, &workload) {
                summary.skipped = Some("pod spec unchanged");
                return (response, summary);
            }
            let judgement = policy.judge(&subject);
            settle_validation(&mut response, &mut summary, judgement, &workload);
        }
        Endpoint::Mutate => {
            let mutable = request.operation == Operation::Create
                || (request.operation == Operation::Update && workload.kind != WorkloadKind::Pod);
            if workload.kind != WorkloadKind::Pod && !policy.go_runtime.mutate_templates {
                summary.skipped = Some("template mutation disabled");
            } else if !mutable {
                summary.skipped = Some("pods are mutated on CREATE only");
            } else {
                let ops = go_env_patch(&workload, &policy.go_env_plan(&subject));
                set_patch(&mut response, &ops);
                summary.patch_ops = ops.len();
            }
        }
    }
    (response, summary)
}

/// An in-place resize: `UPDATE` of `pods/resize`, carrying the whole Pod before and after.
fn is_resize(request: &AdmissionRequest<DynamicObject>) -> bool {
    request.operation == Operation::Update
        && request.kind.kind == WorkloadKind::Pod.as_str()
        && request.sub_resource.as_deref() == Some("resize")
}

/// Judges a resize for Go env only: the env of a running pod cannot follow its limits.
fn judge_resize(
    policy: &Policy,
    context: RequestContext<'_>,
    request: &AdmissionRequest<DynamicObject>,
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
    let (new_spec, old_spec) = match (new.read_spec(), old.read_spec()) {
        (Ok(new_spec), Ok(old_spec)) => (new_spec, old_spec),
        // The API server validated both; an unreadable one is not ours to block.
        _ => {
            summary.skipped = Some("unreadable pod spec");
            return;
        }
    };
    let judgement = policy.judge_resize(
        &old.subject(&summary.namespace, &old_spec, context),
        &new.subject(&summary.namespace, &new_spec, context),
    );
    settle_validation(response, summary, judgement, &new);
}

/// Turns a judgement into the validating answer and its summary.
fn settle_validation(
    response: &mut ResponseOut,
    summary: &mut ReviewSummary,
    judgement: Judgement,
    workload: &Workload<'_>,
) {
    if judgement.excluded {
        summary.skipped = Some("namespace excluded");
    }
    fill_validation(response, &judgement, workload, summary);
    if !response.allowed {
        summary.decision = Decision::Denied;
    }
    summary.exempted = judgement.exempted;
    summary.granted = judgement.granted;
    summary.untrusted_owner = judgement.untrusted_owner;
    summary.findings = judgement.findings;
}

fn locate(request: &AdmissionRequest<DynamicObject>) -> Result<Workload<'_>, &'static str> {
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
fn pod_spec_unchanged(request: &AdmissionRequest<DynamicObject>, workload: &Workload<'_>) -> bool {
    request
        .old_object
        .as_ref()
        .and_then(|old| Workload::locate(&request.kind.kind, old))
        .is_some_and(|old| old.pod_spec == workload.pod_spec)
}

fn fill_validation(
    response: &mut ResponseOut,
    judgement: &Judgement,
    workload: &Workload<'_>,
    summary: &ReviewSummary,
) {
    let enforced: Vec<String> = judgement
        .with_mode(Mode::Enforce)
        .map(Finding::describe)
        .collect();
    if !enforced.is_empty() {
        response.allowed = false;
        let why_in_full = judgement
            .untrusted_owner
            .as_ref()
            .map(|owner| format!(" ({owner})"))
            .unwrap_or_default();
        let message = format!(
            "deployguard denied {} {}/{}: {}{why_in_full}",
            workload.kind.as_str(),
            summary.namespace,
            summary.name,
            enforced.join("; ")
        );
        response.status = Some(StatusOut {
            status: "Failure",
            code: 403,
            reason: "Forbidden",
            message,
        });
    }
    let mut warnings: Vec<String> = judgement
        .with_mode(Mode::Warn)
        .map(|f| format!("deployguard: {}", f.describe()))
        .collect();
    // A denial says it in its message; an allowed object with findings says it here.
    if let Some(owner) = &judgement.untrusted_owner
        && response.allowed
        && !judgement.findings.is_empty()
    {
        warnings.push(format!("deployguard: {owner}: judged in full"));
    }
    if !judgement.exempted.is_empty() {
        let rules: Vec<&str> = judgement.exempted.iter().map(|r| r.as_str()).collect();
        warnings.push(format!(
            "deployguard: rules exempted by annotation deployguard.io/exempt: {}",
            rules.join(", ")
        ));
    }
    if !judgement.unknown_exemptions.is_empty() {
        warnings.push(format!(
            "deployguard: deployguard.io/exempt names unknown rules: {}",
            judgement.unknown_exemptions.join(", ")
        ));
    }
    if let Some(refusal) = &judgement.exemption_refused {
        warnings.push(format!(
            "deployguard: annotation deployguard.io/exempt ignored: {refusal}"
        ));
    }
    warnings.extend(
        judgement
            .granted
            .iter()
            .map(|grant| format!("deployguard: exempted from {grant}")),
    );
    response.warnings = fit_warnings(warnings);
    let audited: Vec<String> = judgement
        .with_mode(Mode::Audit)
        .map(|f| format!("{}:{}", f.container, f.rule))
        .collect();
    if !audited.is_empty() {
        response
            .audit_annotations
            .insert("audit-findings", audited.join(","));
    }
}

fn set_patch(response: &mut ResponseOut, ops: &[PatchOperation]) {
    if ops.is_empty() {
        return;
    }
    let json = serde_json::to_vec(ops).unwrap_or_default();
    response.patch_type = Some("JSONPatch");
    response.patch = Some(BASE64.encode(json));
}

fn truncate(text: &str) -> String {
    if text.chars().count() <= MAX_WARNING_CHARS {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_WARNING_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Keeps warnings within Kubernetes' limits, saying how many were left out.
fn fit_warnings(warnings: Vec<String>) -> Vec<String> {
    let total = warnings.len();
    let mut kept = Vec::new();
    let mut used = 0;
    const OMITTED_RESERVE: usize = 64;
    for warning in warnings {
        let warning = truncate(&warning);
        if used + warning.len() + OMITTED_RESERVE > MAX_WARNINGS_TOTAL {
            break;
        }
        used += warning.len();
        kept.push(warning);
    }
    if kept.len() < total {
        kept.push(format!(
            "deployguard: {} more warnings omitted",
            total - kept.len()
        ));
    }
    kept
}

#[cfg(test)]
mod tests;
