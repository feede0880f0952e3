//! Findings: what a rule found, at which mode it is reported.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a finding is acted on. Ordered from weakest to strictest so that
/// capping a mode is `min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The rule is not evaluated.
    Off,
    /// Allowed; logged and counted only.
    Audit,
    /// Allowed; returned as an admission warning.
    Warn,
    /// Denied.
    Enforce,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Off, Mode::Audit, Mode::Warn, Mode::Enforce];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Audit => "audit",
            Mode::Warn => "warn",
            Mode::Enforce => "enforce",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stable rule identifiers: they appear in config, messages, annotations and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    LivenessProbe,
    ReadinessProbe,
    ProbePort,
    ProbeSettings,
    CpuLimit,
    MemoryLimit,
    CpuRequest,
    MemoryRequest,
    ResourceUnits,
    LimitRange,
    GoEnv,
    GoRuntimeInjection,
    ManifestTypo,
}

impl RuleId {
    /// Every rule, in the order the policy file and the docs list them.
    pub const ALL: [RuleId; 13] = [
        RuleId::LivenessProbe,
        RuleId::ReadinessProbe,
        RuleId::ProbePort,
        RuleId::ProbeSettings,
        RuleId::CpuLimit,
        RuleId::MemoryLimit,
        RuleId::CpuRequest,
        RuleId::MemoryRequest,
        RuleId::ResourceUnits,
        RuleId::LimitRange,
        RuleId::GoEnv,
        RuleId::GoRuntimeInjection,
        RuleId::ManifestTypo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::LivenessProbe => "liveness-probe",
            RuleId::ReadinessProbe => "readiness-probe",
            RuleId::ProbePort => "probe-port",
            RuleId::ProbeSettings => "probe-settings",
            RuleId::CpuLimit => "cpu-limit",
            RuleId::MemoryLimit => "memory-limit",
            RuleId::CpuRequest => "cpu-request",
            RuleId::MemoryRequest => "memory-request",
            RuleId::ResourceUnits => "resource-units",
            RuleId::LimitRange => "limit-range",
            RuleId::GoEnv => "go-env",
            RuleId::GoRuntimeInjection => "go-runtime-injection",
            RuleId::ManifestTypo => "manifest-typo",
        }
    }

    pub fn parse(id: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|rule| rule.as_str() == id)
    }

    /// Probe rules do not apply to plain init containers (Kubernetes forbids probes
    /// there) nor to batch pods.
    pub fn is_probe_rule(self) -> bool {
        matches!(
            self,
            RuleId::LivenessProbe
                | RuleId::ReadinessProbe
                | RuleId::ProbePort
                | RuleId::ProbeSettings
        )
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a rule found wrong with one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: RuleId,
    pub mode: Mode,
    pub container: String,
    pub message: String,
}

impl Finding {
    /// The form used in denials and warnings:
    /// `container "NAME": what is wrong — how to fix (rule-id)`; `pod: …` for findings
    /// about the whole pod (no container).
    pub fn describe(&self) -> String {
        format!("{}: {} ({})", self.subject(), self.message, self.rule)
    }

    /// `container "NAME"`, or `pod` for a finding about the whole pod (`manifest` for a
    /// misspelt kind: there is no pod).
    pub fn subject(&self) -> String {
        if self.container.is_empty() && self.rule == RuleId::ManifestTypo {
            "manifest".to_owned()
        } else if self.container.is_empty() {
            "pod".to_owned()
        } else {
            format!("container \"{}\"", self.container)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_round_trip() {
        for rule in RuleId::ALL {
            assert_eq!(RuleId::parse(rule.as_str()), Some(rule));
        }
        assert_eq!(RuleId::parse("cpu-limits"), None);
    }

    #[test]
    fn modes_order_from_weakest_to_strictest() {
        assert!(Mode::Off < Mode::Audit && Mode::Audit < Mode::Warn && Mode::Warn < Mode::Enforce);
        assert_eq!(Mode::Enforce.min(Mode::Warn), Mode::Warn);
    }
}
