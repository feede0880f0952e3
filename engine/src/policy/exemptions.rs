//! Exemptions: rules switched off for one object, by a grant the platform team wrote into
//! the policy file or, where the policy allows it, by the object's own annotation.

use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::Date;

use super::pattern::{NamePattern, any_matches};
use super::{Policy, RuleId, Subject};

/// Who may exempt what.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExemptionPolicy {
    /// Honour the `deployguard.io/exempt` annotation.
    pub allow_annotation: bool,
    /// With the annotation allowed: the requesters it is honoured from (empty: anyone).
    pub annotation_requesters: Vec<NamePattern>,
    pub grants: Vec<Grant>,
}

/// An exemption in the policy file: a pod author cannot write one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Grant {
    pub namespace: NamePattern,
    /// The object's kind (`Deployment`); any when absent.
    pub kind: Option<String>,
    /// The object's name (or generateName); any when absent.
    pub name: Option<NamePattern>,
    /// Labels the object itself carries (not its template's), all of them.
    pub labels: BTreeMap<String, String>,
    pub rules: Vec<RuleId>,
    pub reason: String,
    /// The last day (UTC) the grant applies.
    pub expires: Option<Date>,
}

impl Grant {
    /// Whether the grant names this object, whatever the date.
    fn covers(&self, subject: &Subject<'_>) -> bool {
        let labels_match = self.labels.iter().all(|(key, value)| {
            subject
                .labels
                .and_then(|labels| labels.get(key.as_str()))
                .is_some_and(|have| **have == **value)
        });
        self.namespace.matches(subject.namespace)
            && self.kind.as_deref().is_none_or(|kind| kind == subject.kind)
            && self.name.as_ref().is_none_or(|n| n.matches(subject.name))
            && labels_match
    }

    /// Whether the grant has expired by `today`; on no date, any expiry counts as past.
    pub fn expired_on(&self, today: Option<Date>) -> bool {
        self.expires
            .is_some_and(|last| today.is_none_or(|today| today > last))
    }
}

/// A grant that named an object: what it exempts and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantUse {
    /// The grant's position in `exemptions.grants`.
    pub index: usize,
    pub rules: Vec<RuleId>,
    pub reason: String,
    pub expires: Option<Date>,
}

impl GrantUse {
    fn of(index: usize, grant: &Grant) -> GrantUse {
        GrantUse {
            index,
            rules: grant.rules.clone(),
            reason: grant.reason.clone(),
            expires: grant.expires,
        }
    }

    pub fn rule_list(&self) -> String {
        let rules: Vec<&str> = self.rules.iter().map(|rule| rule.as_str()).collect();
        rules.join(", ")
    }
}

impl fmt::Display for GrantUse {
    /// `liveness-probe by grant 0 of the policy: probe lands with v2 (until 2027-03-31)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} by grant {} of the policy: {}",
            self.rule_list(),
            self.index,
            self.reason
        )?;
        match self.expires {
            Some(last) => write!(f, " (until {last})"),
            None => Ok(()),
        }
    }
}

/// Why the object's exemption annotation was not honoured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExemptionRefusal {
    /// `exemptions.allowAnnotation` is false.
    NotAllowed,
    /// The requester is not in `exemptions.annotationRequesters` (`None`: no user named).
    Requester(Option<String>),
}

impl fmt::Display for ExemptionRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExemptionRefusal::NotAllowed => f.write_str("the policy does not allow exemptions"),
            ExemptionRefusal::Requester(Some(user)) => write!(
                f,
                "{user:?} may not exempt objects (exemptions.annotationRequesters)"
            ),
            ExemptionRefusal::Requester(None) => f.write_str(
                "the request names no user, and only exemptions.annotationRequesters may exempt objects",
            ),
        }
    }
}

/// Every exemption that applies to one subject.
#[derive(Debug, Default)]
pub(super) struct Exemptions {
    /// Rules the annotation switched off.
    pub honoured: Vec<RuleId>,
    pub refused: Option<ExemptionRefusal>,
    /// Names in the annotation that are not rules.
    pub unknown: Vec<String>,
    /// Grants in force that name the object.
    pub granted: Vec<GrantUse>,
    /// Grants that name the object but have expired.
    pub expired: Vec<GrantUse>,
}

impl Exemptions {
    pub fn of(policy: &Policy, subject: &Subject<'_>) -> Exemptions {
        let mut exemptions = Exemptions::default();
        for (index, grant) in policy.exemptions.grants.iter().enumerate() {
            if !grant.covers(subject) {
                continue;
            }
            let used = GrantUse::of(index, grant);
            if grant.expired_on(subject.context.today) {
                exemptions.expired.push(used);
            } else {
                exemptions.granted.push(used);
            }
        }
        if let Some(list) = subject.exempt_annotation {
            exemptions.read_annotation(&policy.exemptions, subject.context.requester, list);
        }
        exemptions
    }

    fn read_annotation(&mut self, policy: &ExemptionPolicy, requester: Option<&str>, list: &str) {
        let requesters = &policy.annotation_requesters;
        if !policy.allow_annotation {
            self.refused = Some(ExemptionRefusal::NotAllowed);
            return;
        }
        if !requesters.is_empty() && !any_matches(requesters, requester) {
            let user = requester.filter(|user| !user.is_empty()).map(str::to_owned);
            self.refused = Some(ExemptionRefusal::Requester(user));
            return;
        }
        for id in list.split(',').map(str::trim).filter(|id| !id.is_empty()) {
            match RuleId::parse(id) {
                Some(rule) if !self.honoured.contains(&rule) => self.honoured.push(rule),
                Some(_) => {}
                None => self.unknown.push(id.to_owned()),
            }
        }
    }

    pub fn covers(&self, rule: RuleId) -> bool {
        self.honoured.contains(&rule) || self.granted.iter().any(|g| g.rules.contains(&rule))
    }
}
