//! The `exemptions` and `controllerOwnedPods.trustedRequesters` keys: who may exempt what,
//! and whose requests count as a controller's.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::Deserialize;

use crate::policy::{ExemptionPolicy, Grant, NamePattern, RuleId};
use crate::workload::WorkloadKind;

/// A key path and what is wrong there.
type Problem = (String, String);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ExemptionsFile {
    allow_annotation: Option<bool>,
    annotation_requesters: Option<Vec<String>>,
    grants: Option<Vec<GrantFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GrantFile {
    namespace: String,
    kind: Option<String>,
    name: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    rules: Vec<String>,
    reason: String,
    expires: Option<String>,
}

/// Applies the file's `exemptions` to `policy`'s.
pub(super) fn read(file: ExemptionsFile, policy: &mut ExemptionPolicy) -> Result<(), Problem> {
    if let Some(allow) = file.allow_annotation {
        policy.allow_annotation = allow;
    }
    if let Some(requesters) = file.annotation_requesters {
        policy.annotation_requesters = patterns(requesters, "exemptions.annotationRequesters")?;
    }
    if let Some(grants) = file.grants {
        policy.grants = grants
            .into_iter()
            .enumerate()
            .map(|(index, grant)| read_grant(grant, &format!("exemptions.grants[{index}]")))
            .collect::<Result<_, _>>()?;
    }
    Ok(())
}

/// Reads a list of user-name patterns (`name`, or `prefix*`).
pub(super) fn patterns(list: Vec<String>, key: &str) -> Result<Vec<NamePattern>, Problem> {
    list.iter()
        .enumerate()
        .map(|(index, text)| NamePattern::parse(text).map_err(|p| (format!("{key}[{index}]"), p)))
        .collect()
}

fn read_grant(grant: GrantFile, key: &str) -> Result<Grant, Problem> {
    let at = |field: &str| format!("{key}.{field}");
    let namespace = NamePattern::parse(&grant.namespace).map_err(|p| (at("namespace"), p))?;
    let name = grant
        .name
        .map(|name| NamePattern::parse(&name).map_err(|p| (at("name"), p)))
        .transpose()?;
    if let Some(kind) = &grant.kind
        && WorkloadKind::from_kind(kind).is_none()
    {
        return Err((
            at("kind"),
            format!(
                "{kind:?} is not a kind deployguard judges; kinds: {}",
                kinds()
            ),
        ));
    }
    if grant.rules.is_empty() {
        return Err((at("rules"), "a grant names at least one rule".to_owned()));
    }
    let rules = grant
        .rules
        .iter()
        .enumerate()
        .map(|(index, id)| {
            RuleId::parse(id).ok_or_else(|| {
                (
                    format!("{key}.rules[{index}]"),
                    format!("unknown rule {id:?}; rules: {}", all_rules()),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let reason = grant.reason.trim();
    if reason.is_empty() {
        return Err((
            at("reason"),
            "a grant says why (it is shown with every exemption)".to_owned(),
        ));
    }
    let expires = grant
        .expires
        .map(|text| utc_date(&text).map_err(|p| (at("expires"), p)))
        .transpose()?;
    Ok(Grant {
        namespace,
        kind: grant.kind,
        name,
        labels: grant.labels.unwrap_or_default(),
        rules,
        reason: reason.to_owned(),
        expires,
    })
}

/// A calendar date written `YYYY-MM-DD`, nothing else (no time, no zone).
pub fn utc_date(text: &str) -> Result<Date, String> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    let date = shaped.then(|| text.parse::<Date>().ok()).flatten();
    date.ok_or_else(|| format!("{text:?} is not a date written YYYY-MM-DD"))
}

fn kinds() -> String {
    let kinds: Vec<&str> = WorkloadKind::ALL
        .into_iter()
        .map(WorkloadKind::as_str)
        .collect();
    kinds.join(", ")
}

fn all_rules() -> String {
    let rules: Vec<&str> = RuleId::ALL.into_iter().map(RuleId::as_str).collect();
    rules.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_strict() {
        assert_eq!(utc_date("2027-03-31").unwrap().to_string(), "2027-03-31");
        for bad in [
            "2027-02-30",
            "2027-3-31",
            "2027-03-31T00:00",
            "31.03.2027",
            "",
            "tomorrow",
        ] {
            assert!(utc_date(bad).is_err(), "{bad:?}");
        }
    }
}
