//! `liveness-probe`, `readiness-probe`, `probe-port`, `probe-settings`.

use crate::policy::finding::{Finding, Mode, RuleId};
use crate::policy::podspec::{ContainerView, ProbePort, ProbeView};
use crate::policy::probe_defaults::same_stored_probe;

/// A liveness probe that restarts a container sooner than this after trouble starts
/// turns a slow moment into a restart loop.
const MIN_LIVENESS_GRACE_SECONDS: i64 = 10;

pub fn check(container: &ContainerView<'_>, out: &mut Vec<Finding>) {
    let found = |rule, mode, message: String| Finding {
        rule,
        mode,
        container: container.name.to_string(),
        message,
    };
    if container.liveness.is_none() {
        out.push(found(
            RuleId::LivenessProbe,
            Mode::Enforce,
            "no livenessProbe — add one so the kubelet restarts the container when it stops responding".to_owned(),
        ));
    }
    if container.readiness.is_none() {
        out.push(found(
            RuleId::ReadinessProbe,
            Mode::Enforce,
            "no readinessProbe — add one so Services only send traffic to a container that is ready".to_owned(),
        ));
    }
    for (field, probe) in container.probes() {
        for port in probe.ports.iter().flatten() {
            let ProbePort::Name(port) = port else {
                continue;
            };
            if !container.port_names.contains(port) {
                out.push(found(
                    RuleId::ProbePort,
                    Mode::Enforce,
                    format!(
                        "{field} uses port \"{port}\", which is not the name of a containerPort of this container — \
                         name the port in ports[] or use its number"
                    ),
                ));
            }
        }
    }
    check_settings(container, &found, out);
}

/// A probe's JSON as a value (a probe is a few hundred bytes, compared rarely); text that
/// does not parse cannot occur, as it was read once already.
fn check_settings(
    container: &ContainerView<'_>,
    found: &impl Fn(RuleId, Mode, String) -> Finding,
    out: &mut Vec<Finding>,
) {
    if let (Some(liveness), Some(readiness)) = (&container.liveness, &container.readiness) {
        // Compared as the API server stores them, so the CLI and the webhook agree.
        if same_stored_probe(liveness.raw, readiness.raw) {
            out.push(found(
                RuleId::ProbeSettings,
                Mode::Enforce,
                "livenessProbe is identical to readinessProbe (once the API server's defaults are applied) — \
                 whatever takes the container out of rotation also restarts it; make the liveness check \
                 cheaper or more tolerant"
                    .to_owned(),
            ));
        }
    }
    for (field, probe) in container.probes() {
        if probe.timeout_seconds >= probe.period_seconds {
            out.push(found(
                RuleId::ProbeSettings,
                Mode::Enforce,
                format!(
                    "{field} timeoutSeconds ({}) is not below periodSeconds ({}) — the kubelet runs this probe \
                     one attempt at a time, so an attempt that hangs until its timeout holds up the next one and \
                     the probe falls behind its period; make timeoutSeconds shorter than periodSeconds",
                    probe.timeout_seconds, probe.period_seconds
                ),
            ));
        }
    }
    if let Some(liveness) = &container.liveness {
        if let Some(window) = restart_window(liveness).filter(|w| *w < MIN_LIVENESS_GRACE_SECONDS) {
            out.push(found(
                RuleId::ProbeSettings,
                Mode::Enforce,
                format!(
                    "livenessProbe restarts the container within {window}s of trouble (failureThreshold {} \
                     failed attempts, periodSeconds {} apart) — a short stall becomes a restart; allow at least \
                     {MIN_LIVENESS_GRACE_SECONDS}s",
                    liveness.failure_threshold, liveness.period_seconds
                ),
            ));
        }
    }
}

fn restart_window(probe: &ProbeView<'_>) -> Option<i64> {
    probe.period_seconds.checked_mul(probe.failure_threshold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::podspec::PodSpecView;
    use serde_json::{Value, json};

    fn findings(container: Value) -> Vec<(RuleId, String)> {
        let spec = json!({"containers": [container]});
        let json = spec.to_string();
        let view = PodSpecView::from_json(&json, "spec").unwrap();
        let mut out = Vec::new();
        check(&view.containers[0], &mut out);
        out.into_iter().map(|f| (f.rule, f.message)).collect()
    }

    fn rules(container: Value) -> Vec<RuleId> {
        findings(container)
            .into_iter()
            .map(|(rule, _)| rule)
            .collect()
    }

    #[test]
    fn missing_probes() {
        assert_eq!(
            rules(json!({"name": "app"})),
            [RuleId::LivenessProbe, RuleId::ReadinessProbe]
        );
    }

    #[test]
    fn healthy_probes_pass() {
        let container = json!({
            "name": "app",
            "ports": [{"name": "http", "containerPort": 8080}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
        });
        assert_eq!(rules(container), []);
    }

    #[test]
    fn named_port_must_exist() {
        let container = json!({
            "name": "app",
            "ports": [{"name": "web", "containerPort": 8080}],
            "livenessProbe": {"tcpSocket": {"port": "http"}},
            "readinessProbe": {"httpGet": {"path": "/", "port": "web"}},
            "startupProbe": {"httpGet": {"path": "/", "port": "admin"}},
        });
        let found = findings(container);
        assert_eq!(
            found
                .iter()
                .filter(|(r, _)| *r == RuleId::ProbePort)
                .count(),
            2
        );
        assert!(
            found[0].1.contains("livenessProbe uses port \"http\""),
            "{found:?}"
        );
    }

    #[test]
    fn numeric_port_strings_are_numbers() {
        let container = json!({
            "name": "app",
            "livenessProbe": {"tcpSocket": {"port": "8080"}},
            "readinessProbe": {"tcpSocket": {"port": 8080}},
        });
        assert_eq!(rules(container), []);
    }

    #[test]
    fn identical_liveness_and_readiness() {
        let probe = json!({"httpGet": {"path": "/", "port": 80}});
        let container = json!({"name": "app", "livenessProbe": probe, "readinessProbe": probe});
        assert_eq!(rules(container), [RuleId::ProbeSettings]);
    }

    #[test]
    fn identical_once_defaulted() {
        let liveness =
            json!({"initialDelaySeconds": 15, "periodSeconds": 10, "grpc": {"port": 7070}});
        let readiness = json!({"initialDelaySeconds": 15, "grpc": {"port": 7070}});
        let container =
            json!({"name": "app", "livenessProbe": liveness, "readinessProbe": readiness});
        assert_eq!(rules(container), [RuleId::ProbeSettings]);
        let distinct = json!({"name": "app", "livenessProbe": {"httpGet": {"port": 80}},
            "readinessProbe": {"httpGet": {"port": 80, "path": "/ready"}}});
        assert_eq!(rules(distinct), []);
    }

    #[test]
    fn timeout_not_below_period() {
        let container = json!({
            "name": "app",
            "livenessProbe": {"exec": {"command": ["true"]}, "timeoutSeconds": 10},
            "readinessProbe": {"exec": {"command": ["check"]}, "timeoutSeconds": 5, "periodSeconds": 5},
        });
        let found = findings(container);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[1]
                .1
                .contains("readinessProbe timeoutSeconds (5) is not below periodSeconds (5)")
        );
    }

    #[test]
    fn liveness_restart_window() {
        let fast = json!({"name": "app", "readinessProbe": {"tcpSocket": {"port": 1}},
            "livenessProbe": {"tcpSocket": {"port": 2}, "periodSeconds": 3, "failureThreshold": 3}});
        let found = findings(fast);
        assert_eq!(found.len(), 1);
        assert!(found[0].1.contains("within 9s of trouble"), "{found:?}");
        let exactly_ten = json!({"name": "app", "readinessProbe": {"tcpSocket": {"port": 1}},
            "livenessProbe": {"tcpSocket": {"port": 2}, "periodSeconds": 5, "failureThreshold": 2}});
        assert_eq!(rules(exactly_ten), []);
        let defaults = json!({"name": "app", "readinessProbe": {"tcpSocket": {"port": 1}},
            "livenessProbe": {"tcpSocket": {"port": 2}}});
        assert_eq!(rules(defaults), [], "defaults give 30s");
        let zeros = json!({"name": "app", "readinessProbe": {"tcpSocket": {"port": 1}, "timeoutSeconds": 0},
            "livenessProbe": {"tcpSocket": {"port": 2}, "periodSeconds": 0, "failureThreshold": 0}});
        assert_eq!(
            rules(zeros),
            [],
            "Kubernetes replaces zero timings with its defaults"
        );
    }
}
