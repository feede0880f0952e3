//! What the engine judges ([`Subject`]: one pod spec and its context) and what it
//! returns ([`Judgement`]).

use std::fmt;

use jiff::civil::Date;

use super::injected::InjectedRecord;
use super::{
    ExemptionRefusal, Finding, GrantUse, LimitRange, LimitRangeDefault, Mode, PodSpecView, RuleId,
};
use crate::text::TextMap;

/// What the object cannot claim about itself: who asks, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestContext<'a> {
    /// The requesting user (`request.userInfo.username`); `None` when unknown.
    pub requester: Option<&'a str>,
    /// Today's date in UTC: grants expire by it. `None` (a judgement on no date): grants
    /// with an expiry do not apply.
    pub today: Option<Date>,
}

impl RequestContext<'_> {
    /// No user, no date: what a document judged outside any cluster has.
    pub const NONE: RequestContext<'static> = RequestContext {
        requester: None,
        today: None,
    };
}

/// One pod spec to judge, with the context that changes how it is judged.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub namespace: &'a str,
    /// The object's kind, name (or generateName) and labels: what grants match.
    pub kind: &'a str,
    pub name: &'a str,
    pub labels: Option<&'a TextMap<'a>>,
    pub context: RequestContext<'a>,
    pub spec: &'a PodSpecView<'a>,
    /// A Job or CronJob template: probe rules do not apply.
    pub batch: bool,
    /// A Pod with an `ownerReferences` entry marked `controller: true`.
    pub controller_owned: bool,
    /// The object's `deployguard.io/exempt` annotation.
    pub exempt_annotation: Option<&'a str>,
    /// The pod's (or template's) `deployguard.io/go-runtime` annotation.
    pub go_runtime_annotation: Option<&'a str>,
    /// The pod's (or template's) `deployguard.io/go-runtime-skip` annotation.
    pub go_runtime_skip_annotation: Option<&'a str>,
    /// The pod's (or template's) `deployguard.io/go-runtime-containers` annotation.
    pub go_runtime_containers_annotation: Option<&'a str>,
    /// The pod's (or template's) `deployguard.io/injected` annotation.
    pub injected_annotation: Option<&'a str>,
    /// The LimitRanges of the namespace: their defaults and bounds apply.
    pub limit_ranges: &'a [LimitRange],
}

impl Subject<'_> {
    /// What deployguard recorded it injected; an annotation that does not parse records nothing.
    pub(super) fn injected_record(&self) -> InjectedRecord<'_> {
        self.injected_annotation
            .and_then(InjectedRecord::parse)
            .unwrap_or_default()
    }
}

/// The outcome of judging one subject.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judgement {
    /// Findings whose mode is not `off`, in container order.
    pub findings: Vec<Finding>,
    /// Rules the exemption annotation switched off (honoured exemptions).
    pub exempted: Vec<RuleId>,
    /// Why the object's exemption annotation was ignored, if it was.
    pub exemption_refused: Option<ExemptionRefusal>,
    /// Grants of the policy that exempted the object from rules.
    pub granted: Vec<GrantUse>,
    /// Grants that name the object but have expired: no longer applied.
    pub expired_grants: Vec<GrantUse>,
    /// The object claims a controller owner, but the request does not come from one:
    /// it was judged in full.
    pub untrusted_owner: Option<UntrustedOwner>,
    /// Rule ids in the exemption annotation that are not rules.
    pub unknown_exemptions: Vec<String>,
    /// The namespace is excluded: nothing was judged.
    pub excluded: bool,
    /// Limits and requests the namespace's LimitRanges filled in.
    pub limit_range_defaults: Vec<LimitRangeDefault>,
}

impl Judgement {
    pub(super) fn excluded() -> Judgement {
        Judgement {
            excluded: true,
            ..Judgement::default()
        }
    }

    pub fn has_enforced(&self) -> bool {
        self.findings.iter().any(|f| f.mode == Mode::Enforce)
    }

    pub fn with_mode(&self, mode: Mode) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.mode == mode)
    }
}

/// A controller owner reference from a requester that is not a trusted controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UntrustedOwner {
    /// `None`: the request names no user.
    pub requester: Option<String>,
}

impl fmt::Display for UntrustedOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("owner reference claims a controller, but the request ")?;
        match &self.requester {
            Some(user) => write!(f, "comes from {user:?}"),
            None => f.write_str("names no user"),
        }
    }
}
