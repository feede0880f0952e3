//! The policy file: YAML in, validated [`Policy`] out. Every key is optional; unknown
//! keys and out-of-range values are errors that name the key.

mod exemptions;

pub use exemptions::utc_date;

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use thiserror::Error;

use crate::policy::{
    GoRuntimeSelect, Mode, NamespaceOverride, Policy, Rounding, RuleId, default_rule_mode,
};

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read policy file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("policy file {origin}: {message}")]
    Syntax { origin: String, message: String },
    #[error("policy file {origin}: {key}: {problem}")]
    Invalid {
        origin: String,
        key: String,
        problem: String,
    },
}

/// `T`, deserialized with the path of keys recorded, so that a wrong value (a mode that
/// does not exist, a string for a number) is reported with its key, not only its line.
struct Keyed<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Keyed<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_path_to_error::deserialize(deserializer)
            .map(Keyed)
            .map_err(|error| {
                let key = error.path().to_string();
                serde::de::Error::custom(format!("{key}: {}", error.into_inner()))
            })
    }
}

/// The default policy, with a comment on every key (`deployguard config default`).
pub const DEFAULT_POLICY_YAML: &str = include_str!("default-policy.yaml");

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PolicyFile {
    default_mode: Option<Mode>,
    rules: Option<BTreeMap<String, Mode>>,
    excluded_namespaces: Option<Vec<String>>,
    namespace_overrides: Option<BTreeMap<String, OverrideFile>>,
    exemptions: Option<exemptions::ExemptionsFile>,
    controller_owned_pods: Option<ControllerOwnedFile>,
    resource_units: Option<ResourceUnitsFile>,
    go_runtime: Option<GoRuntimeFile>,
    metrics: Option<MetricsFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MetricsFile {
    findings_namespaces: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OverrideFile {
    default_mode: Option<Mode>,
    rules: Option<BTreeMap<String, Mode>>,
    go_runtime: Option<OverrideGoRuntimeFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OverrideGoRuntimeFile {
    select: Option<SelectFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ResourceUnitsFile {
    max_cpu_cores: Option<i64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SelectFile {
    All,
    Annotated,
}

impl From<SelectFile> for GoRuntimeSelect {
    fn from(select: SelectFile) -> Self {
        match select {
            SelectFile::All => GoRuntimeSelect::All,
            SelectFile::Annotated => GoRuntimeSelect::Annotated,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ControllerOwnedFile {
    max_mode: Option<Mode>,
    trusted_requesters: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GoRuntimeFile {
    enabled: Option<bool>,
    select: Option<SelectFile>,
    mutate_templates: Option<bool>,
    gomaxprocs: Option<GoMaxProcsFile>,
    gomemlimit: Option<GoMemLimitFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GoMaxProcsFile {
    inject: Option<bool>,
    rounding: Option<RoundingFile>,
    minimum: Option<i64>,
    fallback_to_request: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RoundingFile {
    Ceil,
    Floor,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GoMemLimitFile {
    inject: Option<bool>,
    ratio: Option<f64>,
    warn_above: Option<f64>,
}

/// The validated policy in a policy file's bytes; `origin` names the file in errors.
pub fn policy_from_bytes(bytes: &[u8], origin: &str) -> Result<Policy, ConfigError> {
    let text = std::str::from_utf8(bytes).map_err(|error| ConfigError::Syntax {
        origin: origin.to_owned(),
        message: format!("not UTF-8: {error}"),
    })?;
    parse_policy(text, origin)
}

/// Parses and validates policy YAML; `origin` names it in errors.
pub fn parse_policy(text: &str, origin: &str) -> Result<Policy, ConfigError> {
    // YAML itself first (duplicate keys, alias bombs, nesting): the key-path wrapper below
    // would relay those in the parser's words.
    let syntax = |error| ConfigError::Syntax {
        origin: origin.to_owned(),
        message: crate::yaml_error::with_position(&error, 0),
    };
    serde_saphyr::from_str::<Option<serde_json::Value>>(text).map_err(syntax)?;
    let file: Option<Keyed<PolicyFile>> = serde_saphyr::from_str(text).map_err(syntax)?;
    let file = file.map(|keyed| keyed.0);
    let invalid = |key: String, problem: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        key,
        problem,
    };
    let file = file.unwrap_or_default();
    let mut policy = Policy::default();
    if let Some(mode) = file.default_mode {
        policy.default_mode = mode;
    }
    if let Some(rules) = file.rules {
        policy
            .rules
            .extend(rule_modes(rules, "rules").map_err(|(k, p)| invalid(k, p))?);
    }
    if let Some(namespaces) = file.excluded_namespaces {
        policy.excluded_namespaces =
            namespace_set(namespaces, "excludedNamespaces").map_err(|(k, p)| invalid(k, p))?;
    }
    if let Some(overrides) = file.namespace_overrides {
        for (namespace, over) in overrides {
            let key = format!("namespaceOverrides.{namespace}");
            check_namespace_name(&namespace).map_err(|p| invalid(key.clone(), p))?;
            let rules = rule_modes(over.rules.unwrap_or_default(), &format!("{key}.rules"))
                .map_err(|(k, p)| invalid(k, p))?;
            policy.namespace_overrides.insert(
                namespace,
                NamespaceOverride {
                    default_mode: over.default_mode,
                    rules,
                    go_runtime_select: over.go_runtime.and_then(|g| g.select).map(Into::into),
                },
            );
        }
    }
    if let Some(file) = file.exemptions {
        exemptions::read(file, &mut policy.exemptions).map_err(|(k, p)| invalid(k, p))?;
    }
    if let Some(owned) = file.controller_owned_pods {
        if let Some(mode) = owned.max_mode {
            policy.controller_owned_max_mode = mode;
        }
        if let Some(requesters) = owned.trusted_requesters {
            policy.trusted_requesters =
                exemptions::patterns(requesters, "controllerOwnedPods.trustedRequesters")
                    .map_err(|(k, p)| invalid(k, p))?;
        }
    }
    if let Some(namespaces) = file.metrics.and_then(|m| m.findings_namespaces) {
        policy.findings_namespaces = namespace_set(namespaces, "metrics.findingsNamespaces")
            .map_err(|(k, p)| invalid(k, p))?;
    }
    if let Some(cores) = file.resource_units.and_then(|r| r.max_cpu_cores) {
        policy.max_cpu_cores = u32::try_from(cores)
            .ok()
            .filter(|c| (1..=1_000_000).contains(c))
            .ok_or_else(|| {
                invalid(
                    "resourceUnits.maxCpuCores".into(),
                    format!("{cores} is not between 1 and 1000000"),
                )
            })?;
    }
    if let Some(go) = file.go_runtime {
        let settings = &mut policy.go_runtime;
        settings.enabled = go.enabled.unwrap_or(settings.enabled);
        if let Some(select) = go.select {
            settings.select = select.into();
        }
        settings.mutate_templates = go.mutate_templates.unwrap_or(settings.mutate_templates);
        if let Some(procs) = go.gomaxprocs {
            let target = &mut settings.gomaxprocs;
            target.inject = procs.inject.unwrap_or(target.inject);
            target.fallback_to_request = procs
                .fallback_to_request
                .unwrap_or(target.fallback_to_request);
            if let Some(rounding) = procs.rounding {
                target.rounding = match rounding {
                    RoundingFile::Ceil => Rounding::Ceil,
                    RoundingFile::Floor => Rounding::Floor,
                };
            }
            if let Some(minimum) = procs.minimum {
                target.minimum = u32::try_from(minimum)
                    .ok()
                    .filter(|m| (1..=1024).contains(m))
                    .ok_or_else(|| {
                        invalid(
                            "goRuntime.gomaxprocs.minimum".into(),
                            format!("{minimum} is not between 1 and 1024"),
                        )
                    })?;
            }
        }
        if let Some(memory) = go.gomemlimit {
            let target = &mut settings.gomemlimit;
            target.inject = memory.inject.unwrap_or(target.inject);
            // The injected ratio leaves room outside the heap (stacks, cgo, runtime).
            if let Some(ratio) = memory.ratio {
                target.ratio_millionths =
                    millionths(ratio, 0.5, 0.95, "goRuntime.gomemlimit.ratio")
                        .map_err(|(k, p)| invalid(k, p))?;
            }
            if let Some(share) = memory.warn_above {
                target.warn_above_millionths =
                    millionths(share, 0.5, 1.0, "goRuntime.gomemlimit.warnAbove")
                        .map_err(|(k, p)| invalid(k, p))?;
            }
        }
    }
    Ok(policy)
}

/// A share between `low` and `high` in millionths, which keep the arithmetic exact
/// (finer values are rounded).
fn millionths(share: f64, low: f64, high: f64, key: &str) -> Result<u32, (String, String)> {
    if !(low..=high).contains(&share) {
        return Err((
            key.to_owned(),
            format!("{share} is not between {low} and {high}"),
        ));
    }
    Ok((share * 1_000_000.0).round() as u32)
}

fn rule_modes(
    rules: BTreeMap<String, Mode>,
    key: &str,
) -> Result<BTreeMap<RuleId, Mode>, (String, String)> {
    rules
        .into_iter()
        .map(|(id, mode)| {
            match RuleId::parse(&id).filter(|rule| default_rule_mode(*rule).is_some()) {
                Some(rule) => Ok((rule, mode)),
                None if id == RuleId::GoRuntimeInjection.as_str() => Err((
                    format!("{key}.{id}"),
                    "the mutation is switched by goRuntime.enabled, not by a mode".to_owned(),
                )),
                None => Err((
                    format!("{key}.{id}"),
                    format!("unknown rule; known rules: {}", known_rules()),
                )),
            }
        })
        .collect()
}

fn known_rules() -> String {
    RuleId::ALL
        .into_iter()
        .filter(|rule| default_rule_mode(*rule).is_some())
        .map(RuleId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn namespace_set(namespaces: Vec<String>, key: &str) -> Result<BTreeSet<String>, (String, String)> {
    namespaces
        .into_iter()
        .enumerate()
        .map(|(index, name)| {
            check_namespace_name(&name).map_err(|problem| (format!("{key}[{index}]"), problem))?;
            Ok(name)
        })
        .collect()
}

/// Namespace names are DNS labels: a typo here would silently exclude nothing.
fn check_namespace_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!("{name:?} is not a valid namespace name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, ConfigError> {
        parse_policy(text, "test.yaml")
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn default_file_is_the_default_policy() {
        assert_eq!(parse(DEFAULT_POLICY_YAML).unwrap(), Policy::default());
    }

    #[test]
    fn empty_file_is_the_default_policy() {
        assert_eq!(parse("").unwrap(), Policy::default());
        assert_eq!(parse("# nothing\n").unwrap(), Policy::default());
        assert_eq!(parse("{}").unwrap(), Policy::default());
    }

    #[test]
    fn every_key_is_read() {
        let policy = parse(
            "defaultMode: warn\nrules:\n  cpu-limit: off\n  probe-settings: enforce\nexcludedNamespaces: [infra]\n\
             namespaceOverrides:\n  legacy:\n    defaultMode: audit\n    rules: {memory-limit: warn}\n\
             exemptions: {allowAnnotation: true}\ncontrollerOwnedPods: {maxMode: warn}\n\
             resourceUnits: {maxCpuCores: 64}\n\
             goRuntime:\n  enabled: false\n  select: annotated\n  mutateTemplates: true\n  gomaxprocs: {inject: false, rounding: floor, minimum: 1, fallbackToRequest: true}\n  gomemlimit: {inject: false, ratio: 0.75, warnAbove: 0.9}\n",
        )
        .unwrap();
        assert_eq!(policy.default_mode, Mode::Warn);
        assert_eq!(policy.rules[&RuleId::CpuLimit], Mode::Off);
        assert_eq!(policy.rules[&RuleId::ProbeSettings], Mode::Enforce);
        assert_eq!(
            policy.rules[&RuleId::LivenessProbe],
            Mode::Enforce,
            "unlisted rules keep their default"
        );
        assert_eq!(
            policy.excluded_namespaces,
            BTreeSet::from(["infra".to_owned()])
        );
        let legacy = &policy.namespace_overrides["legacy"];
        assert_eq!(legacy.default_mode, Some(Mode::Audit));
        assert_eq!(legacy.rules[&RuleId::MemoryLimit], Mode::Warn);
        assert!(policy.exemptions.allow_annotation);
        assert_eq!(policy.controller_owned_max_mode, Mode::Warn);
        let go = &policy.go_runtime;
        assert!(!go.enabled && go.mutate_templates);
        assert!(!go.gomaxprocs.inject && go.gomaxprocs.fallback_to_request);
        assert_eq!(
            (go.gomaxprocs.rounding, go.gomaxprocs.minimum),
            (Rounding::Floor, 1)
        );
        assert_eq!(
            (go.gomemlimit.inject, go.gomemlimit.ratio_millionths),
            (false, 750_000)
        );
        assert_eq!(go.gomemlimit.warn_above_millionths, 900_000);
        assert_eq!(go.select, GoRuntimeSelect::Annotated);
        assert_eq!(policy.max_cpu_cores, 64);
        let select =
            parse("namespaceOverrides:\n  java:\n    goRuntime: {select: annotated}\n").unwrap();
        assert_eq!(select.go_runtime_select("java"), GoRuntimeSelect::Annotated);
        assert_eq!(select.go_runtime_select("other"), GoRuntimeSelect::All);
    }

    #[test]
    fn unknown_keys_are_named() {
        assert!(
            error("defaultMod: warn").contains("defaultMod"),
            "{}",
            error("defaultMod: warn")
        );
        assert!(
            error("goRuntime:\n  gomaxprocs:\n    rounding: ceil\n    minimun: 1\n")
                .contains("minimun")
        );
        let unknown_rule = error("rules:\n  cpu-limits: warn\n");
        assert!(
            unknown_rule.contains("rules.cpu-limits: unknown rule; known rules: liveness-probe"),
            "{unknown_rule}"
        );
        let ns_rule = error("namespaceOverrides:\n  team-a:\n    rules: {probes: off}\n");
        assert!(
            ns_rule.contains("namespaceOverrides.team-a.rules.probes"),
            "{ns_rule}"
        );
        assert!(error("rules: {go-runtime-injection: off}").contains("goRuntime.enabled"));
    }

    #[test]
    fn bad_values_are_named() {
        let mode = error("defaultMode: deny");
        assert!(
            mode.contains("defaultMode: unknown variant `deny`") && mode.contains("line 1"),
            "{mode}"
        );
        let nested =
            error("defaultMode: warn\nnamespaceOverrides:\n  team-a:\n    defaultMode: x\n");
        assert!(
            nested.contains("namespaceOverrides.team-a.defaultMode: unknown variant `x`")
                && nested.contains("line 4"),
            "{nested}"
        );
        let wrong_type = error("goRuntime: {gomaxprocs: {minimum: abc}}");
        assert!(
            wrong_type.contains("goRuntime.gomaxprocs.minimum: "),
            "{wrong_type}"
        );
        assert!(
            error("goRuntime: {gomaxprocs: {rounding: round}}")
                .contains("goRuntime.gomaxprocs.rounding: unknown variant `round`")
        );
        let ratio = error("goRuntime: {gomemlimit: {ratio: 0.96}}");
        assert!(
            ratio.contains("goRuntime.gomemlimit.ratio: 0.96 is not between 0.5 and 0.95"),
            "{ratio}"
        );
        assert!(
            error("goRuntime: {gomemlimit: {warnAbove: 1.1}}")
                .contains("goRuntime.gomemlimit.warnAbove: 1.1")
        );
        assert!(error("resourceUnits: {maxCpuCores: 0}").contains("resourceUnits.maxCpuCores: 0"));
        assert!(
            error("goRuntime: {select: some}").contains("goRuntime.select: unknown variant `some`")
        );
        assert!(
            error("goRuntime: {gomaxprocs: {minimum: 0}}")
                .contains("goRuntime.gomaxprocs.minimum: 0")
        );
        assert!(error("excludedNamespaces: [Kube-System]").contains("excludedNamespaces[0]"));
    }

    #[test]
    fn exemptions_and_trusted_requesters_are_read() {
        let policy = parse(
            "exemptions:\n  allowAnnotation: true\n  annotationRequesters: [\"system:serviceaccount:ci:*\"]\n  grants:\n  - namespace: team-*\n    kind: Deployment\n    name: legacy-api\n    labels: {app: billing}\n    rules: [liveness-probe, go-runtime-injection]\n    reason: \" v2 rewrite \"\n    expires: 2027-03-31\ncontrollerOwnedPods:\n  trustedRequesters: [system:kube-controller-manager, \"system:node:*\"]\n",
        )
        .unwrap();
        let grant = &policy.exemptions.grants[0];
        assert_eq!(grant.namespace.to_string(), "team-*");
        assert_eq!(grant.kind.as_deref(), Some("Deployment"));
        assert_eq!(
            grant.rules,
            [RuleId::LivenessProbe, RuleId::GoRuntimeInjection]
        );
        assert_eq!(grant.reason, "v2 rewrite");
        assert_eq!(
            grant.expires.map(|d| d.to_string()).as_deref(),
            Some("2027-03-31")
        );
        assert_eq!(policy.exemptions.annotation_requesters.len(), 1);
        let trusted: Vec<String> = policy
            .trusted_requesters
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(trusted, ["system:kube-controller-manager", "system:node:*"]);
    }

    #[test]
    fn bad_grants_are_named_by_key_path() {
        let grant = |body: &str| {
            error(&format!(
                "exemptions:\n  grants:\n  - {{namespace: a, rules: [cpu-limit], reason: r}}\n  - {{{body}}}\n"
            ))
        };
        let cases = [
            (
                "namespace: a, rules: [cpu-limits], reason: r",
                "exemptions.grants[1].rules[0]: unknown rule \"cpu-limits\"",
            ),
            (
                "namespace: a, rules: [], reason: r",
                "exemptions.grants[1].rules: a grant names at least one rule",
            ),
            (
                "namespace: a, rules: [cpu-limit], reason: \" \"",
                "exemptions.grants[1].reason: a grant says why",
            ),
            ("namespace: a, rules: [cpu-limit]", "missing field `reason`"),
            (
                "namespace: a, rules: [cpu-limit], reason: r, expires: 2027-02-30",
                "exemptions.grants[1].expires: \"2027-02-30\" is not a date",
            ),
            (
                "namespace: a, rules: [cpu-limit], reason: r, kind: Deploymnet",
                "exemptions.grants[1].kind: \"Deploymnet\" is not a kind",
            ),
            (
                "namespace: \"te*am\", rules: [cpu-limit], reason: r",
                "exemptions.grants[1].namespace: \"te*am\": `*` may only end",
            ),
            (
                "namespace: a, rules: [cpu-limit], reason: r, until: x",
                "until",
            ),
        ];
        for (body, expected) in cases {
            let message = grant(body);
            assert!(message.contains(expected), "{body}: {message}");
        }
        let requester = error("controllerOwnedPods: {trustedRequesters: [ok, \"*bad\"]}");
        assert!(
            requester.contains("controllerOwnedPods.trustedRequesters[1]: \"*bad\""),
            "{requester}"
        );
        assert!(
            error("exemptions: {annotationRequesters: [\"\"]}")
                .contains("exemptions.annotationRequesters[0]")
        );
    }

    #[test]
    fn findings_namespaces_are_namespace_names() {
        let policy = parse("metrics: {findingsNamespaces: [team-a, team-b]}").unwrap();
        assert_eq!(policy.findings_namespaces.len(), 2);
        let bad = error("metrics: {findingsNamespaces: [team-a, Team_B]}");
        assert!(bad.contains("metrics.findingsNamespaces[1]"), "{bad}");
    }

    #[test]
    fn yaml_off_is_a_mode_not_a_boolean() {
        assert_eq!(
            parse("rules: {cpu-limit: off}").unwrap().rules[&RuleId::CpuLimit],
            Mode::Off
        );
        assert_eq!(parse("defaultMode: off").unwrap().default_mode, Mode::Off);
    }
}
