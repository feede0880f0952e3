//! What each rule checks and how to satisfy it, for the formats that describe rules
//! (SARIF's `rules`, PolicyReport categories). The match is exhaustive so that a new
//! rule cannot ship without its help text.

use crate::policy::RuleId;

pub struct RuleHelp {
    /// SARIF's `name`: the id in UpperCamelCase.
    pub name: &'static str,
    pub summary: &'static str,
    pub help: &'static str,
    pub category: &'static str,
}

pub fn help(rule: RuleId) -> RuleHelp {
    let (name, summary, help, category) = match rule {
        RuleId::LivenessProbe => (
            "LivenessProbe",
            "Containers have a livenessProbe",
            "Add a livenessProbe so the kubelet restarts the container when it stops responding. \
             Plain init containers and the pods of Jobs and CronJobs are not checked.",
            "Probes",
        ),
        RuleId::ReadinessProbe => (
            "ReadinessProbe",
            "Containers have a readinessProbe",
            "Add a readinessProbe so Services only send traffic to a container that is ready.",
            "Probes",
        ),
        RuleId::ProbePort => (
            "ProbePort",
            "A probe's named port is a containerPort of its container",
            "Name the port in the container's `ports` list, or use the port number, so the \
             probe reaches the process it checks.",
            "Probes",
        ),
        RuleId::ProbeSettings => (
            "ProbeSettings",
            "Probe settings that restart or stall containers",
            "Make liveness differ from readiness (as the API server stores them, its defaults \
             applied), keep timeoutSeconds below periodSeconds, and give liveness enough \
             failed attempts that a short stall is not a restart.",
            "Probes",
        ),
        RuleId::CpuLimit => (
            "CpuLimit",
            "Containers have a CPU limit",
            "Set resources.limits.cpu (or a pod-level spec.resources.limits.cpu), or let a \
             LimitRange of the namespace default it.",
            "Resources",
        ),
        RuleId::MemoryLimit => (
            "MemoryLimit",
            "Containers have a memory limit",
            "Set resources.limits.memory (or a pod-level spec.resources.limits.memory), or let \
             a LimitRange of the namespace default it.",
            "Resources",
        ),
        RuleId::CpuRequest => (
            "CpuRequest",
            "Containers have an effective CPU request",
            "Set resources.requests.cpu (a limit alone counts: Kubernetes copies it into the \
             request) so the scheduler reserves CPU.",
            "Resources",
        ),
        RuleId::MemoryRequest => (
            "MemoryRequest",
            "Containers have an effective memory request",
            "Set resources.requests.memory (a limit alone counts: Kubernetes copies it into the \
             request) so the scheduler reserves memory.",
            "Resources",
        ),
        RuleId::ResourceUnits => (
            "ResourceUnits",
            "Quantities whose size says the unit is wrong",
            "Write memory in bytes with Mi or Gi (`1000m` is one byte, `512` is 512 bytes) and \
             CPU in cores or millicores (`500` is 500 cores; `500m` is half a core).",
            "Resources",
        ),
        RuleId::LimitRange => (
            "LimitRange",
            "The pod fits its namespace's LimitRanges",
            "Keep requests and limits within the namespace's LimitRange min, max and \
             maxLimitRequestRatio (after its defaults), or the API server rejects every pod.",
            "Resources",
        ),
        RuleId::GoEnv => (
            "GoEnv",
            "GOMEMLIMIT and GOMAXPROCS fit the container",
            "Write GOMEMLIMIT in Go's syntax (`900MiB`, not `1Gi`), at least 1 MiB and below the \
             memory limit with room outside the heap, and GOMAXPROCS as a positive integer \
             within the CPU limit; or leave both to deployguard's injection.",
            "Go runtime",
        ),
        RuleId::GoRuntimeInjection => (
            "GoRuntimeInjection",
            "GOMAXPROCS and GOMEMLIMIT are injected",
            "Run `deployguard mutate` on the manifest, or let the mutating webhook add the \
             variables.",
            "Go runtime",
        ),
        RuleId::ManifestTypo => (
            "ManifestTypo",
            "No misspelt workload kinds or probe/resources keys",
            "Spell the kind or key as Kubernetes does: the API server refuses an unknown kind              and drops unknown keys, so a misspelt livenessProbe or resources field is simply              missing in the cluster. Checked by `deployguard check` only.",
            "Manifests",
        ),
    };
    RuleHelp {
        name,
        summary,
        help,
        category,
    }
}
