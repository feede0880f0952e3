//! `go-runtime-injection`: the GOMAXPROCS and GOMEMLIMIT deployguard owns in each
//! container, recomputed from the current limits on every mutation.

use crate::policy::go_vars::{GO_VARS, GOMAXPROCS};
use crate::policy::gomemlimit::format_go_memlimit;
use crate::policy::injected::{InjectedRecord, format_record, is_container_name};
use crate::policy::podspec::{ContainerRole, ContainerView, PodSpecView};
use crate::policy::quantity::Quantity;
use crate::policy::{GoMaxProcsSettings, GoRuntimeSettings, Rounding};
use crate::text::Text;

/// Below this a GOMEMLIMIT makes the GC run almost without pause: never injected, and
/// denied when written.
pub const MIN_GOMEMLIMIT_BYTES: u64 = 1 << 20;

/// One change to a container's `env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvChange {
    /// Set the value of deployguard's own entry at `env[index]`.
    Replace { index: usize, value: String },
    /// Remove deployguard's own entry at `env[index]`: the limit behind it is gone, or
    /// the pod opted out.
    Remove { index: usize },
    /// Append a new entry.
    Add { name: &'static str, value: String },
}

/// The changes to one container, in the order they apply: replacements, removals from
/// the highest index down (so earlier indices stay valid), then additions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEnvPlan<'a> {
    pub role: ContainerRole,
    pub index: usize,
    pub name: Text<'a>,
    /// Whether the container already has an `env` array to append to.
    pub has_env: bool,
    pub changes: Vec<EnvChange>,
}

/// What to do with the `deployguard.io/injected` annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordChange {
    Keep,
    Write(String),
    Remove,
}

/// Every change one mutation makes. Empty when the env already matches the limits, so a
/// reinvocation changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoEnvPlan<'a> {
    pub containers: Vec<ContainerEnvPlan<'a>>,
    pub record: RecordChange,
}

impl GoEnvPlan<'_> {
    pub fn none() -> Self {
        GoEnvPlan {
            containers: Vec::new(),
            record: RecordChange::Keep,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.record == RecordChange::Keep
    }
}

/// The CPU limit that bounds the container: its own, else the pod-level one (a zero
/// limit bounds nothing).
pub fn cpu_limit(container: &ContainerView<'_>, pod: &PodSpecView<'_>) -> Option<Quantity> {
    nonzero(container.limits.cpu).or(nonzero(pod.pod_limits.cpu))
}

/// The memory limit that bounds the container, in bytes: its own, else the pod-level one.
pub fn memory_limit_bytes(container: &ContainerView<'_>, pod: &PodSpecView<'_>) -> Option<u128> {
    nonzero(container.limits.memory)
        .or(nonzero(pod.pod_limits.memory))
        .map(Quantity::units_ceil)
        .filter(|b| *b > 0)
}

fn nonzero(quantity: Option<Quantity>) -> Option<Quantity> {
    quantity.filter(|q| !q.is_zero())
}

/// GOMAXPROCS for a CPU amount: Go 1.25's own rule `max(2, ceil(cores))` by default.
pub fn gomaxprocs_for(cpu: Quantity, settings: &GoMaxProcsSettings) -> u128 {
    let millis = cpu.millis_ceil();
    let cores = match settings.rounding {
        Rounding::Ceil => millis.div_ceil(1000),
        Rounding::Floor => millis / 1000,
    };
    cores.max(u128::from(settings.minimum))
}

/// The value deployguard gives `name` in this container from its current limits, or
/// `None` when no limit justifies one.
fn desired_value(
    name: &str,
    container: &ContainerView<'_>,
    pod: &PodSpecView<'_>,
    settings: &GoRuntimeSettings,
) -> Option<String> {
    if name == GOMAXPROCS {
        if !settings.gomaxprocs.inject {
            return None;
        }
        let fallback = || {
            settings
                .gomaxprocs
                .fallback_to_request
                .then(|| container.requests.cpu.or(pod.pod_requests.cpu))
                .flatten()
                .filter(|q| !q.is_zero())
        };
        let cpu = cpu_limit(container, pod).or_else(fallback)?;
        return Some(gomaxprocs_for(cpu, &settings.gomaxprocs).to_string());
    }
    if !settings.gomemlimit.inject {
        return None;
    }
    let limit = memory_limit_bytes(container, pod)?;
    let soft = soft_memory_limit(limit, settings.gomemlimit.ratio_millionths);
    (soft >= MIN_GOMEMLIMIT_BYTES).then(|| format_go_memlimit(soft))
}

/// The entry at `env[index]` that deployguard owns for `name`: the only entry of that
/// name, a literal whose value the record holds for this container.
pub fn owned_entry<'c>(
    container: &'c ContainerView<'_>,
    name: &str,
    record: &InjectedRecord<'_>,
) -> Option<(usize, &'c str)> {
    container
        .sole_literal(name)
        .filter(|(_, value)| record.value(&container.name, name) == Some(*value))
}

/// Recomputes deployguard's variables in every container. `injected(container)` says
/// whether the container is to carry them at all (opt-outs leave only removals).
pub fn plan<'a>(
    pod: &PodSpecView<'a>,
    settings: &GoRuntimeSettings,
    current_record: Option<&str>,
    injected: impl Fn(&ContainerView<'_>) -> bool,
) -> GoEnvPlan<'a> {
    let record = current_record
        .and_then(InjectedRecord::parse)
        .unwrap_or_default();
    let mut containers = Vec::new();
    let mut owned_after: Vec<(&str, &'static str, String)> = Vec::new();
    for container in &pod.containers {
        // A name the record cannot hold, or one it cannot tell apart (two containers of
        // one name, which the API server rejects), could never be recognised as ours again.
        let unique = pod
            .containers
            .iter()
            .filter(|c| c.name == container.name)
            .count()
            == 1;
        let wanted = injected(container) && is_container_name(&container.name) && unique;
        let mut replaces = Vec::new();
        let mut removals = Vec::new();
        let mut additions = Vec::new();
        for name in GO_VARS {
            let owned = owned_entry(container, name, &record);
            let users_own = owned.is_none() && container.sets_env(name);
            let desired = (wanted && !users_own)
                .then(|| desired_value(name, container, pod, settings))
                .flatten();
            match (owned, desired) {
                (Some((_, current)), Some(value)) if current == value => {
                    owned_after.push((&container.name, name, value));
                }
                (Some((index, _)), Some(value)) => {
                    replaces.push(EnvChange::Replace {
                        index,
                        value: value.clone(),
                    });
                    owned_after.push((&container.name, name, value));
                }
                (Some((index, _)), None) => removals.push(index),
                (None, Some(value)) => {
                    additions.push(EnvChange::Add {
                        name,
                        value: value.clone(),
                    });
                    owned_after.push((&container.name, name, value));
                }
                (None, None) => {}
            }
        }
        removals.sort_unstable_by(|a, b| b.cmp(a));
        let mut changes = replaces;
        changes.extend(
            removals
                .into_iter()
                .map(|index| EnvChange::Remove { index }),
        );
        changes.extend(additions);
        if !changes.is_empty() {
            containers.push(ContainerEnvPlan {
                role: container.role,
                index: container.index,
                name: container.name.clone(),
                has_env: container.has_env,
                changes,
            });
        }
    }
    let written = format_record(
        owned_after
            .iter()
            .map(|(container, name, value)| (*container, *name, value.as_str())),
    );
    let record = match current_record {
        Some(current) if current == written => RecordChange::Keep,
        // One that does not parse records nothing: it goes like an empty record.
        Some(_) if written.is_empty() => RecordChange::Remove,
        None if written.is_empty() => RecordChange::Keep,
        _ => RecordChange::Write(written),
    };
    GoEnvPlan { containers, record }
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

    /// A container `app` with these limits and env, planned against `record`.
    fn replan(limits: Value, env: Value, record: Option<&str>) -> GoEnvPlan<'static> {
        let spec: &'static Value = Box::leak(Box::new(
            json!({"containers": [{"name": "app", "resources": {"limits": limits}, "env": env}]}),
        ));
        let json: &'static str = Box::leak(spec.to_string().into_boxed_str());
        let view = PodSpecView::from_json(json, "spec").unwrap();
        plan(&view, &settings(), record, |_| true)
    }

    fn owned_env() -> Value {
        json!([{"name": "KEEP", "value": "x"}, {"name": "GOMAXPROCS", "value": "4"}, {"name": "GOMEMLIMIT", "value": "3686MiB"}])
    }

    const RECORD: &str = "app: GOMAXPROCS=4 GOMEMLIMIT=3686MiB";

    #[test]
    fn unchanged_limits_change_nothing() {
        let same = replan(
            json!({"cpu": "4", "memory": "4Gi"}),
            owned_env(),
            Some(RECORD),
        );
        assert!(same.is_empty(), "{same:?}");
    }

    #[test]
    fn lowered_limits_replace_owned_values_and_rewrite_the_record() {
        let lowered = replan(
            json!({"cpu": "1", "memory": "512Mi"}),
            owned_env(),
            Some(RECORD),
        );
        assert_eq!(
            lowered.containers[0].changes,
            [
                EnvChange::Replace {
                    index: 1,
                    value: "2".into()
                },
                EnvChange::Replace {
                    index: 2,
                    value: "460MiB".into()
                },
            ]
        );
        assert_eq!(
            lowered.record,
            RecordChange::Write("app: GOMAXPROCS=2 GOMEMLIMIT=460MiB".into())
        );
    }

    #[test]
    fn a_removed_limit_removes_its_variable_from_the_highest_index_down() {
        let no_limits = replan(json!({}), owned_env(), Some(RECORD));
        assert_eq!(
            no_limits.containers[0].changes,
            [
                EnvChange::Remove { index: 2 },
                EnvChange::Remove { index: 1 }
            ]
        );
        assert_eq!(no_limits.record, RecordChange::Remove);
        let memory_only = replan(json!({"memory": "4Gi"}), owned_env(), Some(RECORD));
        assert_eq!(
            memory_only.containers[0].changes,
            [EnvChange::Remove { index: 1 }]
        );
        assert_eq!(
            memory_only.record,
            RecordChange::Write("app: GOMEMLIMIT=3686MiB".into())
        );
    }

    #[test]
    fn the_users_values_are_never_touched() {
        // Same name, another value than the record: the user changed it, it is theirs now.
        let edited = json!([{"name": "GOMAXPROCS", "value": "8"}, {"name": "GOMEMLIMIT", "value": "3686MiB"}]);
        let lowered = replan(json!({"cpu": "1", "memory": "512Mi"}), edited, Some(RECORD));
        assert_eq!(
            lowered.containers[0].changes,
            [EnvChange::Replace {
                index: 1,
                value: "460MiB".into()
            }]
        );
        assert_eq!(
            lowered.record,
            RecordChange::Write("app: GOMEMLIMIT=460MiB".into())
        );
        // No record, or one that does not parse: nothing is ours.
        for record in [
            None,
            Some("app GOMAXPROCS=4"),
            Some("app: GOMAXPROCS=4 GOMAXPROCS=4"),
        ] {
            let plan = replan(json!({"cpu": "1", "memory": "512Mi"}), owned_env(), record);
            assert!(plan.containers.is_empty(), "{record:?}: {plan:?}");
        }
        // Duplicate entries of one name are the user's.
        let twice =
            json!([{"name": "GOMAXPROCS", "value": "4"}, {"name": "GOMAXPROCS", "value": "4"}]);
        let plan = replan(json!({"cpu": "1"}), twice, Some("app: GOMAXPROCS=4"));
        assert_eq!(
            (plan.containers.len(), plan.record),
            (0, RecordChange::Remove)
        );
    }

    #[test]
    fn an_opt_out_removes_only_what_is_owned() {
        let spec = json!({"containers": [{"name": "app", "resources": {"limits": {"cpu": "4", "memory": "4Gi"}},
            "env": owned_env()}]});
        let json = spec.to_string();
        let view = PodSpecView::from_json(&json, "spec").unwrap();
        let off = plan(&view, &settings(), Some(RECORD), |_| false);
        assert_eq!(
            off.containers[0].changes,
            [
                EnvChange::Remove { index: 2 },
                EnvChange::Remove { index: 1 }
            ]
        );
        assert_eq!(off.record, RecordChange::Remove);
        let garbage = plan(&view, &settings(), Some("garbage"), |_| false);
        assert!(garbage.containers.is_empty(), "nothing is owned");
        assert_eq!(
            garbage.record,
            RecordChange::Remove,
            "and the annotation says so"
        );
    }

    #[test]
    fn containers_the_record_cannot_name_are_not_injected() {
        // Found by fuzzing: the API server rejects such names, but a review must still be idempotent.
        let spec = json!({"containers": [{"name": "q\"o", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(inject(spec), []);
        let limited =
            json!({"name": "twice", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}});
        assert_eq!(inject(json!({"containers": [limited, limited]})), []);
    }

    #[test]
    fn no_gomemlimit_under_one_mebibyte() {
        let got = inject(limits(json!("1"), json!("1Mi")));
        assert_eq!(got, pairs(&[("app/GOMAXPROCS", "2")]));
        assert_eq!(inject(limits(json!("1"), json!("2Mi")))[1].1, "1MiB");
    }

    fn settings() -> GoRuntimeSettings {
        Policy::default().go_runtime
    }

    /// The variables a first mutation adds, as `container/NAME` and value.
    fn inject_with(spec: Value, settings: &GoRuntimeSettings) -> Vec<(String, String)> {
        let json = spec.to_string();
        let view = PodSpecView::from_json(&json, "spec").unwrap();
        plan(&view, settings, None, |_| true)
            .containers
            .into_iter()
            .flat_map(|c| {
                c.changes.into_iter().map(move |change| match change {
                    EnvChange::Add { name, value } => (format!("{}/{name}", c.name), value),
                    other => panic!("a first mutation only adds: {other:?}"),
                })
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
}
