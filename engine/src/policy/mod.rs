//! The policy engine: pure (no IO, no async, no clock). Given a validated [`Policy`] and
//! a [`Subject`] (one pod spec in its context) it returns findings and the Go runtime
//! environment to inject. The server and the CLI both call exactly this.

pub mod downward;
pub mod exemptions;
pub mod finding;
pub mod go_vars;
pub mod gomemlimit;
pub mod injected;
pub mod limitrange;
pub mod pattern;
pub mod podspec;
pub mod probe_defaults;
pub mod quantity;
mod rules;
mod subject;

use std::collections::{BTreeMap, BTreeSet};

use exemptions::Exemptions;
pub use exemptions::{ExemptionPolicy, ExemptionRefusal, Grant, GrantUse};
pub use finding::{Finding, Mode, RuleId};
pub use injected::InjectedRecord;
pub use limitrange::{LimitRange, LimitRanges};
pub use pattern::NamePattern;
pub use podspec::{ContainerRole, ContainerView, PodSpecView, SpecError};
pub use rules::goruntime::{ContainerEnvPlan, EnvChange, GoEnvPlan, RecordChange};
pub use rules::limitrange::LimitRangeDefault;
pub use subject::{Judgement, RequestContext, Subject, UntrustedOwner};

/// Annotation listing rules to exempt an object from (honoured only when allowed).
pub const EXEMPT_ANNOTATION: &str = "deployguard.io/exempt";
/// Annotation on a pod (or pod template) that turns Go runtime injection off (`"off"`),
/// or on where the policy injects only annotated pods (`"on"`).
pub const GO_RUNTIME_ANNOTATION: &str = "deployguard.io/go-runtime";
/// Annotation on a pod (or pod template) naming the only containers to inject: `"a,b"`.
pub const GO_RUNTIME_CONTAINERS_ANNOTATION: &str = "deployguard.io/go-runtime-containers";
/// Annotation on a pod (or pod template) naming containers to leave uninjected: `"a,b"`.
pub const GO_RUNTIME_SKIP_ANNOTATION: &str = "deployguard.io/go-runtime-skip";
/// Annotation the mutation writes to record what it injected (format: [`injected`]).
pub const INJECTED_ANNOTATION: &str = "deployguard.io/injected";

/// How GOMAXPROCS is rounded from a fractional CPU limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    Ceil,
    Floor,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoMaxProcsSettings {
    pub inject: bool,
    pub rounding: Rounding,
    pub minimum: u32,
    /// With no CPU limit, derive GOMAXPROCS from the CPU request instead.
    pub fallback_to_request: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoMemLimitSettings {
    pub inject: bool,
    /// GOMEMLIMIT = floor(memory limit × ratio); stored in millionths to stay exact.
    pub ratio_millionths: u32,
    /// A GOMEMLIMIT the user wrote above this share of the limit warns (too little room
    /// outside the Go heap); in millionths.
    pub warn_above_millionths: u32,
}

/// Which pods get Go runtime variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoRuntimeSelect {
    /// Every pod that does not opt out.
    All,
    /// Only pods annotated `deployguard.io/go-runtime: "on"`.
    Annotated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoRuntimeSettings {
    pub enabled: bool,
    pub select: GoRuntimeSelect,
    /// Mutate pod templates of workload controllers too, not only Pods.
    pub mutate_templates: bool,
    pub gomaxprocs: GoMaxProcsSettings,
    pub gomemlimit: GoMemLimitSettings,
}

/// Per-namespace replacements for the global modes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceOverride {
    pub default_mode: Option<Mode>,
    pub rules: BTreeMap<RuleId, Mode>,
    pub go_runtime_select: Option<GoRuntimeSelect>,
}

/// A validated policy. Build it with [`crate::config::parse_policy`] or [`Policy::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Cap on every rule's mode (`warn` rolls out everything as warnings first).
    pub default_mode: Mode,
    pub rules: BTreeMap<RuleId, Mode>,
    pub excluded_namespaces: BTreeSet<String>,
    pub namespace_overrides: BTreeMap<String, NamespaceOverride>,
    pub exemptions: ExemptionPolicy,
    /// Pods owned by a controller are judged at most in this mode: their template was
    /// judged already, and a denial would stop a controller replacing pods.
    pub controller_owned_max_mode: Mode,
    /// Only requests from these users get the controller-owned cap: anyone can write an
    /// owner reference, only a controller's credential makes it true.
    pub trusted_requesters: Vec<NamePattern>,
    /// A CPU limit or request above this many cores is taken for a unit mistake.
    pub max_cpu_cores: u32,
    /// Namespaces the findings metric names (all others count as `other`); empty: the
    /// metric has no `object_namespace` label.
    pub findings_namespaces: BTreeSet<String>,
    pub go_runtime: GoRuntimeSettings,
}

impl Default for Policy {
    fn default() -> Self {
        let rules = RuleId::ALL
            .into_iter()
            .filter_map(|rule| default_rule_mode(rule).map(|mode| (rule, mode)))
            .collect();
        Policy {
            default_mode: Mode::Enforce,
            rules,
            excluded_namespaces: ["kube-system", "kube-public", "kube-node-lease"]
                .into_iter()
                .map(String::from)
                .collect(),
            namespace_overrides: BTreeMap::new(),
            exemptions: ExemptionPolicy::default(),
            controller_owned_max_mode: Mode::Audit,
            trusted_requesters: DEFAULT_TRUSTED_REQUESTERS
                .into_iter()
                .filter_map(|user| NamePattern::parse(user).ok())
                .collect(),
            max_cpu_cores: 128,
            findings_namespaces: BTreeSet::new(),
            go_runtime: GoRuntimeSettings {
                enabled: true,
                select: GoRuntimeSelect::All,
                mutate_templates: false,
                gomaxprocs: GoMaxProcsSettings {
                    inject: true,
                    rounding: Rounding::Ceil,
                    minimum: 2,
                    fallback_to_request: false,
                },
                gomemlimit: GoMemLimitSettings {
                    inject: true,
                    ratio_millionths: 900_000,
                    warn_above_millionths: 950_000,
                },
            },
        }
    }
}

/// The identities kube-controller-manager creates pods and templates with (one service
/// account per controller, or one credential for all), and kubelets (mirror pods of static
/// pods). Not all of kube-system: add-ons run there too.
pub const DEFAULT_TRUSTED_REQUESTERS: [&str; 9] = [
    "system:serviceaccount:kube-system:replicaset-controller",
    "system:serviceaccount:kube-system:replication-controller",
    "system:serviceaccount:kube-system:deployment-controller",
    "system:serviceaccount:kube-system:job-controller",
    "system:serviceaccount:kube-system:cronjob-controller",
    "system:serviceaccount:kube-system:daemon-set-controller",
    "system:serviceaccount:kube-system:statefulset-controller",
    "system:kube-controller-manager",
    "system:node:*",
];

/// The default mode of each validation rule (DESIGN §3); `None` for the mutation rule,
/// which is switched by `goRuntime.enabled` instead.
pub fn default_rule_mode(rule: RuleId) -> Option<Mode> {
    match rule {
        RuleId::ProbeSettings
        | RuleId::CpuRequest
        | RuleId::MemoryRequest
        | RuleId::ManifestTypo => Some(Mode::Warn),
        RuleId::GoRuntimeInjection => None,
        _ => Some(Mode::Enforce),
    }
}

impl Policy {
    /// The mode of `rule` in `namespace`, before per-finding caps.
    pub fn mode_for(&self, rule: RuleId, namespace: &str) -> Mode {
        let over = self.namespace_overrides.get(namespace);
        let base = over
            .and_then(|o| o.rules.get(&rule))
            .or_else(|| self.rules.get(&rule))
            .copied()
            .unwrap_or(Mode::Off);
        let cap = over
            .and_then(|o| o.default_mode)
            .unwrap_or(self.default_mode);
        base.min(cap)
    }

    pub fn is_excluded(&self, namespace: &str) -> bool {
        self.excluded_namespaces.contains(namespace)
    }

    /// Judges one pod spec against every validation rule.
    pub fn judge(&self, subject: &Subject<'_>) -> Judgement {
        self.judge_with(subject, Vec::new())
    }

    /// [`Policy::judge`], with findings a door made about the same object (`check`'s
    /// misspelt keys) settled like the rules' own: exemptions, grants, the namespace's
    /// modes and the controller-owned cap apply to them too.
    pub fn judge_with(&self, subject: &Subject<'_>, extra: Vec<Finding>) -> Judgement {
        if self.is_excluded(subject.namespace) {
            return Judgement::excluded();
        }
        let record = subject.injected_record();
        let mut defaults = Vec::new();
        let mut limit_range_findings = Vec::new();
        // The pod as LimitRanger makes it: every rule judges that.
        let spec = &rules::limitrange::apply_defaults(
            subject.spec,
            subject.limit_ranges,
            &mut defaults,
            &mut limit_range_findings,
        );
        let mut raw = Vec::new();
        for container in &spec.containers {
            let probes_apply =
                container.role.gets_probe_rules() && !subject.batch && !is_batch_restart(spec);
            if probes_apply {
                rules::probes::check(container, &mut raw);
            }
            rules::resources::check(container, spec, &mut raw);
            rules::units::check(container, spec, self.max_cpu_cores, &mut raw);
            rules::goenv::check_env(container, spec, &self.go_runtime, &record, &mut raw);
        }
        raw.append(&mut limit_range_findings);
        rules::limitrange::check(spec, subject.spec, subject.limit_ranges, &mut raw);
        raw.extend(extra);
        let requester = subject.context.requester;
        let trusted = pattern::any_matches(&self.trusted_requesters, requester);
        let cap = (subject.controller_owned && trusted).then_some(self.controller_owned_max_mode);
        let untrusted_owner = (subject.controller_owned && !trusted).then(|| UntrustedOwner {
            requester: requester.filter(|user| !user.is_empty()).map(str::to_owned),
        });
        Judgement {
            limit_range_defaults: defaults,
            untrusted_owner,
            ..self.settle(subject, raw, cap)
        }
    }

    /// Judges an in-place resize (`pods/resize`): the new limits against the env the
    /// running containers were started with. `go-env` only, and never capped for
    /// controller-owned pods: nearly every pod an autoscaler resizes has an owner.
    pub fn judge_resize(&self, old: &Subject<'_>, new: &Subject<'_>) -> Judgement {
        if self.is_excluded(new.namespace) {
            return Judgement::excluded();
        }
        let mut raw = Vec::new();
        rules::goenv::check_resize(
            old.spec,
            new.spec,
            &self.go_runtime,
            &old.injected_record(),
            &mut raw,
        );
        self.settle(new, raw, None)
    }

    /// Applies exemptions, the namespace's modes and `cap` to raw findings.
    fn settle(&self, subject: &Subject<'_>, raw: Vec<Finding>, cap: Option<Mode>) -> Judgement {
        let exemptions = Exemptions::of(self, subject);
        let findings = raw
            .into_iter()
            .filter(|finding| !exemptions.covers(finding.rule))
            .filter_map(|mut finding| {
                let mut mode = self
                    .mode_for(finding.rule, subject.namespace)
                    .min(finding.mode);
                if let Some(cap) = cap {
                    mode = mode.min(cap);
                }
                finding.mode = mode;
                (mode != Mode::Off).then_some(finding)
            })
            .collect();
        Judgement {
            findings,
            exempted: exemptions.honoured,
            exemption_refused: exemptions.refused,
            unknown_exemptions: exemptions.unknown,
            granted: exemptions.granted,
            expired_grants: exemptions.expired,
            ..Judgement::default()
        }
    }

    /// Which pods get Go runtime variables in `namespace`.
    pub fn go_runtime_select(&self, namespace: &str) -> GoRuntimeSelect {
        self.namespace_overrides
            .get(namespace)
            .and_then(|o| o.go_runtime_select)
            .unwrap_or(self.go_runtime.select)
    }

    /// Recomputes the Go runtime variables deployguard owns from the current limits:
    /// adds what is missing, replaces what changed, removes what lost its reason (or
    /// whose pod opted out). The user's own variables are never touched.
    pub fn go_env_plan<'a>(&self, subject: &Subject<'a>) -> GoEnvPlan<'a> {
        let settings = &self.go_runtime;
        if !settings.enabled || self.is_excluded(subject.namespace) {
            return GoEnvPlan::none();
        }
        let switch = subject.go_runtime_annotation.map(str::trim);
        let pod_opted_in = match self.go_runtime_select(subject.namespace) {
            GoRuntimeSelect::All => !switch.is_some_and(|v| v.eq_ignore_ascii_case("off")),
            GoRuntimeSelect::Annotated => switch.is_some_and(|v| v.eq_ignore_ascii_case("on")),
        };
        let pod_injected =
            pod_opted_in && !Exemptions::of(self, subject).covers(RuleId::GoRuntimeInjection);
        let names =
            |list: Option<&'a str>| list.map(|l| l.split(',').map(str::trim).collect::<Vec<_>>());
        let only = names(subject.go_runtime_containers_annotation);
        let skipped = names(subject.go_runtime_skip_annotation).unwrap_or_default();
        // Templates get the limits their pods will have once LimitRanger has run.
        let spec = rules::limitrange::apply_defaults(
            subject.spec,
            subject.limit_ranges,
            &mut Vec::new(),
            &mut Vec::new(),
        );
        rules::goruntime::plan(&spec, settings, subject.injected_annotation, |container| {
            pod_injected
                && only
                    .as_ref()
                    .is_none_or(|only| only.contains(&&*container.name))
                && !skipped.contains(&&*container.name)
        })
    }
}

/// Pods that run to completion get no liveness/readiness checks.
fn is_batch_restart(spec: &PodSpecView<'_>) -> bool {
    matches!(spec.restart_policy.as_deref(), Some("Never" | "OnFailure"))
}

#[cfg(test)]
mod tests;
