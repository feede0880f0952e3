//! The AdmissionReview answer: `allowed`, the denial status, warnings within the API
//! server's limits, audit annotations and the base64 JSON patch.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use json_patch::PatchOperation;
use serde::Serialize;

use super::{Decision, ReviewSummary};
use crate::policy::{Finding, Judgement, Mode};
use crate::workload::WorkloadKind;

/// Kubernetes truncates each warning past 256 characters and drops warnings past 4096 in total.
pub(super) const MAX_WARNING_CHARS: usize = 256;
pub(super) const MAX_WARNINGS_TOTAL: usize = 4096;

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
pub(super) struct ResponseOut {
    uid: String,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    audit_annotations: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct StatusOut {
    status: &'static str,
    code: u16,
    reason: &'static str,
    message: String,
}

impl ResponseOut {
    pub(super) fn allowing(uid: &str) -> ResponseOut {
        ResponseOut {
            uid: uid.to_owned(),
            allowed: true,
            ..ResponseOut::default()
        }
    }

    pub(super) fn deny(&mut self, code: u16, reason: &'static str, message: String) {
        self.allowed = false;
        self.status = Some(StatusOut {
            status: "Failure",
            code,
            reason,
            message,
        });
    }

    pub(super) fn set_patch(&mut self, ops: &[PatchOperation]) {
        if ops.is_empty() {
            return;
        }
        let json = serde_json::to_vec(ops).unwrap_or_default();
        self.patch_type = Some("JSONPatch");
        self.patch = Some(BASE64.encode(json));
    }

    /// The AdmissionReview carrying this response, in the request's `apiVersion`.
    pub(super) fn into_review(self, api_version: &str) -> Vec<u8> {
        let review = ReviewOut {
            api_version,
            kind: "AdmissionReview",
            response: self,
        };
        // Serialising plain strings, numbers and maps cannot fail.
        serde_json::to_vec(&review).unwrap_or_default()
    }
}

/// Turns a judgement into the validating answer and its summary.
pub(super) fn settle_validation(
    response: &mut ResponseOut,
    summary: &mut ReviewSummary,
    judgement: Judgement,
    kind: WorkloadKind,
) {
    if judgement.excluded {
        summary.skipped = Some("namespace excluded");
    }
    fill_validation(response, &judgement, kind, summary);
    if !response.allowed {
        summary.decision = Decision::Denied;
    }
    summary.exempted = judgement.exempted;
    summary.granted = judgement.granted;
    summary.untrusted_owner = judgement.untrusted_owner;
    summary.findings = judgement.findings;
}

fn fill_validation(
    response: &mut ResponseOut,
    judgement: &Judgement,
    kind: WorkloadKind,
    summary: &ReviewSummary,
) {
    let enforced: Vec<String> = judgement
        .with_mode(Mode::Enforce)
        .map(Finding::describe)
        .collect();
    if !enforced.is_empty() {
        let why_in_full = judgement
            .untrusted_owner
            .as_ref()
            .map(|owner| format!(" ({owner})"))
            .unwrap_or_default();
        let message = format!(
            "deployguard denied {} {}/{}: {}{why_in_full}",
            kind.as_str(),
            summary.namespace,
            summary.name,
            enforced.join("; ")
        );
        response.deny(403, "Forbidden", message);
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

pub(super) fn truncate(text: &str) -> String {
    if text.chars().count() <= MAX_WARNING_CHARS {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_WARNING_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// Keeps warnings within Kubernetes' limits, saying how many were left out.
pub(super) fn fit_warnings(warnings: Vec<String>) -> Vec<String> {
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
