//! `go-env` (what the user wrote) and `go-runtime-injection` (what we add).

use crate::policy::finding::{Finding, Mode, RuleId};
use crate::policy::gomemlimit::{GoMemLimit, format_go_memlimit, parse_go_memlimit};
use crate::policy::podspec::{ContainerRole, ContainerView, PodSpecView};
use crate::policy::quantity::Quantity;
use crate::policy::{GoMaxProcsSettings, GoRuntimeSettings, Rounding};

pub const GOMAXPROCS: &str = "GOMAXPROCS";
pub const GOMEMLIMIT: &str = "GOMEMLIMIT";

/// An environment variable the mutation adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedVar {
    pub name: &'static str,
    pub value: String,
}

/// The variables to add to one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInjection<'a> {
    pub role: ContainerRole,
    pub index: usize,
    pub name: &'a str,
    /// Whether the container already has an `env` array to append to.
    pub has_env: bool,
    pub vars: Vec<InjectedVar>,
}

/// The CPU limit that bounds the container: its own, else the pod-level one.
fn cpu_limit(container: &ContainerView<'_>, pod: &PodSpecView<'_>) -> Option<Quantity> {
    container
        .limits
        .cpu
        .or(pod.pod_limits.cpu)
        .filter(|q| !q.is_zero())
}

fn memory_limit_bytes(container: &ContainerView<'_>, pod: &PodSpecView<'_>) -> Option<u128> {
    container
        .limits
        .memory
        .or(pod.pod_limits.memory)
        .map(Quantity::units_ceil)
        .filter(|b| *b > 0)
}

/// GOMAXPROCS for a CPU amount: Go 1.25's own rule `max(2, ceil(cores))` by default.
fn gomaxprocs_for(cpu: Quantity, settings: &GoMaxProcsSettings) -> u128 {
    let millis = cpu.millis_ceil();
    let cores = match settings.rounding {
        Rounding::Ceil => millis.div_ceil(1000),
        Rounding::Floor => millis / 1000,
    };
    cores.max(u128::from(settings.minimum))
}

pub fn check_env(
    container: &ContainerView<'_>,
    pod: &PodSpecView<'_>,
    settings: &GoRuntimeSettings,
    out: &mut Vec<Finding>,
) {
    let mut found = |mode, message: String| {
        out.push(Finding {
            rule: RuleId::GoEnv,
            mode,
            container: container.name.to_owned(),
            message,
        })
    };
    for var in &container.env {
        let Some(value) = var.value else { continue };
        match var.name {
            GOMEMLIMIT => match parse_go_memlimit(value) {
                Err(error) => found(
                    Mode::Enforce,
                    format!(
                        "GOMEMLIMIT {error}: the Go runtime aborts at start-up — write an integer with an optional \
                         B, KiB, MiB, GiB or TiB suffix (e.g. 900MiB), or off"
                    ),
                ),
                Ok(GoMemLimit::Bytes(bytes)) => {
                    if let Some(limit) =
                        memory_limit_bytes(container, pod).filter(|l| u128::from(bytes) >= *l)
                    {
                        found(
                            Mode::Enforce,
                            format!(
                                "GOMEMLIMIT {value:?} ({bytes} bytes) is not below the memory limit ({limit} bytes) — \
                                 the GC cannot keep the container from being OOM-killed; set it to about 90% of the \
                                 limit or remove it and let deployguard set it"
                            ),
                        );
                    }
                }
                Ok(GoMemLimit::Unset | GoMemLimit::Off) => {}
            },
            GOMAXPROCS => match parse_go_int32(value) {
                Some(procs) if procs > 0 => {
                    let budget = cpu_limit(container, pod)
                        .map(|cpu| gomaxprocs_for(cpu, &settings.gomaxprocs));
                    if let Some(budget) = budget.filter(|b| u128::from(procs.unsigned_abs()) > *b) {
                        found(
                            Mode::Warn,
                            format!(
                                "GOMAXPROCS {procs} exceeds the CPU budget of {budget} from the CPU limit — it \
                                 invites CPU throttling; set it to {budget} or less, or remove it and let deployguard \
                                 set it"
                            ),
                        );
                    }
                }
                _ => found(
                    Mode::Warn,
                    format!(
                        "GOMAXPROCS {value:?} is not a positive integer, so Go ignores it — set a positive integer \
                         or remove it"
                    ),
                ),
            },
            _ => {}
        }
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

/// The variables to inject into one container, or `None` when it needs none.
pub fn injection<'a>(
    container: &ContainerView<'a>,
    pod: &PodSpecView<'_>,
    settings: &GoRuntimeSettings,
) -> Option<ContainerInjection<'a>> {
    let mut vars = Vec::new();
    if settings.gomaxprocs.inject && !container.sets_env(GOMAXPROCS) {
        let fallback = || {
            settings
                .gomaxprocs
                .fallback_to_request
                .then(|| container.requests.cpu.or(pod.pod_requests.cpu))
                .flatten()
                .filter(|q| !q.is_zero())
        };
        if let Some(cpu) = cpu_limit(container, pod).or_else(fallback) {
            vars.push(InjectedVar {
                name: GOMAXPROCS,
                value: gomaxprocs_for(cpu, &settings.gomaxprocs).to_string(),
            });
        }
    }
    if settings.gomemlimit.inject && !container.sets_env(GOMEMLIMIT) {
        if let Some(limit) = memory_limit_bytes(container, pod) {
            let soft = soft_memory_limit(limit, settings.gomemlimit.ratio_millionths);
            if soft > 0 {
                vars.push(InjectedVar {
                    name: GOMEMLIMIT,
                    value: format_go_memlimit(soft),
                });
            }
        }
    }
    (!vars.is_empty()).then_some(ContainerInjection {
        role: container.role,
        index: container.index,
        name: container.name,
        has_env: container.has_env,
        vars,
    })
}

/// floor(limit × ratio), capped at Go's largest GOMEMLIMIT (math.MaxInt64): a limit
/// written as, say, `1e33` must not overflow the multiplication.
fn soft_memory_limit(limit_bytes: u128, ratio_millionths: u32) -> u64 {
    const GO_MAX: u64 = i64::MAX as u64;
    let soft = limit_bytes
        .checked_mul(u128::from(ratio_millionths))
        .map_or(u128::MAX, |product| product / 1_000_000);
    u64::try_from(soft).map_or(GO_MAX, |soft| soft.min(GO_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use serde_json::{Value, json};

    fn settings() -> GoRuntimeSettings {
        Policy::default().go_runtime
    }

    fn inject_with(spec: Value, settings: &GoRuntimeSettings) -> Vec<(String, String)> {
        let view = PodSpecView::read(&spec, "spec").unwrap();
        view.containers
            .iter()
            .filter_map(|c| injection(c, &view, settings))
            .flat_map(|i| {
                i.vars
                    .into_iter()
                    .map(move |v| (format!("{}/{}", i.name, v.name), v.value))
            })
            .collect()
    }

    fn inject(spec: Value) -> Vec<(String, String)> {
        inject_with(spec, &settings())
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn limits(cpu: Value, memory: Value) -> Value {
        json!({"containers": [{"name": "app", "resources": {"limits": {"cpu": cpu, "memory": memory}}}]})
    }

    #[test]
    fn gomaxprocs_follows_go_125() {
        for (cpu, procs) in [
            ("500m", "2"),
            ("2500m", "3"),
            ("1", "2"),
            ("4", "4"),
            ("3.1", "4"),
        ] {
            let got = inject(limits(json!(cpu), json!("1Gi")));
            assert_eq!(got[0], ("app/GOMAXPROCS".into(), procs.into()), "{cpu}");
        }
    }

    #[test]
    fn gomaxprocs_floor_minimum_one_is_automaxprocs() {
        let mut s = settings();
        s.gomaxprocs.rounding = Rounding::Floor;
        s.gomaxprocs.minimum = 1;
        for (cpu, procs) in [("500m", "1"), ("2500m", "2"), ("4", "4")] {
            assert_eq!(
                inject_with(limits(json!(cpu), json!("1Gi")), &s)[0].1,
                procs,
                "{cpu}"
            );
        }
    }

    #[test]
    fn gomemlimit_is_ninety_percent_in_go_syntax() {
        assert_eq!(inject(limits(json!("1"), json!("1Gi")))[1].1, "921MiB");
        assert_eq!(inject(limits(json!("1"), json!("10Gi")))[1].1, "9GiB");
        assert_eq!(inject(limits(json!("1"), json!("128Mi")))[1].1, "115MiB");
        assert_eq!(inject(limits(json!("1"), json!(1073741824)))[1].1, "921MiB");
        assert_eq!(inject(limits(json!("1"), json!("1G")))[1].1, "858MiB");
    }

    #[test]
    fn huge_memory_limits_cap_at_gos_largest_gomemlimit() {
        // 1e33 bytes overflowed limit × ratio before (found by the fuzzer).
        let capped = format_go_memlimit(i64::MAX as u64);
        for memory in [
            "1e33",
            "10Ei",
            "100Ei",
            "340282366920938463463374607431768211455",
        ] {
            assert_eq!(
                inject(limits(json!("1"), json!(memory)))[1].1,
                capped,
                "{memory}"
            );
        }
        assert_eq!(soft_memory_limit(u128::MAX, 1_000_000), i64::MAX as u64);
        assert_eq!(soft_memory_limit(1_000_000, 1), 1);
    }

    #[test]
    fn user_values_are_never_overridden() {
        let spec = json!({"containers": [{"name": "app",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
            "env": [{"name": "GOMAXPROCS", "value": "1"},
                    {"name": "GOMEMLIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}]}]});
        assert_eq!(inject(spec), []);
    }

    #[test]
    fn no_cpu_limit_injects_no_gomaxprocs_unless_falling_back() {
        let spec = json!({"containers": [{"name": "app",
            "resources": {"requests": {"cpu": "3"}, "limits": {"memory": "100Mi"}}}]});
        assert_eq!(inject(spec.clone()), pairs(&[("app/GOMEMLIMIT", "90MiB")]));
        let mut s = settings();
        s.gomaxprocs.fallback_to_request = true;
        assert_eq!(
            inject_with(spec, &s),
            pairs(&[("app/GOMAXPROCS", "3"), ("app/GOMEMLIMIT", "90MiB")])
        );
    }

    #[test]
    fn pod_level_limits_feed_containers_without_their_own() {
        let spec = json!({"resources": {"limits": {"cpu": "4", "memory": "2Gi"}},
            "containers": [{"name": "a"}, {"name": "b", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(
            inject(spec),
            pairs(&[
                ("a/GOMAXPROCS", "4"),
                ("a/GOMEMLIMIT", "1843MiB"),
                ("b/GOMAXPROCS", "2"),
                ("b/GOMEMLIMIT", "921MiB")
            ])
        );
    }

    fn env_findings(env: Value, cpu: &str, memory: &str) -> Vec<(Mode, String)> {
        let spec = json!({"containers": [{"name": "app", "env": env,
            "resources": {"limits": {"cpu": cpu, "memory": memory}}}]});
        let view = PodSpecView::read(&spec, "spec").unwrap();
        let mut out = Vec::new();
        check_env(&view.containers[0], &view, &settings(), &mut out);
        out.into_iter().map(|f| (f.mode, f.message)).collect()
    }

    #[test]
    fn go_env_gomemlimit() {
        let bad_syntax = env_findings(
            json!([{"name": "GOMEMLIMIT", "value": "768Mi"}]),
            "1",
            "1Gi",
        );
        assert_eq!(bad_syntax.len(), 1);
        assert_eq!(bad_syntax[0].0, Mode::Enforce);
        assert!(
            bad_syntax[0].1.contains("\"768Mi\" is not valid Go syntax"),
            "{bad_syntax:?}"
        );
        let at_limit = env_findings(json!([{"name": "GOMEMLIMIT", "value": "1GiB"}]), "1", "1Gi");
        assert_eq!(at_limit.len(), 1);
        assert!(at_limit[0].1.contains("not below the memory limit"));
        for fine in ["900MiB", "off", "", "0"] {
            assert_eq!(
                env_findings(json!([{"name": "GOMEMLIMIT", "value": fine}]), "1", "1Gi"),
                [],
                "{fine}"
            );
        }
    }

    #[test]
    fn go_env_gomaxprocs() {
        let not_positive = env_findings(json!([{"name": "GOMAXPROCS", "value": "0"}]), "1", "1Gi");
        assert_eq!(not_positive[0].0, Mode::Warn);
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
        let value_from = json!([{"name": "GOMAXPROCS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]);
        assert_eq!(env_findings(value_from, "1", "1Gi"), []);
    }
}
