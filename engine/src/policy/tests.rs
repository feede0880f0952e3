//! Policy-level semantics: modes, scope, exemptions, ownership, batch.

use serde_json::{Value, json};

use super::*;
use crate::text::Text;

fn bare_pod() -> Value {
    json!({"containers": [{"name": "app", "image": "app:1"}]})
}

fn subject<'a>(spec: &'a PodSpecView<'a>) -> Subject<'a> {
    Subject {
        namespace: "default",
        kind: "Pod",
        name: "web",
        labels: None,
        context: RequestContext {
            requester: Some("alice"),
            today: Some(jiff::civil::date(2026, 12, 2)),
        },
        spec,
        batch: false,
        controller_owned: false,
        exempt_annotation: None,
        go_runtime_annotation: None,
        go_runtime_skip_annotation: None,
        go_runtime_containers_annotation: None,
        injected_annotation: None,
        limit_ranges: &[],
    }
}

fn judge_with(
    policy: &Policy,
    spec: &Value,
    adjust: impl FnOnce(&mut Subject<'_>),
) -> Vec<(RuleId, Mode)> {
    let json = spec.to_string();
    let view = PodSpecView::from_json(&json, "spec").unwrap();
    let mut s = subject(&view);
    adjust(&mut s);
    policy
        .judge(&s)
        .findings
        .into_iter()
        .map(|f| (f.rule, f.mode))
        .collect()
}

#[test]
fn bare_container_gets_every_default_mode() {
    let found = judge_with(&Policy::default(), &bare_pod(), |_| {});
    assert_eq!(
        found,
        [
            (RuleId::LivenessProbe, Mode::Enforce),
            (RuleId::ReadinessProbe, Mode::Enforce),
            (RuleId::CpuLimit, Mode::Enforce),
            (RuleId::MemoryLimit, Mode::Enforce),
            (RuleId::CpuRequest, Mode::Warn),
            (RuleId::MemoryRequest, Mode::Warn),
        ]
    );
}

#[test]
fn default_mode_caps_every_rule() {
    let policy = Policy {
        default_mode: Mode::Warn,
        ..Policy::default()
    };
    let found = judge_with(&policy, &bare_pod(), |_| {});
    assert!(
        found.iter().all(|(_, mode)| *mode == Mode::Warn),
        "{found:?}"
    );
    let off = Policy {
        default_mode: Mode::Off,
        ..Policy::default()
    };
    assert_eq!(judge_with(&off, &bare_pod(), |_| {}), []);
}

#[test]
fn rule_mode_off_drops_findings() {
    let mut policy = Policy::default();
    policy.rules.insert(RuleId::CpuLimit, Mode::Off);
    policy.rules.insert(RuleId::CpuRequest, Mode::Audit);
    let found = judge_with(&policy, &bare_pod(), |_| {});
    assert!(!found.iter().any(|(rule, _)| *rule == RuleId::CpuLimit));
    assert!(found.contains(&(RuleId::CpuRequest, Mode::Audit)));
}

#[test]
fn namespace_overrides_replace_global_modes() {
    let mut policy = Policy {
        default_mode: Mode::Warn,
        ..Policy::default()
    };
    policy.namespace_overrides.insert(
        "strict".into(),
        NamespaceOverride {
            default_mode: Some(Mode::Enforce),
            rules: BTreeMap::from([(RuleId::CpuRequest, Mode::Enforce)]),
            go_runtime_select: None,
        },
    );
    let strict = judge_with(&policy, &bare_pod(), |s| s.namespace = "strict");
    assert!(strict.contains(&(RuleId::LivenessProbe, Mode::Enforce)));
    assert!(strict.contains(&(RuleId::CpuRequest, Mode::Enforce)));
    assert!(strict.contains(&(RuleId::MemoryRequest, Mode::Warn)));
    let other = judge_with(&policy, &bare_pod(), |s| s.namespace = "other");
    assert!(other.contains(&(RuleId::LivenessProbe, Mode::Warn)));
}

#[test]
fn excluded_namespaces_are_not_judged_nor_mutated() {
    let policy = Policy::default();
    let spec = json!({"containers": [{"name": "app", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
    let json = spec.to_string();
    let view = PodSpecView::from_json(&json, "spec").unwrap();
    let s = Subject {
        namespace: "kube-system",
        ..subject(&view)
    };
    let judgement = policy.judge(&s);
    assert!(judgement.excluded && judgement.findings.is_empty());
    assert!(policy.go_env_plan(&s).is_empty());
    assert_eq!(policy.go_env_plan(&subject(&view)).containers.len(), 1);
}

#[test]
fn exemptions_need_the_policy_switch() {
    let refused = Policy::default();
    let view_spec = bare_pod();
    let json = view_spec.to_string();
    let view = PodSpecView::from_json(&json, "spec").unwrap();
    let s = Subject {
        exempt_annotation: Some("liveness-probe, cpu-limit,nonsense"),
        ..subject(&view)
    };
    let judgement = refused.judge(&s);
    assert_eq!(
        judgement.exemption_refused,
        Some(ExemptionRefusal::NotAllowed)
    );
    assert!(
        judgement
            .findings
            .iter()
            .any(|f| f.rule == RuleId::LivenessProbe)
    );

    let allowed = annotation_allowed();
    let judgement = allowed.judge(&s);
    assert_eq!(judgement.exemption_refused, None);
    assert_eq!(
        judgement.exempted,
        [RuleId::LivenessProbe, RuleId::CpuLimit]
    );
    assert_eq!(judgement.unknown_exemptions, ["nonsense"]);
    assert!(
        !judgement
            .findings
            .iter()
            .any(|f| f.rule == RuleId::LivenessProbe || f.rule == RuleId::CpuLimit)
    );
    assert!(
        judgement
            .findings
            .iter()
            .any(|f| f.rule == RuleId::ReadinessProbe)
    );
}

#[test]
fn exempting_injection_stops_it_only_when_allowed() {
    let spec = json!({"containers": [{"name": "app", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
    let json = spec.to_string();
    let view = PodSpecView::from_json(&json, "spec").unwrap();
    let s = Subject {
        exempt_annotation: Some("go-runtime-injection"),
        ..subject(&view)
    };
    assert_eq!(Policy::default().go_env_plan(&s).containers.len(), 1);
    let allowed = annotation_allowed();
    assert!(allowed.go_env_plan(&s).is_empty());
}

#[test]
fn controller_owned_pods_are_at_most_audited() {
    let found = judge_with(&Policy::default(), &bare_pod(), |s| {
        s.controller_owned = true;
        s.context.requester = Some("system:kube-controller-manager");
    });
    assert!(!found.is_empty());
    assert!(
        found.iter().all(|(_, mode)| *mode == Mode::Audit),
        "{found:?}"
    );
}

#[test]
fn batch_skips_probe_rules() {
    let by_kind = judge_with(&Policy::default(), &bare_pod(), |s| s.batch = true);
    assert!(
        !by_kind.iter().any(|(rule, _)| rule.is_probe_rule()),
        "{by_kind:?}"
    );
    for restart in ["Never", "OnFailure"] {
        let spec = json!({"restartPolicy": restart, "containers": [{"name": "app"}]});
        let found = judge_with(&Policy::default(), &spec, |_| {});
        assert!(
            !found.iter().any(|(rule, _)| rule.is_probe_rule()),
            "{restart}"
        );
        assert!(found.iter().any(|(rule, _)| *rule == RuleId::CpuLimit));
    }
}

#[test]
fn container_scopes() {
    let spec = json!({
        "containers": [],
        "initContainers": [
            {"name": "sidecar", "restartPolicy": "Always"},
            {"name": "init"},
        ],
        "ephemeralContainers": [{"name": "debug"}],
    });
    let json = spec.to_string();
    let view = PodSpecView::from_json(&json, "spec").unwrap();
    let judgement = Policy::default().judge(&subject(&view));
    let rules_of = |name: &str| -> Vec<RuleId> {
        judgement
            .findings
            .iter()
            .filter(|f| f.container == name)
            .map(|f| f.rule)
            .collect()
    };
    assert!(rules_of("sidecar").contains(&RuleId::LivenessProbe));
    assert!(!rules_of("init").iter().any(|r| r.is_probe_rule()));
    assert!(rules_of("init").contains(&RuleId::MemoryLimit));
    assert!(
        rules_of("debug").is_empty(),
        "ephemeral containers are never checked"
    );
}

#[test]
fn go_runtime_opt_outs() {
    let spec = json!({"containers": [
        {"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
        {"name": "b", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
    ]});
    let json = spec.to_string();
    let view = PodSpecView::from_json(&json, "spec").unwrap();
    let policy = Policy::default();
    let names_in = |policy: &Policy, s: &Subject<'_>| {
        policy
            .go_env_plan(s)
            .containers
            .into_iter()
            .map(|i| i.name.to_string())
            .collect::<Vec<String>>()
    };
    let names = |s: &Subject<'_>| names_in(&policy, s);
    assert_eq!(names(&subject(&view)), ["a", "b"]);
    assert_eq!(
        names(&Subject {
            go_runtime_annotation: Some("off"),
            ..subject(&view)
        }),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&Subject {
            go_runtime_skip_annotation: Some("a"),
            ..subject(&view)
        }),
        ["b"]
    );
    let disabled = Policy {
        go_runtime: GoRuntimeSettings {
            enabled: false,
            ..policy.go_runtime.clone()
        },
        ..Policy::default()
    };
    assert!(disabled.go_env_plan(&subject(&view)).is_empty());
    let annotated = Policy {
        go_runtime: GoRuntimeSettings {
            select: GoRuntimeSelect::Annotated,
            ..policy.go_runtime.clone()
        },
        ..Policy::default()
    };
    assert_eq!(names_in(&annotated, &subject(&view)), Vec::<String>::new());
    let on = Subject {
        go_runtime_annotation: Some("on"),
        ..subject(&view)
    };
    assert_eq!(names_in(&annotated, &on), ["a", "b"]);
    let only_b = Subject {
        go_runtime_containers_annotation: Some("b"),
        ..on.clone()
    };
    assert_eq!(names_in(&annotated, &only_b), ["b"]);
    assert_eq!(
        names_in(&policy, &only_b),
        ["b"],
        "the list narrows in every mode"
    );
    let skip_b = Subject {
        go_runtime_skip_annotation: Some("b"),
        ..on
    };
    assert_eq!(names_in(&annotated, &skip_b), ["a"]);
}

fn annotation_allowed() -> Policy {
    let mut policy = Policy::default();
    policy.exemptions.allow_annotation = true;
    policy
}

fn granting(grants: &str) -> Policy {
    crate::config::parse_policy(&format!("exemptions:\n  grants:\n{grants}"), "test").unwrap()
}

fn exempted_by_grant(policy: &Policy, adjust: impl FnOnce(&mut Subject<'_>)) -> Vec<RuleId> {
    let spec = bare_pod();
    let json = spec.to_string();
    let view = PodSpecView::from_json(&json, "spec").unwrap();
    let mut s = subject(&view);
    adjust(&mut s);
    let judgement = policy.judge(&s);
    let rules: Vec<RuleId> = judgement
        .granted
        .iter()
        .flat_map(|g| g.rules.clone())
        .collect();
    assert!(
        !judgement.findings.iter().any(|f| rules.contains(&f.rule)),
        "{judgement:?}"
    );
    rules
}

#[test]
fn grants_match_namespace_kind_name_and_the_objects_own_labels() {
    let policy = granting(
        "  - namespace: team-*\n    kind: Deployment\n    name: legacy-*\n    labels: {app: billing}\n    rules: [liveness-probe]\n    reason: v2 rewrite\n",
    );
    // Leaked: the subjects the closures adjust may live for any lifetime.
    let labels: &'static _ = Box::leak(Box::new(BTreeMap::from([(
        Text::from("app"),
        Text::from("billing"),
    )])));
    let matching = |s: &mut Subject<'_>| {
        s.namespace = "team-a";
        s.kind = "Deployment";
        s.name = "legacy-api";
    };
    assert_eq!(
        exempted_by_grant(&policy, |s| {
            matching(s);
            s.labels = Some(labels);
        }),
        [RuleId::LivenessProbe]
    );
    let other: &'static _ = Box::leak(Box::new(BTreeMap::from([(
        Text::from("app"),
        Text::from("shop"),
    )])));
    let misses: [&dyn Fn(&mut Subject<'_>); 5] = [
        &|s| s.namespace = "teams",
        &|s| s.kind = "StatefulSet",
        &|s| s.name = "api-legacy",
        &|s| s.labels = None,
        &|s| s.labels = Some(other),
    ];
    for miss in misses {
        let found = exempted_by_grant(&policy, |s| {
            matching(s);
            s.labels = Some(labels);
            miss(s);
        });
        assert!(found.is_empty(), "{found:?}");
    }
}

#[test]
fn grants_apply_through_their_last_day_and_never_on_no_date() {
    let policy =
        granting("  - {namespace: default, rules: [cpu-limit], reason: r, expires: 2027-03-31}\n");
    let on = |day: Option<jiff::civil::Date>| {
        let spec = bare_pod();
        let json = spec.to_string();
        let view = PodSpecView::from_json(&json, "spec").unwrap();
        let mut s = subject(&view);
        s.context.today = day;
        let judgement = policy.judge(&s);
        (judgement.granted.len(), judgement.expired_grants.len())
    };
    assert_eq!(on(Some(jiff::civil::date(2027, 3, 31))), (1, 0));
    assert_eq!(on(Some(jiff::civil::date(2027, 4, 1))), (0, 1));
    assert_eq!(on(None), (0, 1));
    let forever = granting("  - {namespace: default, rules: [cpu-limit], reason: r}\n");
    assert_eq!(
        exempted_by_grant(&forever, |s| s.context.today = None),
        [RuleId::CpuLimit]
    );
}

#[test]
fn grants_hold_whatever_allow_annotation_says_and_can_stop_injection() {
    let policy = granting("  - {namespace: default, rules: [go-runtime-injection], reason: r}\n");
    assert!(!policy.exemptions.allow_annotation);
    let spec = json!({"containers": [{"name": "app", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
    let json = spec.to_string();
    let view = PodSpecView::from_json(&json, "spec").unwrap();
    assert!(policy.go_env_plan(&subject(&view)).is_empty());
}

#[test]
fn annotation_requesters_limit_who_may_self_exempt() {
    let mut policy = annotation_allowed();
    policy.exemptions.annotation_requesters =
        vec![NamePattern::parse("system:serviceaccount:ci:*").unwrap()];
    let spec = bare_pod();
    let json = spec.to_string();
    let view = PodSpecView::from_json(&json, "spec").unwrap();
    let by = |requester: Option<&'static str>| {
        let s = Subject {
            exempt_annotation: Some("liveness-probe"),
            context: RequestContext {
                requester,
                today: None,
            },
            ..subject(&view)
        };
        let judgement = policy.judge(&s);
        (judgement.exempted, judgement.exemption_refused)
    };
    assert_eq!(
        by(Some("system:serviceaccount:ci:deployer")),
        (vec![RuleId::LivenessProbe], None)
    );
    let (exempted, refused) = by(Some("alice"));
    assert!(exempted.is_empty());
    assert_eq!(
        refused.unwrap().to_string(),
        "\"alice\" may not exempt objects (exemptions.annotationRequesters)"
    );
    assert_eq!(by(None).1, Some(ExemptionRefusal::Requester(None)));
}

#[test]
fn only_trusted_requesters_get_the_controller_owned_cap() {
    let spec = bare_pod();
    let json = spec.to_string();
    let view = PodSpecView::from_json(&json, "spec").unwrap();
    let judged = |requester: Option<&'static str>| {
        let s = Subject {
            controller_owned: true,
            context: RequestContext {
                requester,
                today: None,
            },
            ..subject(&view)
        };
        Policy::default().judge(&s)
    };
    let trusted = judged(Some(
        "system:serviceaccount:kube-system:replicaset-controller",
    ));
    assert!(trusted.untrusted_owner.is_none() && !trusted.has_enforced());
    let forged = judged(Some("alice"));
    assert!(forged.has_enforced());
    assert_eq!(
        forged.untrusted_owner.unwrap().to_string(),
        "owner reference claims a controller, but the request comes from \"alice\""
    );
    assert!(judged(None).has_enforced());
}
