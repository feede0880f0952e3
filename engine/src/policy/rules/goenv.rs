//! `go-env`: the GOMEMLIMIT and GOMAXPROCS a container runs with — written by the user,
//! injected by deployguard, or computed by the kubelet from `resourceFieldRef` — judged
//! against the container's limits, at creation and when the pod is resized in place.

use crate::policy::GoRuntimeSettings;
use crate::policy::downward::{FieldResource, resource_field_value};
use crate::policy::finding::{Finding, Mode, RuleId};
use crate::policy::go_vars::{GOMAXPROCS, GOMEMLIMIT};
use crate::policy::gomemlimit::{GoMemLimit, parse_go_memlimit};
use crate::policy::injected::InjectedRecord;
use crate::policy::podspec::{ContainerView, EnvSource, PodSpecView};
use crate::policy::rules::goruntime::{
    MIN_GOMEMLIMIT_BYTES, cpu_limit, gomaxprocs_for, memory_limit_bytes, owned_entry,
};

/// The value of one GOMEMLIMIT/GOMAXPROCS entry as the process sees it.
struct SeenValue {
    /// `"768Mi"`, or `from resourceFieldRef limits.memory (divisor 1Mi) = 512`.
    shown: String,
    text: String,
    /// deployguard wrote it (the record holds it): never warned about for headroom.
    owned: bool,
}

/// The value of `env[index]` of `container` in `pod`, or `None` when admission cannot know it.
fn seen_value(
    container: &ContainerView<'_>,
    pod: &PodSpecView<'_>,
    index: usize,
    record: &InjectedRecord<'_>,
) -> Option<SeenValue> {
    let var = container.env.get(index)?;
    match &var.source {
        EnvSource::Literal(value) => Some(SeenValue {
            shown: format!("{value:?}"),
            text: value.to_string(),
            owned: owned_entry(container, &var.name, record).is_some_and(|(i, _)| i == index),
        }),
        EnvSource::ResourceField(field) => {
            let value = resource_field_value(field, container, pod)?.to_string();
            Some(SeenValue {
                shown: format!("from resourceFieldRef {} = {value}", field.describe()),
                text: value,
                owned: false,
            })
        }
        EnvSource::Empty | EnvSource::Opaque => None,
    }
}

pub fn check_env(
    container: &ContainerView<'_>,
    pod: &PodSpecView<'_>,
    settings: &GoRuntimeSettings,
    record: &InjectedRecord<'_>,
    out: &mut Vec<Finding>,
) {
    let mut found = |mode, message: String| out.push(finding(container, mode, message));
    for (index, var) in container.env.iter().enumerate() {
        if var.name != GOMEMLIMIT && var.name != GOMAXPROCS {
            continue;
        }
        let Some(seen) = seen_value(container, pod, index, record) else {
            continue;
        };
        let problem = if var.name == GOMEMLIMIT {
            gomemlimit_problem(&seen, memory_limit_bytes(container, pod), settings)
        } else {
            let budget =
                cpu_limit(container, pod).map(|cpu| gomaxprocs_for(cpu, &settings.gomaxprocs));
            gomaxprocs_problem(&seen, budget)
        };
        if let Some((mode, message)) = problem {
            found(mode, message);
        }
    }
}

fn gomemlimit_problem(
    seen: &SeenValue,
    limit: Option<u128>,
    settings: &GoRuntimeSettings,
) -> Option<(Mode, String)> {
    let shown = &seen.shown;
    let bytes = match parse_go_memlimit(&seen.text) {
        Err(error) => {
            return Some((
                Mode::Enforce,
                format!(
                    "GOMEMLIMIT {error}: the Go runtime aborts at start-up — write an integer with an optional \
                     B, KiB, MiB, GiB or TiB suffix (e.g. 900MiB), or off"
                ),
            ));
        }
        Ok(GoMemLimit::Bytes(bytes)) => bytes,
        Ok(GoMemLimit::Unset | GoMemLimit::Off) => return None,
    };
    if bytes < MIN_GOMEMLIMIT_BYTES {
        return Some((
            Mode::Enforce,
            format!(
                "GOMEMLIMIT {shown} is {bytes} bytes, under 1 MiB — the GC would run almost without pause; \
                 set it to about 90% of the memory limit in Go syntax (e.g. 460MiB for 512Mi), or remove it and \
                 let deployguard set it"
            ),
        ));
    }
    let limit = limit?;
    let bytes = u128::from(bytes);
    if bytes >= limit {
        return Some((
            Mode::Enforce,
            format!(
                "GOMEMLIMIT {shown} ({bytes} bytes) is not below the memory limit ({limit} bytes) — the GC \
                 cannot keep the container from being OOM-killed; set it to about 90% of the limit or remove \
                 it and let deployguard set it"
            ),
        ));
    }
    let threshold = settings.gomemlimit.warn_above_millionths;
    if !seen.owned && bytes.saturating_mul(1_000_000) > limit.saturating_mul(u128::from(threshold))
    {
        return Some((
            Mode::Warn,
            format!(
                "GOMEMLIMIT {shown} ({bytes} bytes) is above {}% of the memory limit ({limit} bytes) — too \
                 little room for goroutine stacks, cgo and runtime overhead outside the heap; set it to about \
                 90% of the limit or remove it and let deployguard set it",
                percent(threshold)
            ),
        ));
    }
    None
}

fn gomaxprocs_problem(seen: &SeenValue, budget: Option<u128>) -> Option<(Mode, String)> {
    let shown = &seen.shown;
    match parse_go_int32(&seen.text) {
        Some(procs) if procs > 0 => {
            let budget = budget.filter(|b| u128::from(procs.unsigned_abs()) > *b)?;
            Some((
                Mode::Warn,
                format!(
                    "GOMAXPROCS {shown} exceeds the CPU budget of {budget} from the CPU limit — it invites CPU \
                     throttling; set it to {budget} or less, or remove it and let deployguard set it"
                ),
            ))
        }
        _ => Some((
            Mode::Warn,
            format!(
                "GOMAXPROCS {shown} is not a positive integer, so Go ignores it — set a positive integer or \
                 remove it"
            ),
        )),
    }
}

/// An in-place resize (`pods/resize`) changes limits while the env of the running
/// process stays as it was created: judge the new limits against that env.
pub fn check_resize(
    old_pod: &PodSpecView<'_>,
    new_pod: &PodSpecView<'_>,
    settings: &GoRuntimeSettings,
    record: &InjectedRecord<'_>,
    out: &mut Vec<Finding>,
) {
    for new in &new_pod.containers {
        let Some(old) = old_pod.container(&new.name) else {
            continue;
        };
        let new_memory = memory_limit_bytes(new, new_pod);
        let new_cpu = cpu_limit(new, new_pod);
        let memory_changed = memory_limit_bytes(old, old_pod) != new_memory;
        let cpu_changed = cpu_limit(old, old_pod) != new_cpu;
        for (index, var) in old.env.iter().enumerate() {
            let memory = var.name == GOMEMLIMIT;
            if !(memory && memory_changed || var.name == GOMAXPROCS && cpu_changed) {
                continue;
            }
            // A derived value is recomputed when the kubelet restarts the container for
            // this resize (resizePolicy RestartContainer); a literal one never is.
            if let EnvSource::ResourceField(field) = &var.source {
                let restarts = match field.kind() {
                    Some(FieldResource::Memory) => old.resize_policy.memory_restarts,
                    Some(FieldResource::Cpu) => old.resize_policy.cpu_restarts,
                    None => true,
                };
                if restarts {
                    continue;
                }
            }
            let Some(seen) = seen_value(old, old_pod, index, record) else {
                continue;
            };
            let problem = if memory {
                resized_memory_problem(&seen, new_memory)
            } else {
                resized_cpu_problem(
                    &seen,
                    new_cpu.map(|cpu| gomaxprocs_for(cpu, &settings.gomaxprocs)),
                )
            };
            if let Some((mode, message)) = problem {
                out.push(finding(new, mode, message));
            }
        }
    }
}

const RECREATE_HINT: &str = "env cannot change in a running pod; resize within it, or recreate the pod \
                             (kubectl rollout restart) so deployguard sizes it anew";

fn resized_memory_problem(seen: &SeenValue, new_limit: Option<u128>) -> Option<(Mode, String)> {
    let Ok(GoMemLimit::Bytes(bytes)) = parse_go_memlimit(&seen.text) else {
        return None;
    };
    let limit = new_limit.filter(|limit| *limit <= u128::from(bytes))?;
    Some((
        Mode::Enforce,
        format!(
            "resize sets the memory limit to {limit} bytes, not above the running GOMEMLIMIT {} ({bytes} \
             bytes): the GC cannot keep the container from being OOM-killed — {RECREATE_HINT}",
            seen.shown
        ),
    ))
}

fn resized_cpu_problem(seen: &SeenValue, new_budget: Option<u128>) -> Option<(Mode, String)> {
    let procs = parse_go_int32(&seen.text).filter(|p| *p > 0)?;
    let budget = new_budget.filter(|budget| *budget < u128::from(procs.unsigned_abs()))?;
    Some((
        Mode::Warn,
        format!(
            "resize lowers the CPU budget to {budget}, below the running GOMAXPROCS {}: CPU throttling — \
             {RECREATE_HINT}",
            seen.shown
        ),
    ))
}

fn finding(container: &ContainerView<'_>, mode: Mode, message: String) -> Finding {
    Finding {
        rule: RuleId::GoEnv,
        mode,
        container: container.name.to_string(),
        message,
    }
}

/// `950_000` → `95`, `955_000` → `95.5`.
fn percent(millionths: u32) -> String {
    let tenths_of_millionths = millionths / 1000;
    if tenths_of_millionths % 10 == 0 {
        (tenths_of_millionths / 10).to_string()
    } else {
        format!(
            "{}.{}",
            tenths_of_millionths / 10,
            tenths_of_millionths % 10
        )
    }
}

/// Go's runtime `atoi32`: an optional `-`, then ASCII digits only (no `+`, no spaces),
/// within int32. Go ignores a GOMAXPROCS it cannot parse this way.
fn parse_go_int32(text: &str) -> Option<i32> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use serde_json::{Value, json};

    fn settings() -> GoRuntimeSettings {
        Policy::default().go_runtime
    }

    fn env_findings_recorded(
        env: Value,
        cpu: &str,
        memory: &str,
        record: &str,
    ) -> Vec<(Mode, String)> {
        let spec = json!({"containers": [{"name": "app", "env": env,
            "resources": {"limits": {"cpu": cpu, "memory": memory}}},
            {"name": "big", "resources": {"limits": {"cpu": "8", "memory": "8Gi"}}}]});
        let json = spec.to_string();
        let view = PodSpecView::from_json(&json, "spec").unwrap();
        let mut out = Vec::new();
        let record = InjectedRecord::parse(record).unwrap_or_default();
        check_env(&view.containers[0], &view, &settings(), &record, &mut out);
        out.into_iter().map(|f| (f.mode, f.message)).collect()
    }

    fn env_findings(env: Value, cpu: &str, memory: &str) -> Vec<(Mode, String)> {
        env_findings_recorded(env, cpu, memory, "")
    }

    fn modes(found: &[(Mode, String)]) -> Vec<Mode> {
        found.iter().map(|(mode, _)| *mode).collect()
    }

    #[test]
    fn go_env_gomemlimit() {
        let bad_syntax = env_findings(
            json!([{"name": "GOMEMLIMIT", "value": "768Mi"}]),
            "1",
            "1Gi",
        );
        assert_eq!(modes(&bad_syntax), [Mode::Enforce]);
        assert!(
            bad_syntax[0].1.contains("\"768Mi\" is not valid Go syntax"),
            "{bad_syntax:?}"
        );
        let at_limit = env_findings(json!([{"name": "GOMEMLIMIT", "value": "1GiB"}]), "1", "1Gi");
        assert!(at_limit[0].1.contains("not below the memory limit"));
        for fine in ["900MiB", "off", ""] {
            assert_eq!(
                env_findings(json!([{"name": "GOMEMLIMIT", "value": fine}]), "1", "1Gi"),
                [],
                "{fine}"
            );
        }
    }

    #[test]
    fn gomemlimit_under_one_mebibyte_denies() {
        for tiny in ["0", "-0", "512KiB", "1048575"] {
            let found = env_findings(json!([{"name": "GOMEMLIMIT", "value": tiny}]), "1", "1Gi");
            assert_eq!(modes(&found), [Mode::Enforce], "{tiny}");
            assert!(found[0].1.contains("under 1 MiB"), "{found:?}");
        }
        assert_eq!(
            env_findings(json!([{"name": "GOMEMLIMIT", "value": "1MiB"}]), "1", "1Gi"),
            []
        );
    }

    #[test]
    fn little_headroom_warns_unless_deployguard_wrote_it() {
        // 1Gi = 1024 MiB: 95% is 972.8 MiB.
        let tight = json!([{"name": "GOMEMLIMIT", "value": "980MiB"}]);
        let found = env_findings(tight.clone(), "1", "1Gi");
        assert_eq!(modes(&found), [Mode::Warn]);
        assert!(
            found[0].1.contains("above 95% of the memory limit"),
            "{found:?}"
        );
        assert_eq!(
            env_findings_recorded(tight.clone(), "1", "1Gi", "app: GOMEMLIMIT=980MiB"),
            []
        );
        assert_eq!(
            modes(&env_findings_recorded(
                tight,
                "1",
                "1Gi",
                "app: GOMEMLIMIT=970MiB"
            )),
            [Mode::Warn],
            "a record of another value does not make it ours"
        );
        assert_eq!(
            env_findings(
                json!([{"name": "GOMEMLIMIT", "value": "972MiB"}]),
                "1",
                "1Gi"
            ),
            []
        );
    }

    #[test]
    fn go_env_gomaxprocs() {
        let not_positive = env_findings(json!([{"name": "GOMAXPROCS", "value": "0"}]), "1", "1Gi");
        assert_eq!(modes(&not_positive), [Mode::Warn]);
        for ignored_by_go in ["+2", " 2", "2.0", "0x2", "-1", "", "99999999999"] {
            let found = env_findings(
                json!([{"name": "GOMAXPROCS", "value": ignored_by_go}]),
                "4",
                "1Gi",
            );
            assert!(
                found[0].1.contains("not a positive integer"),
                "{ignored_by_go:?}: {found:?}"
            );
        }
        let over = env_findings(json!([{"name": "GOMAXPROCS", "value": "8"}]), "2", "1Gi");
        assert!(
            over[0].1.contains("exceeds the CPU budget of 2"),
            "{over:?}"
        );
        assert_eq!(
            env_findings(json!([{"name": "GOMAXPROCS", "value": "2"}]), "500m", "1Gi"),
            []
        );
        assert_eq!(
            env_findings(json!([{"name": "GOMAXPROCS"}]), "1", "1Gi"),
            [],
            "no value: unset"
        );
    }

    fn field_ref(name: &str, field: Value) -> Value {
        json!([{"name": name, "valueFrom": {"resourceFieldRef": field}}])
    }

    #[test]
    fn downward_api_values_are_judged_like_literals() {
        let cases = [
            (
                GOMEMLIMIT,
                json!({"resource": "limits.memory"}),
                vec![Mode::Enforce],
                "not below the memory limit",
            ),
            (
                GOMEMLIMIT,
                json!({"resource": "limits.memory", "divisor": "1Mi"}),
                vec![Mode::Enforce],
                "512 bytes, under 1 MiB",
            ),
            (
                GOMEMLIMIT,
                json!({"resource": "limits.memory", "divisor": "1Gi"}),
                vec![Mode::Enforce],
                "1 bytes, under 1 MiB",
            ),
            (
                GOMEMLIMIT,
                json!({"resource": "limits.memory", "containerName": "big"}),
                vec![Mode::Enforce],
                "not below",
            ),
            (GOMAXPROCS, json!({"resource": "limits.cpu"}), vec![], ""),
            (
                GOMAXPROCS,
                json!({"resource": "limits.cpu", "divisor": "1m"}),
                vec![Mode::Warn],
                "limits.cpu (divisor 1m) = 1500 exceeds",
            ),
            (
                GOMAXPROCS,
                json!({"resource": "limits.cpu", "containerName": "big"}),
                vec![Mode::Warn],
                "= 8 exceeds the CPU budget of 2",
            ),
            (
                GOMAXPROCS,
                json!({"resource": "limits.cpu", "containerName": "nobody"}),
                vec![],
                "",
            ),
        ];
        for (name, field, expected, text) in cases {
            let found = env_findings(field_ref(name, field.clone()), "1500m", "512Mi");
            assert_eq!(modes(&found), expected, "{name} {field}: {found:?}");
            assert!(
                found.iter().all(|(_, m)| m.contains(text)),
                "{name} {field}: {found:?}"
            );
        }
        let others = json!([{"name": "GOMEMLIMIT", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]);
        assert_eq!(
            env_findings(others, "1", "1Gi"),
            [],
            "ConfigMaps cannot be read at admission"
        );
    }

    fn resize(old: Value, new: Value) -> Vec<(Mode, String)> {
        resize_recorded(old, new, "")
    }

    fn resize_recorded(old: Value, new: Value, record: &str) -> Vec<(Mode, String)> {
        let (old, new) = (old.to_string(), new.to_string());
        let (old_view, new_view) = (
            PodSpecView::from_json(&old, "spec").unwrap(),
            PodSpecView::from_json(&new, "spec").unwrap(),
        );
        let mut out = Vec::new();
        let record = InjectedRecord::parse(record).unwrap_or_default();
        check_resize(&old_view, &new_view, &settings(), &record, &mut out);
        out.into_iter().map(|f| (f.mode, f.message)).collect()
    }

    fn pod(limits: Value, env: Value, resize_policy: Value) -> Value {
        json!({"containers": [{"name": "app", "env": env, "resizePolicy": resize_policy,
            "resources": {"limits": limits}}]})
    }

    #[test]
    fn resizing_below_the_frozen_env() {
        let env = json!([{"name": "GOMAXPROCS", "value": "4"}, {"name": "GOMEMLIMIT", "value": "3686MiB"}]);
        let before = pod(json!({"cpu": "4", "memory": "4Gi"}), env.clone(), json!([]));
        let lowered = resize(
            before.clone(),
            pod(
                json!({"cpu": "1", "memory": "512Mi"}),
                env.clone(),
                json!([]),
            ),
        );
        assert_eq!(modes(&lowered), [Mode::Warn, Mode::Enforce], "{lowered:?}");
        assert!(
            lowered[1].1.contains("env cannot change in a running pod"),
            "{lowered:?}"
        );
        assert!(
            lowered[0]
                .1
                .contains("CPU budget to 2, below the running GOMAXPROCS \"4\"")
        );
        let within = resize(
            before.clone(),
            pod(
                json!({"cpu": "4", "memory": "3700Mi"}),
                env.clone(),
                json!([]),
            ),
        );
        assert_eq!(within, []);
        let raised = resize(
            before.clone(),
            pod(json!({"cpu": "8", "memory": "8Gi"}), env.clone(), json!([])),
        );
        assert_eq!(raised, []);
        let removed = resize(before, pod(json!({}), env, json!([])));
        assert_eq!(removed, [], "no limit: nothing to be below");
    }

    #[test]
    fn resizing_a_derived_value_depends_on_the_resize_policy() {
        let env = field_ref(
            GOMEMLIMIT,
            json!({"resource": "limits.memory", "divisor": "1"}),
        );
        let old = json!({"memory": "2Gi"});
        let new = json!({"memory": "1Gi"});
        let not_required = resize(
            pod(old.clone(), env.clone(), json!([])),
            pod(new.clone(), env.clone(), json!([])),
        );
        assert_eq!(
            modes(&not_required),
            [Mode::Enforce],
            "the frozen value is the old 2Gi"
        );
        let restart = json!([{"resourceName": "memory", "restartPolicy": "RestartContainer"}]);
        let recomputed = resize(
            pod(old, env.clone(), restart.clone()),
            pod(new, env, restart),
        );
        assert_eq!(recomputed, [], "the kubelet recomputes it on restart");
    }

    #[test]
    fn unchanged_limits_are_not_judged_again() {
        let env = json!([{"name": "GOMEMLIMIT", "value": "4GiB"}]);
        let same = pod(json!({"cpu": "1", "memory": "4Gi"}), env.clone(), json!([]));
        let cpu_only = pod(json!({"cpu": "2", "memory": "4Gi"}), env, json!([]));
        assert_eq!(
            resize(same, cpu_only),
            [],
            "a CPU resize is not blamed for GOMEMLIMIT"
        );
    }

    #[test]
    fn pod_level_limits_resize_too() {
        let env = json!([{"name": "GOMEMLIMIT", "value": "900MiB"}]);
        let old = json!({"resources": {"limits": {"memory": "1Gi"}}, "containers": [{"name": "app", "env": env}]});
        let new = json!({"resources": {"limits": {"memory": "512Mi"}}, "containers": [{"name": "app", "env": env}]});
        assert_eq!(
            modes(&resize_recorded(old, new, "app: GOMEMLIMIT=900MiB")),
            [Mode::Enforce]
        );
    }
}
